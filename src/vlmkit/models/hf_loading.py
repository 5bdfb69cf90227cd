"""``hf:<repo-or-dir>`` and plain directories: Hugging Face checkpoints through normal loading.

Weights come from a local directory, the local Hugging Face cache, or the hub. When none of
these has them, the user gets one line saying so and how to fix it.
"""

from __future__ import annotations

from pathlib import Path

from safetensors import SafetensorError

from vlmkit.errors import ModelNotFound
from vlmkit.models.families import MODEL_TYPES, dir_fingerprint, family_class
from vlmkit.models.quiet import quiet_transformers
from vlmkit.runs.readers import first_line, read_json

__all__ = ["dir_fingerprint", "load"]  # dir_fingerprint lives in families; kept here for old imports


def _snapshot(source: str) -> Path:
    """A local directory for ``source``: itself, or the hub snapshot (cache first, then online)."""
    local = Path(source).expanduser()
    if local.is_dir():
        if not (local / "config.json").is_file():
            raise ModelNotFound(f"{local} has no config.json; point --model at a Hugging Face checkpoint directory (save_pretrained "
                                "output)")
        return local
    if local.exists():
        raise ModelNotFound(f"{local} is a file; --model takes a checkpoint directory, hf:<org>/<name>, or random:<architecture>")
    from huggingface_hub import snapshot_download

    patterns = ["*.json", "*.safetensors", "*.txt", "*.model"]
    try:
        return Path(snapshot_download(source, allow_patterns=patterns, local_files_only=True))
    except Exception:
        pass
    try:
        return Path(snapshot_download(source, allow_patterns=patterns))
    except Exception as exc:
        raise ModelNotFound(
            f"cannot load hf:{source}: its weights are not in the local Hugging Face cache and the hub is unreachable "
            f"or has no such repository ({type(exc).__name__}); run `huggingface-cli download {source}` on a connected "
            "machine, or pass a local checkpoint directory"
        ) from exc


def load(source: str, device: str = "cpu"):
    """Load a CLIP or SigLIP checkpoint from a directory or hub repository id."""
    directory = _snapshot(source)
    config = read_json(directory / "config.json", "model config", "point --model at a complete Hugging Face checkpoint directory", dict)
    model_type = config.get("model_type")
    if model_type not in MODEL_TYPES:
        raise ModelNotFound(
            f"{source}: model_type {model_type!r} is not a supported contrastive family ({', '.join(MODEL_TYPES)})"
        )
    family = MODEL_TYPES[model_type]
    adapter = family_class(family)

    name = source if Path(source).expanduser().is_dir() else f"hf:{source}"
    try:
        with quiet_transformers():
            return adapter.from_directory(directory, name=name, fingerprint=dir_fingerprint(directory), device=device)
    except (OSError, ValueError, RuntimeError, SafetensorError) as exc:  # RuntimeError: weights of the wrong shape
        raise ModelNotFound(f"cannot load {source}: {first_line(exc)}; check that the directory holds a complete checkpoint") from exc
