"""``vlmkit merge``: merge Hugging Face checkpoints tensor by tensor into a new directory.

A merge is one typed object (:class:`MergeConfig`), read from a mergekit-style YAML file or
built from flags. Tensors are streamed one key at a time (memory-mapped reads, float32
arithmetic, cast back to the base's storage dtype), so memory stays near one tensor per model
plus the output shard being filled. The output keeps *every* key of the base checkpoint, in its
stored names; tensors whose role is excluded (vision tower, projector, embeddings, head, norms,
biases; roles come from :mod:`vlmkit.models.chat_weights`) are the base's, bit for bit. Config,
tokenizer, processor and chat template are copied from the base. The directory appears only
when complete, with ``merge.json`` recording the coefficients and exclusions.
"""

from __future__ import annotations

import shutil
import zlib
from pathlib import Path
from typing import Literal

import torch
from pydantic import BaseModel, Field, ValidationError, model_validator
from safetensors.torch import save_file

from vlmkit.compress.merge import METHODS, NEEDS_BASE, merge_tensors
from vlmkit.errors import UserError
from vlmkit.models import chat_weights as cw
from vlmkit.runs.files import atomic_directory, atomic_write_json
from vlmkit.runs.options import OPTIONS_CONFIG
from vlmkit.runs.progress import track

Method = Literal["linear", "task_arithmetic", "ties", "dare_linear", "dare_ties"]
Role = Literal["vision", "projector", "embeddings", "head", "norm", "attention", "mlp", "other"]
#: exclusions of the DMO paper for LoRA experts (full fine-tuning excludes only ``vision``)
LORA_EXCLUDE = ("vision", "projector", "embeddings", "head", "norm")
SHARD_BYTES = 2 * 1024**3
#: element-wise merges of larger tensors go this many elements at a time
ROW_BLOCK = 1 << 22


class ModelEntry(BaseModel):
    model_config = OPTIONS_CONFIG
    model: str
    weight: float = 1.0


class MergeConfig(BaseModel):
    """One merge, as in mergekit's YAML (``merge_method``, ``base_model``, ``models``)."""

    model_config = OPTIONS_CONFIG
    merge_method: Method = "task_arithmetic"
    base_model: str | None = None
    models: list[ModelEntry] = Field(min_length=1)
    lam: float = Field(1.0, alias="lambda")
    density: float = Field(0.2, gt=0, le=1)
    drop: float = Field(0.2, ge=0, lt=1)
    exclude: list[Role] = Field(default_factory=lambda: ["vision"])
    exclude_biases: bool = False
    normalize: bool = False
    seed: int = Field(0, ge=0)
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"

    @model_validator(mode="after")
    def _needs_base(self):
        if self.merge_method in NEEDS_BASE and not self.base_model:
            raise ValueError(f"{self.merge_method} needs base_model (the checkpoint the experts were fine-tuned from)")
        if (self.normalize or self.merge_method == "linear") and sum(m.weight for m in self.models) == 0:
            raise ValueError(f"{'linear' if self.merge_method == 'linear' else 'normalize'} divides by the sum of the weights; "
                             "give weights that do not sum to 0")
        return self

    def coefficients(self) -> list[float]:
        weights = [m.weight for m in self.models]
        return [w / sum(weights) for w in weights] if self.normalize else weights


def load_config(path: Path) -> MergeConfig:
    """Read a mergekit-style YAML merge description; errors name the file and the field, and a
    checkpoint that names a local path must exist (checked before any merging)."""
    from vlmkit.runs.readers import read_yaml

    fix = "describe the merge as a YAML mapping with merge_method, base_model and models (see docs/merging.md)"
    data = read_yaml(path, "merge config", fix, schema=dict)
    params = data.pop("parameters", None) or {}
    if not isinstance(params, dict):
        raise UserError(f"merge config {path}: parameters must be a mapping; {fix}")
    data.update(params)
    models = data.get("models") or []
    if not isinstance(models, list) or not all(isinstance(m, str) or (isinstance(m, dict) and "model" in m) for m in models):
        raise UserError(f"merge config {path}: models must be a list of names or of {{model: ..., parameters: {{weight: ...}}}}; {fix}")
    data["models"] = [
        {"model": m["model"], "weight": (m.get("parameters") or {}).get("weight", 1.0)} if isinstance(m, dict) else {"model": m}
        for m in models
    ]
    config = build_config(path, **data)
    for source in [m.model for m in config.models] + ([config.base_model] if config.base_model else []):
        local = Path(source.removeprefix("hf:")).expanduser()
        if _looks_local(source) and not local.is_dir():
            raise UserError(f"merge config {path} names {source}, which is not a folder; fix the path or the file")
    return config


def _looks_local(source: str) -> bool:
    """A path rather than a hub id (``org/name``): absolute, relative with ``.``/``~``, or deeper."""
    name = source.removeprefix("hf:")
    return name.startswith(("/", ".", "~")) or name.count("/") > 1


def build_config(source, **values) -> MergeConfig:
    try:
        return MergeConfig(**values)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(p) for p in error["loc"]) or "config"
        raise UserError(f"merge {source}: {where}: {error['msg']}") from exc


