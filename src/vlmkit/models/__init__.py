"""The model layer: the only code in vlmkit that knows model internals.

Model names:

- ``random:<architecture>[@seed]``: a real architecture with random weights (no download);
  ``vlmkit models`` lists the architectures.
- ``hf:<org>/<name>`` or ``hf:<dir>``: a Hugging Face CLIP or SigLIP checkpoint.
- a plain local directory holding such a checkpoint (e.g. an edited model vlmkit wrote).

Everything a method needs from a model goes through :class:`ContrastiveModel` and the weight view
:class:`VisionWeights`.
"""

from vlmkit.models.base import (
    AttentionLayerWeights,
    ContrastiveModel,
    LayerNormParams,
    TextEmbedder,
    VisionWeights,
)
from vlmkit.models.registry import DEFAULT_MODEL, list_models, load_model, shipped_companion

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
