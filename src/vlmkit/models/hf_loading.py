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
    return hub_snapshot(source)


#: the files of a hub checkpoint vlmkit reads (weights, configs, tokenizers, chat templates)
HUB_PATTERNS = ["*.json", "*.safetensors", "*.txt", "*.model", "*.jinja", "*.tiktoken"]


def hub_snapshot(repo: str) -> Path:
    """The local snapshot of hub repository ``repo``: from the Hugging Face cache, else downloaded.
    Used by every family, contrastive and chat."""
    from huggingface_hub import snapshot_download

    for local_only in (True, False):
        try:
            return Path(snapshot_download(repo, allow_patterns=HUB_PATTERNS, local_files_only=local_only))
        except Exception as exc:  # noqa: BLE001 - any hub failure means "not available"
            error = exc
    raise ModelNotFound(
        f"cannot load hf:{repo}: its weights are not in the local Hugging Face cache and the hub is unreachable or has no such "
        f"repository ({type(error).__name__}); download it on a connected machine (`hf download {repo}`) or pass a local directory"
    )


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
    fingerprint = dir_fingerprint(directory)

    def build():
        try:
            with quiet_transformers():
                return adapter.from_directory(directory, name=name, fingerprint=fingerprint, device=device)
        except (OSError, ValueError, RuntimeError, SafetensorError) as exc:  # RuntimeError: weights of the wrong shape
            raise ModelNotFound(f"cannot load {source}: {first_line(exc)}; check that the directory holds a complete checkpoint") from exc

    vision_config = config.get("vision_config")
    weights = directory / "model.safetensors"
    # families with their own preprocessing (no default preset, e.g. embedded) are built at once
    deferrable = device == "cpu" and adapter.default_preprocess and isinstance(vision_config, dict)
    if not deferrable or "num_attention_heads" not in vision_config or not _readable(weights):
        return build()
    from vlmkit.models import preprocess as pp
    from vlmkit.models.deferred import DeferredModel

    # deferred: the vision weight view is read from the file; the network is built on first other use
    return DeferredModel(build, weights, adapter, vision_config, name=name, fingerprint=fingerprint,
                         preprocess=pp.from_model_dir(directory, pp.preset(adapter.default_preprocess)))


def _readable(weights: Path) -> bool:
    """Whether ``weights`` is a safetensors file whose header reads (a damaged one is loaded at once,
    so its error comes at load time as before)."""
    if not weights.is_file():
        return False
    from safetensors import safe_open

    try:
        with safe_open(str(weights), framework="pt") as handle:
            handle.keys()
    except Exception:  # noqa: BLE001 - any failure: not deferred
        return False
    return True
