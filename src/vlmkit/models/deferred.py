"""A contrastive model whose network is built on first use; its vision weights come straight from the file.

Building a Hugging Face dual encoder costs seconds before any work: importing transformers,
constructing both towers, mapping the weights. A command that needs only the vision tower's
weight view (``vlmkit sith`` when the vocabulary embeddings and the image mean are cached) needs
none of that: :meth:`DeferredModel.vision_weights` reads the tensors it needs from the
safetensors file (:func:`vlmkit.models.hf_vit.read_weight_file`). Anything else (encoding texts
or images, tracing, editing, saving) builds the real model once and is delegated to it, so the
deferred model behaves as the adapter it stands for.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from vlmkit.models.hf_vit import layouts, read_weight_file

#: LayerNorm eps of each family's vision config when the config does not say (transformers' defaults)
DEFAULT_LN_EPS = {"clip": 1e-5, "siglip": 1e-6}


class DeferredModel:
    """Stands for ``build()``'s model (a :class:`~vlmkit.models.hf_dual.HFDualEncoder`).

    Args:
        build: makes the real model (called at most once).
        weights: the model's single float32 safetensors file.
        adapter: the adapter class (its ``family``, ``layout`` and ``supports``).
        vision_config: the vision tower's config as a dict (``num_attention_heads``, optionally
            ``layer_norm_eps``).
        name, fingerprint, preprocess: as the real model's.
    """

    def __init__(self, build: Callable, weights: Path, adapter, vision_config: dict, *, name: str, fingerprint: str, preprocess):
        self._build, self._weights, self._adapter, self._vision_config = build, Path(weights), adapter, vision_config
        self._model = None
        self.name = name
        self._fingerprint = fingerprint
        self._preprocess = preprocess
        self.supports = adapter.supports
        self.family = adapter.family

    def built(self):
        """The real model (built on the first call)."""
        if self._model is None:
            self._model = self._build()
        return self._model

    @property
    def fingerprint(self) -> str:
        return self._fingerprint if self._model is None else self._model.fingerprint

    @property
    def preprocess(self):
        return self._preprocess if self._model is None else self._model.preprocess

    def vision_weights(self):
        if self._model is not None:
            return self._model.vision_weights()
        family = self._adapter.family
        eps = self._vision_config.get("layer_norm_eps", DEFAULT_LN_EPS[family])
        layout, n_heads = layouts()[self._adapter.layout or family], self._vision_config["num_attention_heads"]
        try:
            return read_weight_file(self._weights, layout, n_heads, eps)
        except Exception:  # noqa: BLE001 - a damaged or foreign file: the real build handles it (draws again, or says why)
            return self.built().vision_weights()

    def __getattr__(self, attr: str):
        if attr.startswith("_"):  # not built yet, or during copying/unpickling: never build for private names
            raise AttributeError(attr)
        return getattr(self.built(), attr)
