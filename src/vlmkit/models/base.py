"""Protocols of the model layer and the canonical weight view of a vision transformer.

Every method in vlmkit talks to models through these types only. Shapes follow the row-vector
convention of the SITH paper (arXiv 2603.24653, §3): a residual vector ``x`` of width
``d_model`` is written to by head ``h`` as ``x @ W_V[h] @ W_O[h]``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Protocol, runtime_checkable

import torch
import torch.nn.functional as F
from torch import Tensor

#: Capabilities a model may declare in :attr:`ContrastiveModel.supports`.
CAPABILITIES = {
    "images": "encode images",
    "texts": "encode texts",
    "weight_view": "read and write per-head attention weights (W_Q, W_K, W_V, W_O)",
    "trace": "read activations at named hook points of the vision tower",
    "decomposition": "exact direct-effect decomposition of the image embedding",
    "sigmoid_scores": "trained with a pairwise sigmoid loss (SigLIP): sigmoid(s * cos + b) is a per-pair probability",
    "world_images": "trained on shapes-world scenes only: other images fall outside its distribution",
}


@dataclass
class LayerNormParams:
    """An affine LayerNorm: ``(x - mean) / sqrt(var + eps) * weight + bias``.

    weight, bias: ``(d_model,)``.
    """

    weight: Tensor
    bias: Tensor
    eps: float

    def __call__(self, x: Tensor) -> Tensor:
        return F.layer_norm(x, self.weight.shape, self.weight, self.bias, self.eps)


@dataclass
class AttentionLayerWeights:
    """One transformer block's multi-head attention, independent of checkpoint key names.

    Attributes:
        W_Q, W_K, W_V: ``(n_heads, d_model, d_head)`` read matrices.
        W_O: ``(n_heads, d_head, d_model)`` write matrix of each head.
        b_Q, b_K, b_V: ``(n_heads, d_head)`` biases.
        b_O: ``(d_model,)`` output bias, shared by all heads.
        ln1: the pre-attention LayerNorm whose output the heads read.
    """

    W_Q: Tensor
    W_K: Tensor
    W_V: Tensor
    W_O: Tensor
    b_Q: Tensor
    b_K: Tensor
    b_V: Tensor
    b_O: Tensor
    ln1: LayerNormParams

    @property
    def n_heads(self) -> int:
        return self.W_V.shape[0]

    @property
    def d_head(self) -> int:
        return self.W_V.shape[2]

    @property
    def d_model(self) -> int:
        return self.W_V.shape[1]

    def W_VO(self) -> Tensor:
        """Value-output matrices ``W_V[h] @ W_O[h]``: ``(n_heads, d_model, d_model)``, rank <= d_head."""
        return self.W_V @ self.W_O

    def attention_pattern(self, x: Tensor) -> Tensor:
        """Softmax attention of each head over the LayerNorm-ed stream ``x``.

        x: ``(batch, pos, d_model)`` (output of ``ln1``). Returns ``(batch, n_heads, pos, pos)``
        with rows summing to one (query position first, key position second). Vision towers
        attend without a mask.
        """
        q = torch.einsum("bpd,hde->bhpe", x, self.W_Q) + self.b_Q[None, :, None]
        k = torch.einsum("bpd,hde->bhpe", x, self.W_K) + self.b_K[None, :, None]
        scores = q @ k.transpose(-1, -2) / self.d_head**0.5
        return scores.softmax(dim=-1)

    def head_values(self, x: Tensor) -> Tensor:
        """Values ``x @ W_V[h] + b_V[h]``: x ``(batch, pos, d_model)`` -> ``(batch, n_heads, pos, d_head)``."""
        return torch.einsum("bpd,hde->bhpe", x, self.W_V) + self.b_V[None, :, None]


@dataclass
class VisionWeights:
    """The canonical weight view of a ViT image tower.

    Attributes:
        layers: one :class:`AttentionLayerWeights` per transformer block, input to output.
        ln_pre: LayerNorm applied to the embeddings before block 0 (CLIP has one, SigLIP not).
        ln_post: the final LayerNorm applied to the pooled token.
        proj: ``(d_model, d_embed)`` visual projection into the joint space, or ``None`` when the
            tower pools non-linearly (SigLIP's attention-pooling head): then the residual stream
            does not map linearly to the image embedding.
        pool: which token is pooled: ``"cls"`` (position 0) or ``"map"`` (attention pooling).
    """

    layers: list[AttentionLayerWeights]
    ln_post: LayerNormParams
    proj: Tensor | None
    ln_pre: LayerNormParams | None = None
    pool: str = "cls"
    meta: dict = field(default_factory=dict)

    @property
    def n_layers(self) -> int:
        return len(self.layers)

    @property
    def d_model(self) -> int:
        return self.layers[0].d_model

    @property
    def n_heads(self) -> int:
        return self.layers[0].n_heads

    @property
    def d_head(self) -> int:
        return self.layers[0].d_head

    def readout(self, resid: Tensor) -> Tensor:
        """Map pooled residual vectors ``(..., d_model)`` to the joint space: ``ln_post`` then ``proj``."""
        if self.proj is None:
            raise ValueError("this tower has no linear readout (attention-pooling head)")
        return self.ln_post(resid) @ self.proj

    def clone(self) -> VisionWeights:
        """A deep copy whose tensors can be edited without touching the model."""

        def copy_ln(ln: LayerNormParams | None) -> LayerNormParams | None:
            return None if ln is None else replace(ln, weight=ln.weight.clone(), bias=ln.bias.clone())

        layers = [
            replace(
                lw,
                **{k: getattr(lw, k).clone() for k in ("W_Q", "W_K", "W_V", "W_O", "b_Q", "b_K", "b_V", "b_O")},
                ln1=copy_ln(lw.ln1),
            )
            for lw in self.layers
        ]
        proj = None if self.proj is None else self.proj.clone()
        return replace(self, layers=layers, ln_post=copy_ln(self.ln_post), ln_pre=copy_ln(self.ln_pre), proj=proj, meta=dict(self.meta))


@runtime_checkable
class ContrastiveModel(Protocol):
    """A dual-encoder image-text model (CLIP, SigLIP, the embedded model).

    Attributes:
        name: the name it was loaded by (``random:clip-vit-b32``, ``hf:openai/clip-vit-base-patch32``).
        family: the adapter family (``clip``, ``siglip``, ``embedded``).
        fingerprint: a string that changes whenever the weights or preprocessing change; caches key on it.
        embed_dim: width of the joint embedding space.
        preprocess: turns PIL images into the pixel tensor the vision tower expects.
        supports: capability names, see :data:`CAPABILITIES`.
    """

    name: str
    family: str
    fingerprint: str
    embed_dim: int
    supports: frozenset[str]

    @property
    def preprocess(self): ...

    @property
    def logit_scale(self) -> float: ...

    @property
    def logit_bias(self) -> float: ...

    def encode_images(self, pixels: Tensor, normalize: bool = True) -> Tensor:
        """pixels ``(batch, 3, H, W)`` from :attr:`preprocess` -> embeddings ``(batch, embed_dim)``."""
        ...

    def encode_texts(self, texts: Sequence[str], normalize: bool = True) -> Tensor:
        """``n`` strings -> embeddings ``(n, embed_dim)``."""
        ...

    def vision_weights(self) -> VisionWeights:
        """A float32 CPU copy of the canonical weight view of the image tower."""
        ...

    def set_vision_weights(self, weights: VisionWeights) -> None:
        """Write an (edited) weight view back into the model."""
        ...

    def trace_vision(self, pixels: Tensor, points: Sequence[str]) -> dict[str, Tensor]:
        """Activations at hook points (see :mod:`vlmkit.models.hooks`) for pixels ``(batch, 3, H, W)``."""
        ...

    def save(self, directory: str | Path) -> Path:
        """Write the model (with any edits) as a checkpoint directory that loads back by its path:
        safetensors weights, an HF-loadable ``config.json``, the preprocessing. Returns the folder."""
        ...


@runtime_checkable
class TextEmbedder(Protocol):
    """A sentence encoder: strings in, unit vectors ``(n, dim)`` out."""

    name: str
    dim: int

    def encode(self, sentences: Sequence[str]) -> Tensor: ...