def _directory(source: str) -> Path:
    from vlmkit.runs.readers import read_json

    path = Path(source.removeprefix("hf:")).expanduser()
    if path.is_dir():
        fix = "merge takes save_pretrained checkpoint directories"
        if not (path / "config.json").is_file():
            raise UserError(f"{path} has no config.json; {fix}")
        read_json(path / "config.json", "checkpoint config", fix, schema=dict)
        return path
    if _looks_local(source):
        raise UserError(f"checkpoint folder not found: {path}; pass save_pretrained checkpoint directories or hf:<org>/<name>")
    from vlmkit.models.hf_loading import hub_snapshot

    return hub_snapshot(source.removeprefix("hf:"))


def _storage_dtype(config: MergeConfig, original: torch.dtype) -> torch.dtype:
    return original if config.dtype == "auto" else getattr(torch, config.dtype)


def merge(config: MergeConfig, out: Path) -> Path:
    """Write the merged checkpoint to ``out`` (which must not exist or be empty)."""
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UserError(f"{out} already exists and is not empty; choose a new --out directory")
    experts = [_directory(m.model) for m in config.models]
    base = _directory(config.base_model) if config.base_model else None
    reference = base or experts[0]
    roles = cw.checkpoint_roles(reference)
    where = {d: cw.checkpoint_keys(d) for d in {reference, *experts}}
    for directory in experts:
        missing = set(roles) - set(where[directory])
        if missing:
            raise UserError(
                f"{directory} lacks {len(missing)} tensors of {reference} (e.g. {sorted(missing)[0]}); "
                "merge checkpoints of one architecture"
            )
    weights = config.coefficients()
    excluded = set(config.exclude)
    with atomic_directory(out) as staging:
        shards = _write_merged(config, reference, experts, roles, where, weights, excluded, staging)
        _copy_side_files(reference, staging)
        atomic_write_json(
            staging / "merge.json",
            {
                "config": config.model_dump(by_alias=True),
                "coefficients": weights,
                "normalised": config.normalize,
                "excluded_roles": sorted(excluded),
                "excluded_biases": config.exclude_biases,
                "kept_from_base": sorted(k for k, r in roles.items() if r in excluded or (config.exclude_biases and cw.is_bias(k))),
                "shards": shards,
            },
        )
    return out


def _write_merged(config, reference, experts, roles, where, weights, excluded, staging: Path) -> list[str]:
    shard: dict[str, torch.Tensor] = {}
    shard_bytes, files, index = 0, [], {}

    def flush():
        nonlocal shard, shard_bytes
        name = f"model-{len(files) + 1:05d}.safetensors"
        save_file(shard, staging / name, metadata={"format": "pt"})
        files.append(name)
        index.update({key: name for key in shard})
        shard, shard_bytes = {}, 0

    for key in track(list(roles), f"merging {len(experts)} models ({config.merge_method})", total=len(roles)):
        original = cw.read_tensor(reference, key, where[reference])
        if roles[key] in excluded or (config.exclude_biases and cw.is_bias(key)) or not original.is_floating_point():
            merged = original
        else:
            tensors = [cw.read_tensor(d, key, where[d]) for d in experts]
            generator = torch.Generator().manual_seed(config.seed * 1_000_003 + zlib.crc32(key.encode()))
            merged = _merge_in_rows(config, original, tensors, weights, generator).to(_storage_dtype(config, original.dtype))
        shard[key] = merged.contiguous()
        shard_bytes += merged.numel() * merged.element_size()
        if shard_bytes >= SHARD_BYTES:
            flush()
    if shard:
        flush()
    if len(files) > 1:
        atomic_write_json(staging / "model.safetensors.index.json", {"metadata": {}, "weight_map": index})
    elif files:
        (staging / files[0]).rename(staging / "model.safetensors")
        files = ["model.safetensors"]
    return files


def _merge_in_rows(config: MergeConfig, original: torch.Tensor, tensors, weights, generator) -> torch.Tensor:
    """Merge one tensor; element-wise methods go a block of rows at a time, so the float32
    temporaries of a large tensor (an embedding matrix) stay near :data:`ROW_BLOCK` elements.
    TIES ranks magnitudes over the whole tensor and is merged in one piece."""
    base = original if config.base_model else None
    kwargs = {"lam": config.lam, "density": config.density, "drop": config.drop, "generator": generator}
    if config.merge_method in ("ties", "dare_ties") or original.dim() == 0 or original.numel() <= ROW_BLOCK:
        return merge_tensors(config.merge_method, base, tensors, weights, **kwargs)
    rows = max(1, ROW_BLOCK // max(1, original[0].numel()))
    out = torch.empty(original.shape, dtype=original.dtype)
    for start in range(0, original.shape[0], rows):
        part = slice(start, start + rows)
        out[part] = merge_tensors(config.merge_method, None if base is None else base[part], [t[part] for t in tensors], weights, **kwargs)
    return out


def _copy_side_files(reference: Path, staging: Path) -> None:
    """Config, tokenizer, processor, chat template and generation config of the base."""
    for path in reference.iterdir():
        if (
            path.is_file()
            and not path.name.endswith(".safetensors")
            and path.name != "model.safetensors.index.json"
            and path.name != "merge.json"
        ):
            shutil.copy2(path, staging / path.name)


__all__ = ["LORA_EXCLUDE", "METHODS", "MergeConfig", "build_config", "load_config", "merge"]
