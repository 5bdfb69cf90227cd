"""Attribute AP and mAP against scikit-learn and hand-computed cases."""

import numpy as np
import pytest

from vlmkit.metrics.attributes import attribute_map, average_precision, frequency_bins

sklearn_metrics = pytest.importorskip("sklearn.metrics")


def test_average_precision_matches_scikit_learn_with_ties_and_unknowns():
    rng = np.random.default_rng(0)
    for _ in range(20):
        scores = rng.integers(0, 6, 40).astype(float)  # many ties
        labels = rng.choice([1, 0, -1], 40, p=[0.3, 0.5, 0.2])
        keep = labels >= 0
        expected = sklearn_metrics.average_precision_score(labels[keep] == 1, scores[keep])
        assert average_precision(scores, labels) == pytest.approx(expected)


def test_by_hand_and_missing_positives():
    # ranking: P N P -> AP = (1/2)(1/1) + (1/2)(2/3)
    assert average_precision(np.array([0.9, 0.8, 0.7]), np.array([1, 0, 1])) == pytest.approx(0.5 + 1 / 3)
    assert average_precision(np.array([0.9, 0.8]), np.array([0, -1])) is None


def test_map_and_bins():
    labels = np.array([[1, 1, 0], [1, 0, 0], [1, 0, 1], [0, 0, 0]])
    scores = np.array([[0.9, 0.2, 0.1], [0.8, 0.1, 0.3], [0.7, 0.3, 0.9], [0.1, 0.4, 0.2]])
    bins = frequency_bins(labels)
    assert bins == {"head": [0], "medium": [1], "tail": [2]}
    out = attribute_map(scores, labels, ["a", "b", "c"])
    assert out["ap"]["a"] == 1.0 and out["ap"]["c"] == 1.0
    assert out["ap"]["b"] == pytest.approx(sklearn_metrics.average_precision_score(labels[:, 1], scores[:, 1]))
    assert out["mAP"] == pytest.approx(np.mean(list(out["ap"].values())))
    assert out["head"] == 1.0 and out["bins"]["tail"] == ["c"]
