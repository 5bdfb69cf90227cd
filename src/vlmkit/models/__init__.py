"""The model layer: the only code in vlmkit that knows model internals.

Model names:

- ``random:<architecture>[@seed]``: a real architecture with random weights (no download);
  ``vlmkit models`` lists the architectures.
- ``hf:<org>/<name>`` or ``hf:<dir>``: a Hugging Face CLIP or SigLIP checkpoint.
- a plain local directory holding such a checkpoint (e.g. an edited model vlmkit wrote).

Everything a method needs from a model goes through :class:`ContrastiveModel` and the weight view
:class:`VisionWeights`.

The names below are imported on first use (PEP 562): importing a submodule such as
:mod:`vlmkit.models.chat_registry` must not import torch, so that ``vlmkit chat`` on the NumPy
path (:mod:`vlmkit.models.chat_numpy`) starts fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

#: public name -> the submodule that defines it
_LAZY = {
    "AttentionLayerWeights": "vlmkit.models.base",
    "ContrastiveModel": "vlmkit.models.base",
    "LayerNormParams": "vlmkit.models.base",
    "TextEmbedder": "vlmkit.models.base",
    "VisionWeights": "vlmkit.models.base",
    "DEFAULT_MODEL": "vlmkit.models.registry",
    "list_models": "vlmkit.models.registry",
    "load_model": "vlmkit.models.registry",
    "shipped_companion": "vlmkit.models.registry",
}

__all__ = [
    "AttentionLayerWeights",
    "ContrastiveModel",
    "DEFAULT_MODEL",
    "LayerNormParams",
    "TextEmbedder",
    "VisionWeights",
    "list_models",
    "load_model",
    "shipped_companion",
]

if TYPE_CHECKING:
    from vlmkit.models.base import AttentionLayerWeights, ContrastiveModel, LayerNormParams, TextEmbedder, VisionWeights
    from vlmkit.models.registry import DEFAULT_MODEL, list_models, load_model, shipped_companion


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'vlmkit.models' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
