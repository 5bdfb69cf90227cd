"""Shared machinery of Hugging Face dual encoders (CLIP, SigLIP): encoding, weight view, saving.

A family adapter subclasses :class:`HFDualEncoder` and says how to compute its image and text
features, how to tokenize, and which layout its vision tower has.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vlmkit.models.base import VisionWeights
from vlmkit.models.fast_init import load_checkpoint
from vlmkit.models.hf_vit import HFViTView, layouts
from vlmkit.models.hooks import run_and_capture
from vlmkit.models.preprocess import ImagePreprocessor, to_hf_config


def weights_digest(weights: VisionWeights) -> str:
    """A short content hash of the attention and readout weights (changes after any edit)."""
    digest = hashlib.sha256()
    for lw in weights.layers:
        for tensor in (lw.W_Q, lw.W_K, lw.W_V, lw.W_O, lw.b_V, lw.b_O, lw.ln1.weight):
            digest.update(tensor.numpy().tobytes())
    digest.update(weights.ln_post.weight.numpy().tobytes())
    if weights.proj is not None:
        digest.update(weights.proj.numpy().tobytes())
    return digest.hexdigest()[:16]


class TransformersClass:
    """A class attribute naming a ``transformers`` class, imported on first access: importing
    transformers takes seconds, and a command that never builds the network (see
    :mod:`vlmkit.models.deferred`) should not pay for it."""

    def __init__(self, name: str):
        self.name = name

    def __get__(self, obj, owner=None):
        import transformers

        return getattr(transformers, self.name)


class HFDualEncoder:
    """Base of Hugging Face contrastive adapters; see :class:`vlmkit.models.base.ContrastiveModel`."""

    family: str = ""
    processor_type: str = ""
    default_preprocess: str = ""
    layout: str | None = None  # entry of specs/vit_layouts.json; defaults to the family name
    supports = frozenset({"images", "texts", "weight_view", "trace"})

    def __init__(self, hf_model: nn.Module, tokenizer, preprocess: ImagePreprocessor, *, name: str, fingerprint: str, device: str = "cpu"):
        self.hf_model = hf_model.eval().to(device)
        self.tokenizer = tokenizer
        self._preprocess = preprocess
        self.name = name
        self.fingerprint = fingerprint
        self.device = torch.device(device)
        n_heads = self.vision_config.num_attention_heads
        self._view = HFViTView(hf_model, layouts()[self.layout or self.family], n_heads=n_heads)

    @classmethod
    def from_directory(cls, directory: Path, *, name: str, fingerprint: str, device: str = "cpu"):
        """Load a checkpoint directory written by ``save_pretrained`` (or :meth:`save`)."""
        from transformers import AutoTokenizer

        from vlmkit.models import preprocess as pp

        hf_model = load_checkpoint(cls.hf_class, cls.config_class, directory)
        tokenizer = AutoTokenizer.from_pretrained(directory)
        preprocess = pp.from_model_dir(directory, pp.preset(cls.default_preprocess))
        return cls(hf_model, tokenizer, preprocess, name=name, fingerprint=fingerprint, device=device)

    # ---- what subclasses define ----------------------------------------------------------
    @property
    def vision_config(self):
        return self.hf_model.config.vision_config

    def _image_features(self, pixels: Tensor) -> Tensor:
        raise NotImplementedError

    def _text_features(self, texts: Sequence[str]) -> Tensor:
        raise NotImplementedError

    # ---- ContrastiveModel ----------------------------------------------------------------
    @property
    def preprocess(self) -> ImagePreprocessor:
        return self._preprocess

    @property
    def embed_dim(self) -> int:
        return int(self._embed_dim())

    def _embed_dim(self) -> int:
        raise NotImplementedError

    @property
    def logit_scale(self) -> float:
        return float(self.hf_model.logit_scale.detach().exp())

    @property
    def logit_bias(self) -> float:
        bias = getattr(self.hf_model, "logit_bias", None)
        return 0.0 if bias is None else float(bias.detach())

    @torch.inference_mode()
    def encode_images(self, pixels: Tensor, normalize: bool = True) -> Tensor:
        features = self._image_features(pixels.to(self.device)).float()
        return (F.normalize(features, dim=-1) if normalize else features).cpu()

    @torch.inference_mode()
    def encode_texts(self, texts: Sequence[str], normalize: bool = True) -> Tensor:
        features = self._text_features(list(texts)).float()
        return (F.normalize(features, dim=-1) if normalize else features).cpu()

    def vision_weights(self) -> VisionWeights:
        return self._view.read()

    def set_vision_weights(self, weights: VisionWeights) -> None:
        self._view.write(weights)
        self.fingerprint = f"{self.fingerprint.split('+')[0]}+{weights_digest(weights)}"

    def hook_points(self):
        """The named hook points of the vision tower (names usable with :meth:`trace_vision`)."""
        return self._view.hook_points()

    def trace_vision(self, pixels: Tensor, points: Sequence[str]) -> dict[str, Tensor]:
        pixels = pixels.to(self.device)
        store = run_and_capture(self._view.hook_points(), points, lambda: self._image_features(pixels))
        return {name: value.float().cpu() for name, value in store.items()}

    def save(self, directory: str | Path) -> Path:
        """Write an HF-loadable checkpoint (safetensors, config, tokenizer, preprocessing)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.hf_model.save_pretrained(directory, safe_serialization=True)
        self.tokenizer.save_pretrained(directory)
        config = to_hf_config(self._preprocess, self.processor_type)
        (directory / "preprocessor_config.json").write_text(json.dumps(config, indent=2))
        return directory
