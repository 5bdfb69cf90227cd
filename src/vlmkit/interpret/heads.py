"""Weight-space pieces of SITH (arXiv 2603.24653, §3 steps 1-3): per-head value-output
matrices, their SVD with a deterministic sign, and the map of residual directions into the joint
image-text space. Everything reads the canonical weight view only.

Row-vector convention: head ``h`` writes ``x @ W_V[h] @ W_O[h]`` into the residual stream, with
``W_V[h]`` ``(d_model, d_head)`` and ``W_O[h]`` ``(d_head, d_model)``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from vlmkit.models.base import AttentionLayerWeights, VisionWeights


def head_factors(layer: AttentionLayerWeights, fold_ln: bool = True, center: bool = True) -> tuple[Tensor, Tensor]:
    """The two factors ``(W_V (H, d, d_head), W_O (H, d_head, d))`` of the value-output matrices, float64.

    fold_ln: scale each input row of ``W_V`` by the ``ln1`` gain (its shift and the value bias
        only move the output bias, so they never enter the matrix).
    center: make writes orthogonal to the all-ones vector (each row of ``W_O`` minus its mean
        over the output coordinates) and remove the mean component of the input (each column of
        ``W_V`` minus its mean over the input coordinates, the TransformerLens convention, a
        no-op after a LayerNorm).
    """
    W_V, W_O = layer.W_V.double(), layer.W_O.double()
    if fold_ln:
        W_V = W_V * layer.ln1.weight.double()[None, :, None]
    if center:
        W_V = W_V - W_V.mean(1, keepdim=True)
        W_O = W_O - W_O.mean(2, keepdim=True)
    return W_V, W_O


def value_output(layer: AttentionLayerWeights, fold_ln: bool = True, center: bool = True) -> Tensor:
    """``(n_heads, d_model, d_model)`` value-output matrices ``W_V[h] @ W_O[h]`` (see :func:`head_factors`)."""
    W_V, W_O = head_factors(layer, fold_ln, center)
    return W_V @ W_O


def _fix_signs(U: Tensor, S: Tensor, Vt: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Flip each pair ``(u_j, v_j)`` so that the largest-magnitude entry of ``u_j`` is positive."""
    peak = U.abs().argmax(1, keepdim=True)  # (h, 1, r)
    sign = torch.sign(torch.gather(U, 1, peak)).squeeze(1)  # (h, r)
    sign[sign == 0] = 1
    return U * sign[:, None, :], S, Vt * sign[:, :, None]


def head_svd(vo: Tensor, rank: int | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """SVD of value-output matrices ``(n_heads, d, d)`` at ``rank`` (default: full).

    Returns ``U`` ``(n_heads, d, r)`` (read directions), ``S`` ``(n_heads, r)`` and ``Vt``
    ``(n_heads, r, d)`` (write directions, SITH's default), signs fixed as in :func:`_fix_signs`.
    """
    U, S, Vt = torch.linalg.svd(vo.double(), full_matrices=False)
    if rank is not None:
        U, S, Vt = U[..., :rank], S[..., :rank], Vt[..., :rank, :]
    return _fix_signs(U, S, Vt)


def factored_svd(W_V: Tensor, W_O: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """The rank-``d_head`` SVD of ``W_V @ W_O`` without forming the ``d x d`` product.

    With ``W_V = Q_a R_a`` and ``W_O^T = Q_b R_b`` (thin QR), ``W_V W_O = Q_a (R_a R_b^T) Q_b^T``,
    so the SVD of the small ``(d_head, d_head)`` core gives the full one in ``O(d d_head^2)``
    instead of ``O(d^3)``. Same outputs and sign rule as :func:`head_svd` at ``rank=d_head``.
    """
    Qa, Ra = torch.linalg.qr(W_V.double())
    Qb, Rb = torch.linalg.qr(W_O.double().transpose(1, 2))
    u, S, vt = torch.linalg.svd(Ra @ Rb.transpose(1, 2))
    # Q_a u as (u^T Q_a^T)^T: LAPACK returns Q_a column-major, and this order multiplies it twice as fast
    return _fix_signs((u.mT @ Qa.mT).mT, S, vt @ Qb.transpose(1, 2))


def to_joint_space(directions: Tensor, weights: VisionWeights, image_mean: Tensor | None = None, affine: bool = True) -> Tensor:
    """Map residual directions ``(N, d_model)`` to unit vectors ``(N, d_embed)`` of the joint space.

    ``p = ln_post(v) @ proj`` (with the LayerNorm's gain and shift when ``affine``, else
    ``(gamma * centred v) @ proj``), normalised, minus ``image_mean`` (the mean unit image
    embedding), normalised again.
    """
    if weights.proj is None:
        raise ValueError("this tower has no linear readout (attention-pooling head)")
    v = directions.float()
    if affine:
        p = weights.ln_post(v) @ weights.proj
    else:
        p = ((v - v.mean(-1, keepdim=True)) * weights.ln_post.weight) @ weights.proj
    p = F.normalize(p, dim=-1)
    if image_mean is not None:
        p = F.normalize(p - image_mean, dim=-1)
    return p


def from_joint_space(points: Tensor, weights: VisionWeights, image_mean: Tensor | None = None, pinv: Tensor | None = None) -> Tensor:
    """SITH's way back for fidelity (§4): normalise, add ``image_mean``, normalise, apply
    ``pinv(proj)``, normalise. ``(N, d_embed)`` -> unit ``(N, d_model)``; ``ln_post`` is not inverted.
    Zero rows stay zero. ``pinv``: ``pinv(proj)`` ``(d_embed, d_model)`` when the caller has it."""
    points = points.float()
    y = F.normalize(points, dim=-1)
    if image_mean is not None:
        y = F.normalize(y + image_mean, dim=-1)
    back = F.normalize(y @ (pinv if pinv is not None else torch.linalg.pinv(weights.proj.float())), dim=-1)
    return back * (points.norm(dim=-1, keepdim=True) > 0)  # an empty code explains nothing
