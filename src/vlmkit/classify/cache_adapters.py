"""Few-shot baselines on a contrastive model's features: k-NN voting and Tip-Adapter.

- k-NN: the majority label of the k retrieved shots; ties go to the tied class with the largest
  summed similarity (CIRCLE's spec leaves ties open).
- Tip-Adapter (Zhang et al., "Tip-Adapter: Training-free Adaption of CLIP for Few-shot
  Classification", ECCV 2022, Eq. 6), training-free:
  ``logits = 100 x W_c^T + alpha exp(-beta (1 - x F^T)) L``, x the normalised query feature
  ``(q, d)``, W_c the class text embeddings ``(c, d)``, F the pool's features ``(p, d)`` and L its
  one-hot labels ``(p, c)``. Defaults alpha = 1.17, beta = 1: the official ImageNet config
  (``init_alpha``, ``init_beta``), without its validation search.
"""

from __future__ import annotations

import numpy as np

TIP_ALPHA = 1.17
TIP_BETA = 1.0


def knn_vote(shot_labels: np.ndarray, shot_sims: np.ndarray, n_classes: int) -> np.ndarray:
    """``(q,)`` class per query from its shots' labels ``(q, k)`` and similarities ``(q, k)``."""
    q = len(shot_labels)
    votes = np.zeros((q, n_classes))
    mass = np.zeros((q, n_classes))
    rows = np.repeat(np.arange(q), shot_labels.shape[1])
    np.add.at(votes, (rows, shot_labels.ravel()), 1)
    np.add.at(mass, (rows, shot_labels.ravel()), shot_sims.ravel())
    best = votes == votes.max(1, keepdims=True)
    return np.where(best, mass, -np.inf).argmax(1)


def tip_adapter_logits(
    x: np.ndarray,
    class_vectors: np.ndarray,
    pool: np.ndarray,
    pool_labels: np.ndarray,
    n_classes: int,
    *,
    alpha: float = TIP_ALPHA,
    beta: float = TIP_BETA,
) -> np.ndarray:
    """``(q, c)`` Tip-Adapter logits (float64); ``alpha = 0`` or an empty pool is zero-shot CLIP."""
    logits = 100.0 * x.astype(np.float64) @ class_vectors.T.astype(np.float64)
    if len(pool) and alpha:
        one_hot = np.eye(n_classes)[pool_labels]
        affinity = x.astype(np.float64) @ pool.T.astype(np.float64)
        logits = logits + alpha * np.exp(-beta * (1.0 - affinity)) @ one_hot
    return logits
