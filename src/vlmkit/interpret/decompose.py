"""Exact direct-effect decomposition of a CLIP image embedding.

The class token's final residual stream is a sum of what each part wrote into it: the
embeddings (after ``ln_pre``), each attention head of each layer, each layer's attention output
bias, and each MLP. The final LayerNorm is linear once its scale is fixed, so with that image's
own mean and standard deviation (``linearised``) every part maps to the joint space and the
parts add up to the embedding exactly::

    embedding = sum_parts  gamma * (c - mean(c)) / sigma @ P   +   beta @ P

This is the decomposition used by TextSpan (Gandelsman et al., ICLR 2024, "Interpreting CLIP's
image representation via text-based decomposition"), computed here from the canonical weight
view and hook points only, which is what makes it a proof that the view is right.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from vlmkit.errors import UnsupportedError
from vlmkit.models.base import AttentionLayerWeights, VisionWeights


def head_writes(layer: AttentionLayerWeights, x: Tensor, query: int | None = None) -> Tensor:
    """What each head writes into the residual stream, computed from the weight view.

    Args:
        layer: the block's attention weights.
        x: ``(batch, pos, d_model)``, the block's ``ln1`` output.
        query: read only this query position (e.g. 0 for the class token).

    Returns:
        ``(batch, n_heads, pos, d_model)``, or ``(batch, n_heads, d_model)`` for one query;
        the output bias ``b_O`` is not included.
    """
    pattern = layer.attention_pattern(x)  # (b, h, q, k)
    if query is not None:
        pattern = pattern[:, :, query : query + 1]
    z = pattern @ layer.head_values(x)  # (b, h, q, d_head)
    writes = torch.einsum("bhqe,hed->bhqd", z, layer.W_O)
    return writes[:, :, 0] if query is not None else writes


@dataclass
class DirectEffects:
    """Per-part direct contributions to image embeddings, in the joint space.

    Attributes (``B`` images, ``L`` layers, ``H`` heads, ``D`` embedding width):
        embeddings: ``(B, D)``, the patch/class/position embeddings.
        heads: ``(B, L, H, D)``, each attention head.
        attn_bias: ``(B, L, D)``, each layer's attention output bias.
        mlps: ``(B, L, D)``, each MLP.
        ln_bias: ``(D,)``, the final LayerNorm shift through the projection (same for every image).
        residual: ``(B, d_model)``, the class token's final residual stream, before ``ln_post``.
    """

    embeddings: Tensor
    heads: Tensor
    attn_bias: Tensor
    mlps: Tensor
    ln_bias: Tensor
    residual: Tensor

    def total(self) -> Tensor:
        """The sum of all parts: ``(B, D)``, the unnormalised image embedding."""
        return self.embeddings + self.heads.sum((1, 2)) + self.attn_bias.sum(1) + self.mlps.sum(1) + self.ln_bias


def _trace_points(n_layers: int) -> list[str]:
    points = ["embed", "ln_post.in"]
    for i in range(n_layers):
        points += [f"blocks.{i}.ln1", f"blocks.{i}.mlp.out"]
    return points


@torch.no_grad()
def direct_effects(model, pixels: Tensor, weights: VisionWeights | None = None) -> DirectEffects:
    """Decompose the image embeddings of ``pixels`` ``(B, 3, H, W)`` into direct effects.

    Raises:
        UnsupportedError: the model pools with something other than its class token and a
            linear projection (e.g. SigLIP's attention-pooling head).
    """
    weights = weights if weights is not None else model.vision_weights()
    if weights.proj is None or weights.pool != "cls" or "decomposition" not in model.supports:
        raise UnsupportedError(
            f"{model.name} pools images non-linearly ({weights.pool} head), so its embedding has no exact "
            "direct-effect decomposition; use a CLIP-style model (class token + linear projection)"
        )
    trace = model.trace_vision(pixels, _trace_points(weights.n_layers))
    residual = trace["ln_post.in"]
    ln = weights.ln_post
    sigma = (residual.var(-1, unbiased=False, keepdim=True) + ln.eps).sqrt()  # (B, 1)

    def linearised(part: Tensor) -> Tensor:
        """``(B, ..., d_model)`` residual parts -> ``(B, ..., D)``; sigma broadcast over middle axes."""
        s = sigma.reshape(sigma.shape[0], *([1] * (part.dim() - 1)))
        return ((part - part.mean(-1, keepdim=True)) / s * ln.weight) @ weights.proj

    heads, biases, mlps = [], [], []
    for i, layer in enumerate(weights.layers):
        heads.append(head_writes(layer, trace[f"blocks.{i}.ln1"], query=0))
        biases.append(layer.b_O.expand(residual.shape[0], -1))
        mlps.append(trace[f"blocks.{i}.mlp.out"][:, 0])
    return DirectEffects(
        embeddings=linearised(trace["embed"][:, 0]),
        heads=linearised(torch.stack(heads, 1)),
        attn_bias=linearised(torch.stack(biases, 1)),
        mlps=linearised(torch.stack(mlps, 1)),
        ln_bias=ln.bias @ weights.proj,
        residual=residual,
    )
