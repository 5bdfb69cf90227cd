"""Typed options shared by every run; each command extends :class:`RunOptions`.

Options are validated once, when the object is built, and written into ``run.json``.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from vlmkit.errors import UserError
from vlmkit.models.registry import DEFAULT_MODEL

#: every option model's settings: no unknown field, and no NaN or infinity for a number
OPTIONS_CONFIG = ConfigDict(extra="forbid", protected_namespaces=(), allow_inf_nan=False)


def check_out(value: str | Path) -> Path:
    """An output folder this process can create or fill: not empty (for Python callers: the CLI
    refuses ``--out ""`` itself, which typer would read as "."), not an existing file or a broken
    link, under a folder it can write in (probed with a temporary folder, removed at once; run as
    root, only a read-only file system fails the probe). Checked before any model loads."""
    if not str(value).strip():
        raise ValueError("give an output directory (an empty path would write into the current one)")
    path = Path(value)
    if path.is_symlink() and not path.exists():
        raise ValueError(f"{path} is a broken link; remove it or give another directory")
    if path.exists() and not path.is_dir():
        raise ValueError(f"{path} is a file; give a directory (new or existing)")
    parent = next(p for p in [path.absolute(), *path.absolute().parents] if p.exists())
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".vlmkit-probe-", dir=parent))
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ValueError(f"cannot write under {parent} ({reason}); choose a directory you can write to") from exc
    return path


DEVICE_NAMES = "device must be cpu, cuda, cuda:N, mps or auto"  # the error for any other name


def is_device_name(value: str) -> bool:
    """Whether ``value`` names a device vlmkit accepts (see :data:`DEVICE_NAMES`)."""
    return value in ("cpu", "cuda", "auto", "mps") or (value.startswith("cuda:") and value[5:].isdigit())


def resolve_device(device: str) -> str:
    """``device`` checked and resolved (``auto``: cuda when torch sees a GPU); a GPU torch cannot
    see is a one-line :class:`UserError`. ``cpu`` is returned without importing torch."""
    if device == "cpu":
        return device
    if not is_device_name(device):
        raise UserError(f"--device {device}: {DEVICE_NAMES}")
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"--device {device} asked for a GPU but torch sees none; use --device cpu")
    if device == "mps" and not torch.backends.mps.is_available():
        raise UserError("--device mps asked for Apple's GPU but torch sees none; use --device cpu")
    return device


class RunOptions(BaseModel):
    """Options of every command that loads a model and writes ``--out``."""

    model_config = OPTIONS_CONFIG

    model: str = Field(DEFAULT_MODEL, min_length=1)
    out: Path
    device: str = "cpu"
    seed: int = Field(0, ge=0)
    batch_size: int = Field(32, ge=1)
    cache: bool = True
    cache_dir: Path | None = None

    @field_validator("out", mode="before")
    @classmethod
    def _writable(cls, value):
        return check_out(value)

    @field_validator("cache_dir")
    @classmethod
    def _a_folder(cls, value: Path | None) -> Path | None:  # may be read-only: a shared, filled cache is only read
        if value is not None and value.exists() and not value.is_dir():
            raise ValueError(f"{value} is a file; give the cache's directory")
        return value

    @field_validator("device")
    @classmethod
    def _device(cls, value: str) -> str:
        if not is_device_name(value):
            raise ValueError(DEVICE_NAMES)
        return value

    def resolved_device(self) -> str:
        return resolve_device(self.device)

    def embedding_cache(self):
        from vlmkit.runs.cache import EmbeddingCache

        return EmbeddingCache(self.cache_dir) if self.cache else None


def build_options(cls: type[BaseModel], *, cli_names: dict[str, str] | None = None, **values) -> BaseModel:
    """Build options, turning validation errors into one :class:`UserError` line that names the
    option as the user typed it (``cli_names`` maps a field to its option where they differ, e.g.
    ``{"n_domains": "--grid"}``; otherwise ``field_name`` is ``--field-name``)."""
    try:
        return cls(**values)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        message = first["msg"].removeprefix("Value error, ")
        if not where:
            raise UserError(message) from exc
        option = (cli_names or {}).get(where) or "--" + where.replace("_", "-")
        raise UserError(f"invalid {option}: {message}") from exc
