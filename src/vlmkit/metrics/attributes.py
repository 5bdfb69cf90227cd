"""Attribute-detection metrics: average precision per attribute, mAP, and mAP over head,
medium and tail attributes (ComCa, arXiv 2503.19145, §4).

Labels are 1 (positive), 0 (negative) or -1 (unknown: ignored for that attribute). AP is the
step-wise area under the precision-recall curve, ``sum_k (R_k - R_{k-1}) P_k`` over the ranking
by decreasing score with tied scores taken together (the definition of scikit-learn's
``average_precision_score``). An attribute with no positive among its labelled samples has no
AP and is left out of the means (and listed).

Frequency bins: a benchmark's own (OVAD defines head/medium/tail) or, by default, terciles of
the attributes' positive counts (the most frequent third is "head").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np


def label_matrix(rows: Sequence[Mapping[str, int]], names: Sequence[str], missing: int = -1) -> np.ndarray:
    """``(n, A)`` labels in ``{1, 0, -1}``: row ``i``'s value for attribute ``names[a]``, ``missing``
    where the row does not mention it (unknown, -1, for a benchmark's manifest; negative, 0, for a
    split with complete ground truth)."""
    out = np.full((len(rows), len(names)), missing, np.int64)
    for i, row in enumerate(rows):
        for a, name in enumerate(names):
            value = row.get(name)
            if value is not None:
                out[i, a] = int(value)
    return out


def average_precision(scores: np.ndarray, labels: np.ndarray) -> float | None:
    keep = labels >= 0
    scores, positive = np.asarray(scores, float)[keep], np.asarray(labels)[keep] == 1
    n_pos = int(positive.sum())
    if n_pos == 0:
        return None
    order = np.argsort(-scores, kind="stable")
    scores, positive = scores[order], positive[order]
    ends = np.r_[np.nonzero(np.diff(scores))[0], len(scores) - 1]  # last index of each tie group
    tp = np.cumsum(positive)[ends]
    precision = tp / (ends + 1)
    recall = tp / n_pos
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def frequency_bins(labels: np.ndarray) -> dict[str, list[int]]:
    """Head / medium / tail attribute indices by terciles of positive counts (ties by index)."""
    counts = (np.asarray(labels) == 1).sum(0)
    order = np.argsort(-counts, kind="stable")
    thirds = np.array_split(order, 3)
    return {name: sorted(part.tolist()) for name, part in zip(("head", "medium", "tail"), thirds, strict=True)}


def attribute_map(scores: np.ndarray, labels: np.ndarray, names: list[str] | None = None, bins: dict[str, list[int]] | None = None) -> dict:
    """AP of every attribute ``(n, A)`` and the means overall and per bin."""
    n_attr = scores.shape[1]
    names = names or [str(i) for i in range(n_attr)]
    aps = [average_precision(scores[:, a], labels[:, a]) for a in range(n_attr)]
    bins = bins if bins is not None else frequency_bins(labels)

    def mean(indices) -> float | None:
        values = [aps[i] for i in indices if aps[i] is not None]
        return float(np.mean(values)) if values else None

    return {
        "mAP": mean(range(n_attr)), **{name: mean(idx) for name, idx in bins.items()},
        "ap": {names[a]: aps[a] for a in range(n_attr)},
        "bins": {name: [names[i] for i in idx] for name, idx in bins.items()},
        "no_positives": [names[a] for a in range(n_attr) if aps[a] is None],
    }
