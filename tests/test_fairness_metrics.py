"""Fairness metrics against values computed by hand."""

import math

import numpy as np
import pytest

from vlmkit.metrics.fairness import (
    kl_at_k,
    max_skew_at_k,
    mean_ci,
    ndkl,
    precision_at_k,
    random_halves,
    retrieval_fairness,
    worst_group_accuracy,
)

POOL = np.array(["a", "a", "b", "b"])  # p = (1/2, 1/2)


def test_kl_and_max_skew_by_hand():
    ranked = np.array(["a", "a", "b", "a"])
    # top 2 all "a": KL = 1 * log(1 / 0.5); MaxSkew = log(1 / 0.5)
    assert kl_at_k(ranked, POOL, 2) == pytest.approx(math.log(2))
    assert max_skew_at_k(ranked, POOL, 2) == pytest.approx(math.log(2))
    # top 4 = 3 a, 1 b: KL = .75 log(1.5) + .25 log(.5)
    assert kl_at_k(ranked, POOL, 4) == pytest.approx(0.75 * math.log(1.5) + 0.25 * math.log(0.5))
    assert max_skew_at_k(ranked, POOL, 4) == pytest.approx(math.log(1.5))
    balanced = np.array(["a", "b", "a", "b"])
    assert kl_at_k(balanced, POOL, 4) == 0 and max_skew_at_k(balanced, POOL, 4) == pytest.approx(0, abs=1e-9)


def test_ndkl_by_hand():
    ranked = np.array(["a", "b", "a", "b"])
    kls = [math.log(2), 0.0]  # KL@1 = log 2, KL@2 = 0
    weights = [1 / math.log2(2), 1 / math.log2(3)]
    assert ndkl(ranked, POOL, 2) == pytest.approx(sum(w * k for w, k in zip(weights, kls, strict=True)) / sum(weights))


def test_precision_and_retrieval_fairness():
    assert precision_at_k(np.array([1, 0, 1, 1]), 3) == pytest.approx(2 / 3)
    similarity = np.array([[0.9, 0.8, 0.1, 0.2], [0.1, 0.9, 0.8, 0.0]])  # query 0 ranks a,a; query 1 ranks a,b
    relevant = np.array([[1, 1, 0, 0], [0, 0, 1, 1]])
    out = retrieval_fairness(similarity, POOL, 2, relevant)
    assert out["kl"] == pytest.approx(math.log(2) / 2)
    assert out["precision"] == pytest.approx((1 + 0.5) / 2)


def test_worst_group_and_confidence_interval():
    correct = np.array([1, 1, 0, 1, 0, 0])
    groups = ["x", "x", "y", "y", "z", "z"]
    assert worst_group_accuracy(correct, groups) == (0.0, pytest.approx(0.5))
    mean, half = mean_ci([1.0, 2.0, 3.0])
    assert mean == 2.0 and half == pytest.approx(4.302652729911275 * 1.0 / math.sqrt(3))
    assert mean_ci([5.0]) == (5.0, 0.0)


def test_random_halves_partition():
    for ref, ev in random_halves(11, splits=3, seed=1):
        assert len(ref) == 5 and len(ev) == 6 and sorted([*ref, *ev]) == list(range(11))
    assert [r.tolist() for r, _ in random_halves(11, 3, 1)] == [r.tolist() for r, _ in random_halves(11, 3, 1)]
