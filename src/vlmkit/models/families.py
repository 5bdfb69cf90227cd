"""Family lookup and checkpoint fingerprints: a leaf of the model layer.

:data:`FAMILIES` maps a family name to its adapter class (``"module:attribute"``, imported on
first use); :data:`MODEL_TYPES` maps a checkpoint's ``config.json`` ``model_type`` to a family.
Loaders (:mod:`~vlmkit.models.hf_loading`, :mod:`~vlmkit.models.random_models`,
:mod:`~vlmkit.models.embedded`) and the registry import this module; it imports none of them,
so the model layer has no import cycle.
"""

from __future__ import annotations

import hashlib
import importlib
from pathlib import Path

from vlmkit.errors import ModelNotFound

#: family -> adapter class. Each family lives in one file.
FAMILIES: dict[str, str] = {
    "clip": "vlmkit.models.hf_clip:CLIPAdapter",
    "siglip": "vlmkit.models.hf_siglip:SiglipAdapter",
    "embedded": "vlmkit.models.embedded:EmbeddedAdapter",
}

#: Hugging Face ``config.json`` ``model_type`` -> family.
MODEL_TYPES: dict[str, str] = {"clip": "clip", "siglip": "siglip", "vlmkit-embedded": "embedded"}


def resolve(target: str):
    """The object named by ``"module:attribute"``, importing the module."""
    module, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module), attribute)


def family_class(family: str):
    """The adapter class of a family name."""
    if family not in FAMILIES:
        raise ModelNotFound(f"unknown model family {family!r}; known families: {', '.join(sorted(FAMILIES))}")
    return resolve(FAMILIES[family])


def dir_fingerprint(directory: Path) -> str:
    """Hash of every JSON file (config, preprocessing, tokenizer, processor) and of the size and
    mtime of every weight file (safetensors, bin, gguf): it changes when anything that
    determines a model's outputs does. Contrastive and chat checkpoints alike."""
    digest = hashlib.sha256()
    for path in sorted(directory.glob("*.json")):
        digest.update(path.read_bytes())
    for path in sorted(directory.glob("*.safetensors")) + sorted(directory.glob("*.bin")) + sorted(directory.glob("*.gguf")):
        stat = path.stat()
        digest.update(f"{path.name}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return f"dir:{directory.resolve()}:{digest.hexdigest()[:16]}"
