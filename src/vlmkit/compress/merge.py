"""Model merging on tensors: weight averaging, task arithmetic, TIES and DARE.

All arithmetic is in float32; callers cast the result to the storage dtype. With a base θ₀ and
experts θ_i, task vectors are τ_i = θ_i − θ₀ and ``weights`` are the coefficients α_i:

- ``linear``: Σ α_i θ_i / Σ α_i (the weight average; no base needed);
- ``task_arithmetic``: θ₀ + λ Σ α_i τ_i (Ilharco et al., 2023). With mixture proportions as α
  this is the data-mixture proxy of arXiv 2602.04937 (θ = θ₀ + Σ_d α_d τ_d);
- ``ties``: trim each τ_i to its top ``density`` fraction by magnitude, elect each entry's sign
  as the sign of Σ α_i τ̂_i, and take the α-weighted mean of the entries that agree with it
  (the disjoint mean; Yadav et al., 2023): θ₀ + λ Σ α_i m_i τ̂_i / Σ α_i m_i;
- ``dare_linear`` / ``dare_ties``: drop each τ_i entry with probability ``drop`` and rescale the
  survivors by 1/(1 − drop) (Yu et al., 2024), then task arithmetic / TIES sign election and
  disjoint mean (no magnitude trim). The dropping uses the given seeded generator.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

METHODS = ("linear", "task_arithmetic", "ties", "dare_linear", "dare_ties")
NEEDS_BASE = frozenset(METHODS) - {"linear"}


def trim_top(delta: Tensor, density: float) -> Tensor:
    """Keep the ``ceil(density * numel)`` entries of largest magnitude, zero the rest."""
    if density >= 1:
        return delta
    k = int(torch.ceil(torch.tensor(density * delta.numel())).item())
    if k <= 0:
        return torch.zeros_like(delta)
    flat = delta.reshape(-1)
    keep = torch.zeros_like(flat, dtype=torch.bool)
    keep[flat.abs().topk(k).indices] = True
    return (flat * keep).reshape(delta.shape)


def dare(delta: Tensor, drop: float, generator: torch.Generator) -> Tensor:
    """Drop entries with probability ``drop`` and rescale the rest by ``1 / (1 - drop)``."""
    if drop <= 0:
        return delta
    keep = torch.rand(delta.shape, generator=generator) >= drop
    return delta * keep / (1 - drop)


def disjoint_mean(deltas: Sequence[Tensor], weights: Sequence[float]) -> Tensor:
    """TIES' sign election and α-weighted mean over the deltas that agree with it."""
    weighted = torch.stack([w * d for w, d in zip(weights, deltas, strict=True)])
    sign = torch.sign(weighted.sum(0))
    agree = (torch.sign(torch.stack(list(deltas))) == sign) & (sign != 0)
    alpha = torch.tensor(list(weights), dtype=torch.float32).view(-1, *[1] * deltas[0].dim())
    numerator = (weighted * agree).sum(0)
    denominator = (alpha * agree).sum(0)
    return torch.where(
        denominator != 0, numerator / denominator.where(denominator != 0, torch.ones_like(denominator)), torch.zeros_like(numerator)
    )


def merge_tensors(
    method: str,
    base: Tensor | None,
    tensors: Sequence[Tensor],
    weights: Sequence[float],
    *,
    lam: float = 1.0,
    density: float = 0.2,
    drop: float = 0.2,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Merge one parameter tensor of several models (float32 result, shape of the inputs).

    Args:
        method: one of :data:`METHODS`.
        base: θ₀ (required except for ``linear``).
        tensors: θ_i, same shape as ``base``.
        weights: α_i, one per tensor.
        lam: λ, the scale of the merged task vector.
        density: the fraction TIES keeps of each task vector.
        drop: DARE's drop probability.
        generator: seeded generator for DARE.
    """
    if method not in METHODS:
        raise ValueError(f"unknown merge method {method!r}; choose one of {', '.join(METHODS)}")
    experts = [t.float() for t in tensors]
    if method == "linear":
        total = sum(weights)
        return sum(w * t for w, t in zip(weights, experts, strict=True)) / total
    base32 = base.float()
    deltas = [t - base32 for t in experts]
    if method.startswith("dare"):
        generator = generator or torch.Generator().manual_seed(0)
        deltas = [dare(d, drop, generator) for d in deltas]
    if method in ("task_arithmetic", "dare_linear"):
        merged = sum(w * d for w, d in zip(weights, deltas, strict=True))
    else:
        if method == "ties":
            deltas = [trim_top(d, density) for d in deltas]
        merged = disjoint_mean(deltas, weights)
    return base32 + lam * merged
