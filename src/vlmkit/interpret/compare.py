"""Compare the heads of a fine-tuned model with its base (SITH, arXiv 2603.24653, §3 step 8).

Per head: match the two sets of singular vectors one to one with the Hungarian algorithm on
``|cos|`` (signs are arbitrary), then report the matched ``|cos|``, the relative change of the
matched singular values ``(sigma' - sigma) / sigma``, and the Jaccard overlap of the matched
vectors' concept sets. "Fine-tuning re-weights a stable basis" reads as: high matched ``|cos|``
and concept overlap, with singular values that move.

As a yardstick, each head is also matched against a random orthonormal basis of the same size:
the ``|cos|`` that matching alone produces between unrelated subspaces.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from torch import Tensor


@dataclass
class HeadMatch:
    """One layer: ``match`` ``(H, r)`` the tuned index matched to each base vector, ``cos`` ``(H, r)``
    its ``|cos|``, ``rel_dsigma`` ``(H, r)`` and ``random_cos`` ``(H, r)`` the yardstick."""

    layer: int
    match: Tensor
    cos: Tensor
    rel_dsigma: Tensor
    random_cos: Tensor


def hungarian(base: Tensor, tuned: Tensor) -> tuple[Tensor, Tensor]:
    """Match rows of ``base`` ``(r, d)`` to rows of ``tuned`` ``(r, d)`` (unit rows) maximising total ``|cos|``.

    Returns the matched tuned index ``(r,)`` and the matched ``|cos|`` ``(r,)``.
    """
    similarity = (base.double() @ tuned.double().T).abs().numpy()
    rows, cols = linear_sum_assignment(similarity, maximize=True)
    match = torch.from_numpy(cols[np.argsort(rows)])
    return match, torch.from_numpy(similarity[np.arange(len(match)), match.numpy()])


def _random_orthonormal(rows: int, dim: int, gen: torch.Generator) -> Tensor:
    q, _ = torch.linalg.qr(torch.randn(dim, rows, generator=gen, dtype=torch.float64))
    return q.T


def match_layer(layer: int, base_S: Tensor, base_Vt: Tensor, tuned_S: Tensor, tuned_Vt: Tensor, seed: int = 0) -> HeadMatch:
    """Match every head of one layer; ``S`` ``(H, r)``, ``Vt`` ``(H, r, d)``."""
    gen = torch.Generator().manual_seed(seed + layer)
    matches, coss, dsig, rand = [], [], [], []
    for h in range(base_S.shape[0]):
        match, cos = hungarian(base_Vt[h], tuned_Vt[h])
        matches.append(match)
        coss.append(cos)
        dsig.append((tuned_S[h, match].double() - base_S[h].double()) / base_S[h].double().clamp(min=1e-12))
        rand.append(hungarian(base_Vt[h], _random_orthonormal(*base_Vt[h].shape, gen))[1])
    return HeadMatch(layer, torch.stack(matches), torch.stack(coss).float(), torch.stack(dsig).float(), torch.stack(rand).float())


def jaccard(a, b) -> Tensor:
    """Row-wise Jaccard index of two ``(N, K)`` sets (tensors of indices, or lists of any
    hashable items such as concept names) -> ``(N,)``."""
    out = []
    for x, y in zip(*(rows.tolist() if hasattr(rows, "tolist") else rows for rows in (a, b)), strict=True):
        sx, sy = set(x), set(y)
        out.append(len(sx & sy) / len(sx | sy))
    return torch.tensor(out)
