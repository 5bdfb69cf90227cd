"""Sparse non-negative codes of vectors over a concept dictionary: COMP and its baselines.

COMP (Coherent Orthogonal Matching Pursuit, SITH, arXiv 2603.24653, §3) explains a target
vector ``p`` as ``sum_k c_k d_k`` with ``c >= 0`` and ``K`` atoms chosen greedily. At step
``k`` the atom maximising ``<rho, d_j> + lam * 1[k > 1] * <mean_{i in S} d_i, d_j>`` joins the
support (``rho`` is the residual; the second term rewards atoms similar to those already chosen),
then the coefficients are refit by non-negative least squares. The baselines share the core:
non-negative OMP is COMP with ``lam = 0``; non-negative MP takes the greedy coefficient without a
refit; top-k picks the ``K`` most similar atoms, then refits.

All functions work on batches: targets ``(N, d)``, dictionary ``(M, d)`` with unit rows.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from vlmkit.interpret.screen import CandidateScreen, ScreenIndex

METHODS = ("comp", "omp", "mp", "topk")


def nnls(atoms: Tensor, targets: Tensor, ridge: float = 1e-6, sweeps: int = 100, tol: float = 1e-6) -> Tensor:
    """Batched ``argmin_{c >= 0} ||p - c @ atoms||^2`` by cyclic coordinate descent.

    Args:
        atoms: ``(N, k, d)``, the chosen atoms of each target.
        targets: ``(N, d)``.
        ridge: ridge of the initial solve; its solution, clipped at 0, starts the descent.
        sweeps, tol: at most ``sweeps`` passes over the coordinates in a fixed order, stopping
            when no coefficient of any target moves by more than ``tol``.

    Returns:
        ``(N, k)`` non-negative coefficients (float64 internally for determinism).
    """
    A = atoms.double()
    gram = A @ A.transpose(1, 2)  # (N, k, k)
    rhs = (A @ targets.double().unsqueeze(-1)).squeeze(-1)  # (N, k)
    return nnls_normal(gram, rhs, ridge, sweeps, tol).to(targets.dtype)


def nnls_normal(gram: Tensor, rhs: Tensor, ridge: float = 1e-6, sweeps: int = 100, tol: float = 1e-6) -> Tensor:
    """:func:`nnls` from its normal equations: ``gram`` ``(N, k, k)`` = ``A A^T`` and ``rhs``
    ``(N, k)`` = ``A p``, float64. Returns ``(N, k)`` float64.

    The sweeps run in numpy: the same float64 arithmetic in the same coordinate order, at a
    fraction of torch's per-call cost on these small arrays.
    """
    eye = torch.eye(gram.shape[-1], dtype=gram.dtype)
    coef = torch.linalg.solve(gram + ridge * eye, rhs).clamp(min=0).numpy().copy()
    diag = gram.diagonal(dim1=1, dim2=2).clamp(min=1e-12).numpy()
    G, b = gram.numpy(), rhs.numpy()
    rows = [np.ascontiguousarray(G[:, j]) for j in range(coef.shape[1])]
    for _ in range(sweeps):
        largest_step = 0.0
        for j, row in enumerate(rows):
            current = coef[:, j]
            updated = np.maximum(current + (b[:, j] - np.einsum("nk,nk->n", row, coef)) / diag[:, j], 0.0)
            largest_step = max(largest_step, float(np.abs(updated - current).max(initial=0.0)))
            coef[:, j] = updated
        if largest_step <= tol:
            break
    return torch.from_numpy(coef)


def sparse_code(
    targets: Tensor, dictionary: Tensor, k: int = 5, lam: float = 0.3, method: str = "comp", index: ScreenIndex | None = None
) -> tuple[Tensor, Tensor]:
    """Explain each target with ``k`` dictionary atoms and non-negative coefficients.

    The targets meet the dictionary in one ``(N, M)`` product (in bfloat16 with a bound on its
    error where the CPU has it natively, see :meth:`ScreenIndex.first_pass`); every selection finds
    the argmax of ``residual + lam * mean_S`` against ``D`` exactly by screening
    (:mod:`vlmkit.interpret.screen`): bounds decide which few scores to compute, so the codes are
    those of rescoring against the whole dictionary at every step (tested against that direct form
    on planted, random and adversarial cases).

    Args:
        targets: ``(N, d)`` vectors to explain.
        dictionary: ``(M, d)`` unit-norm atoms (concept embeddings).
        k: atoms per target.
        lam: COMP's coherence weight (ignored by the other methods).
        method: ``comp``, ``omp`` (non-negative OMP), ``mp`` (non-negative MP) or ``topk``.
        index: the dictionary's :class:`ScreenIndex`, to reuse across calls (e.g. every batch of
            every layer); a fresh one by default.

    Returns:
        indices ``(N, k)`` in selection order and coefficients ``(N, k)`` (may be exactly 0).
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if not 1 <= k <= dictionary.shape[0]:
        raise ValueError(f"k must lie in [1, {dictionary.shape[0]}], got {k}")
    targets, dictionary = targets.float(), dictionary.float()
    if method == "topk":
        indices = (targets @ dictionary.T).topk(k, dim=1).indices
        return indices, nnls(dictionary[indices], targets)
    lam = lam if method == "comp" else 0.0
    n = targets.shape[0]
    indices = torch.zeros(n, k, dtype=torch.long)
    coef = torch.zeros(n, k)
    residual = targets  # needed by MP's greedy coefficient only
    chosen64 = torch.zeros(n, k, targets.shape[1], dtype=torch.float64)  # the selected atoms, float64
    normal = torch.zeros(n, k, k, dtype=torch.float64)  # their A A^T, grown a row per step
    rhs = torch.zeros(n, k, dtype=torch.float64)  # A p
    targets64 = targets.double()
    screen = CandidateScreen(targets, index if index is not None else ScreenIndex(dictionary))  # the one full pass
    for step in range(k):
        if step == 0:
            indices[:, 0] = screen.select_first()
        else:  # <residual + lam mean_S, d_j> = P_j - <u, d_j>, u = sum_t (c_t - lam / step) d_t
            weights = (coef[:, :step] - lam / step).double()
            # (1, step) @ (step, d) per target: multiplying and summing over the step axis to float64
            # rounding (tests/test_comp.py), at a third of the time
            indices[:, step] = screen.select(torch.bmm(weights.unsqueeze(1), chosen64[:, :step]).squeeze(1))
        newest = dictionary[indices[:, step]]  # (N, d)
        chosen64[:, step] = newest
        if method == "mp":
            coef[:, step] = (residual * newest).sum(-1).clamp(min=0)
            residual = residual - coef[:, step : step + 1] * newest
            continue
        products = (chosen64[:, : step + 1] @ chosen64[:, step].unsqueeze(-1)).squeeze(-1)  # (N, step+1): <d_t, d_new>
        normal[:, step, : step + 1] = products
        normal[:, : step + 1, step] = products
        rhs[:, step] = (chosen64[:, step] * targets64).sum(-1)
        coef[:, : step + 1] = nnls_normal(normal[:, : step + 1, : step + 1], rhs[:, : step + 1]).float()
    return indices, coef
