"""Retrieval metrics."""

from __future__ import annotations

import numpy as np


def recall_at_k(similarity: np.ndarray, relevant: np.ndarray, ks=(1, 5, 10)) -> dict[int, float]:
    """Fraction of queries with at least one relevant item among their top ``k``.

    similarity: ``(n_queries, n_items)``; relevant: ``(n_queries, n_items)`` bool.
    Ties are broken by item order (a stable sort).
    """
    order = np.argsort(-similarity, axis=1, kind="stable")
    hits = np.take_along_axis(relevant, order, axis=1)
    return {k: float(hits[:, :k].any(1).mean()) for k in ks}
