"""Fairness of retrieval and robustness of classification (SEM, arXiv 2603.19028, §4).

Retrieval: a query ranks a pool of images; ``p_hat_K(c)`` is the share of value ``c`` of the
sensitive attribute among the top ``K``, ``p(c)`` its share in the whole pool.

- ``KL@K = sum_c p_hat_K(c) log(p_hat_K(c) / p(c))`` (terms with ``p_hat_K(c) = 0`` are 0);
- ``MaxSkew@K = max(0, max_c log((p_hat_K(c) + eps) / (p(c) + eps)))``, ``eps = 1e-10``;
- ``NDKL = sum_{k<=K} KL@k / log2(k + 1) / sum_{k<=K} 1 / log2(k + 1)``;
- ``Precision@K``: the fraction of the top ``K`` that is relevant.

Split statistics: the mean and the 95% Student-t interval over splits,
``mean +- t_{0.975, n-1} s / sqrt(n)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import stats

from vlmkit.metrics.classification import group_summary

EPS = 1e-10


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` highest scores ``(n,)``, best first (ties broken by index)."""
    k = min(k, len(scores))
    return np.argsort(-scores, kind="stable")[:k]


def _shares(values: np.ndarray, classes: np.ndarray) -> np.ndarray:
    return np.asarray([(values == c).mean() if len(values) else 0.0 for c in classes])


def kl_at_k(ranked_values: np.ndarray, pool_values: np.ndarray, k: int) -> float:
    """``KL(p_hat_K || p)`` for the sensitive values of a ranking (best first) and of the pool."""
    classes = np.unique(pool_values)
    p_hat, p = _shares(ranked_values[:k], classes), _shares(pool_values, classes)
    mask = p_hat > 0
    return float((p_hat[mask] * np.log(p_hat[mask] / p[mask])).sum())


def max_skew_at_k(ranked_values: np.ndarray, pool_values: np.ndarray, k: int) -> float:
    classes = np.unique(pool_values)
    p_hat, p = _shares(ranked_values[:k], classes), _shares(pool_values, classes)
    return float(max(0.0, np.log((p_hat + EPS) / (p + EPS)).max()))


def ndkl(ranked_values: np.ndarray, pool_values: np.ndarray, k: int) -> float:
    k = min(k, len(ranked_values))
    weights = 1 / np.log2(np.arange(1, k + 1) + 1)
    kls = np.asarray([kl_at_k(ranked_values, pool_values, i) for i in range(1, k + 1)])
    return float((weights * kls).sum() / weights.sum())


def precision_at_k(ranked_relevant: np.ndarray, k: int) -> float:
    return float(np.asarray(ranked_relevant[:k], dtype=float).mean())


def retrieval_fairness(similarity: np.ndarray, sensitive: Sequence, k: int, relevant: np.ndarray | None = None) -> dict[str, float]:
    """Mean KL@K, MaxSkew@K, NDKL (and Precision@K when ``relevant`` ``(queries, pool)`` is given)
    over queries; ``similarity`` is ``(queries, pool)``, ``sensitive`` the pool's values."""
    pool = np.asarray(sensitive)
    out: dict[str, list[float]] = {"kl": [], "max_skew": [], "ndkl": []}
    if relevant is not None:
        out["precision"] = []
    for q, scores in enumerate(similarity):
        order = top_k(scores, k)
        ranked = pool[order]
        out["kl"].append(kl_at_k(ranked, pool, k))
        out["max_skew"].append(max_skew_at_k(ranked, pool, k))
        out["ndkl"].append(ndkl(ranked, pool, k))
        if relevant is not None:
            out["precision"].append(precision_at_k(relevant[q][order], k))
    return {name: float(np.mean(values)) for name, values in out.items()}


def worst_group_accuracy(correct: np.ndarray, groups: Sequence) -> tuple[float, float]:
    """(worst-group accuracy, mean-group accuracy) over the groups present."""
    summary = group_summary(correct, [str(g) for g in groups])
    return summary["worst_group_accuracy"], summary["mean_group_accuracy"]


def mean_ci(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float]:
    """Mean and half-width of the Student-t interval; the half-width is 0 for a single value."""
    values = np.asarray(values, dtype=float)
    if len(values) < 2:
        return float(values.mean()), 0.0
    half = stats.t.ppf(0.5 + confidence / 2, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values))
    return float(values.mean()), float(half)


def random_halves(n: int, splits: int = 10, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """``splits`` random 50/50 partitions of ``range(n)`` as (reference half, evaluated half)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(splits):
        order = rng.permutation(n)
        out.append((np.sort(order[: n // 2]), np.sort(order[n // 2 :])))
    return out
