"""Orth-Proj and Orth-Cali (Chuang et al. 2023, "Debiasing Vision-Language Models via Biased
Prompts"), the projection baselines of SEM (arXiv 2603.19028, §3.3).

All embeddings are L2-normalised first, as in the original code (``chingyaoc/debias_vl``).

- Orth-Proj: ``P0 = I - V V^T`` with ``V`` an orthonormal basis of the spurious-prompt
  embeddings (their span); ``e' = normalise(P0 e)``.
- Orth-Cali: ``P = P0 (I + lam M)^-1`` with ``M`` the mean over prompt pairs ``(i, j)`` that differ
  only in the spurious attribute of ``(z_i - z_j)(z_i - z_j)^T``; ``e' = normalise(P e)``.
  ``lam = 1000``, the original default.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

DEFAULT_LAMBDA = 1000.0


def orthonormal_span(vectors: Tensor, tol: float = 1e-6) -> Tensor:
    """An orthonormal basis ``(D, r)`` of the span of the rows of ``vectors`` ``(n, D)``."""
    U, S, _ = torch.linalg.svd(vectors.double().T, full_matrices=False)
    return U[:, S > tol * S.max()]


def orth_proj_matrix(spurious: Tensor) -> Tensor:
    """``P0 = I - V V^T`` ``(D, D)`` for unit spurious-prompt embeddings ``(n, D)``."""
    V = orthonormal_span(F.normalize(spurious.double(), dim=-1))
    return torch.eye(V.shape[0], dtype=torch.float64) - V @ V.T


def orth_cali_matrix(spurious: Tensor, candidates: Tensor, pairs: Sequence[tuple[int, int]], lam: float = DEFAULT_LAMBDA) -> Tensor:
    """``P = P0 (I + lam M)^-1`` ``(D, D)``; ``pairs`` index rows of ``candidates`` ``(c, D)``."""
    if not pairs:
        raise ValueError("Orth-Cali needs at least one pair of prompts that differ only in the spurious attribute")
    z = F.normalize(candidates.double(), dim=-1)
    diffs = torch.stack([z[i] - z[j] for i, j in pairs])
    M = diffs.T @ diffs / len(pairs)
    G = torch.eye(M.shape[0], dtype=torch.float64) + lam * M
    return orth_proj_matrix(spurious) @ torch.linalg.inv(G)


def apply(matrix: Tensor, embeddings: Tensor) -> Tensor:
    """``normalise(P e)`` for each row of ``embeddings`` ``(q, D)``."""
    return F.normalize(F.normalize(embeddings.double(), dim=-1) @ matrix.T, dim=-1).float()
