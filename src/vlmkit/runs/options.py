"""Typed options shared by every run; each command extends :class:`RunOptions`.

Options are validated once, when the object is built, and written into ``run.json``.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from vlmkit.errors import UserError
from vlmkit.models.registry import DEFAULT_MODEL


class RunOptions(BaseModel):
    """Options of every command that loads a model and writes ``--out``."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    model: str = DEFAULT_MODEL
    out: Path
    device: str = "cpu"
    seed: int = 0
    batch_size: int = Field(32, ge=1)
    cache: bool = True
    cache_dir: Path | None = None

    @field_validator("device")
    @classmethod
    def _device(cls, value: str) -> str:
        if value not in ("cpu", "cuda", "auto", "mps") and not value.startswith("cuda:"):
            raise ValueError("device must be cpu, cuda, cuda:N, mps or auto")
        return value

    def resolved_device(self) -> str:
        import torch

        if self.device == "auto":
            return "cuda" if torch.cuda.is_available() else "cpu"
        if self.device.startswith("cuda") and not torch.cuda.is_available():
            raise UserError(f"--device {self.device} asked for a GPU but torch sees none; use --device cpu")
        return self.device

    def embedding_cache(self):
        from vlmkit.runs.cache import EmbeddingCache

        return EmbeddingCache(self.cache_dir) if self.cache else None


def build_options(cls: type[BaseModel], **values) -> BaseModel:
    """Build options, turning validation errors into one :class:`UserError` line."""
    try:
        return cls(**values)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        message = first["msg"].removeprefix("Value error, ")
        raise UserError(f"invalid --{where.replace('_', '-')}: {message}" if where else message) from exc
