"""Bias scores of C2B (Guimard et al., CVPR 2025, arXiv 2504.20902, §3): accuracy per
(target, bias class) group, phi per bias class, and a ranking of bias attributes.

For a target class ``y`` and a bias attribute ``i`` with classes ``b_i1 .. b_in``::

    A_y(f, b_ij) = mean over the images R_yij retrieved for (y, b_ij) of 1[f(x) = y]
    phi_yij      = A_y(f, b_ij) - 1/(n - 1) * sum_{k != j} A_y(f, b_ik)

phi > 0: f favours ``b_ij`` for ``y``; phi < 0: f is biased against it.

Choices the paper leaves open (documented in ``docs/c2b.md``):

- **Attribute score** (the ranking key): for each target, the largest ``|phi|`` over the
  attribute's classes; averaged over the targets the attribute was proposed for. A bias that
  favours one class (the usual shape of a spurious correlation) scores its full size instead of
  being diluted across the many classes it does not touch.
- **Small groups**: a group with fewer than ``min_n`` images gets no accuracy (reported with its
  count); an attribute needs two scored classes for a target. Intervals come from
  ``draws`` samples of each group's accuracy from its Jeffreys posterior ``Beta(k + 1/2, n - k + 1/2)``
  pushed through phi and the score, so a group of 3 images gets a wide interval and a group of
  20 all-correct images does not get a zero-width one. phi is linear in the accuracies, so its
  interval is the percentile one. The score is a maximum, which noise inflates, so its interval
  is the basic (pivotal) one, ``[2s - q_hi, 2s - q_lo]``, and ``score_corrected`` = ``2s - mean``
  of the draws; both lie below the raw score when noise is what makes it large.
- **Detected bias**: a (target, attribute, class) row whose ``|phi| >= threshold`` and whose
  interval excludes 0.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Group:
    """The images retrieved for one (target, attribute, bias class) and whether f got each right.

    Attributes:
        correct: ``(n,)`` bool, ``f(x) == target`` for each retrieved image.
    """

    target: str
    attribute: str
    bias: str
    correct: np.ndarray

    @property
    def n(self) -> int:
        return int(len(self.correct))


def phi(accuracy: np.ndarray) -> np.ndarray:
    """phi of every class of one attribute: ``(..., n_classes)`` accuracies -> same shape.

    ``phi_j = A_j - (sum_k A_k - A_j) / (n_classes - 1)``; needs ``n_classes >= 2``.
    """
    accuracy = np.asarray(accuracy, dtype=np.float64)
    n = accuracy.shape[-1]
    if n < 2:
        raise ValueError("phi needs at least two bias classes")
    total = accuracy.sum(-1, keepdims=True)
    return accuracy - (total - accuracy) / (n - 1)


def attribute_score(phis: Iterable[np.ndarray]) -> np.ndarray:
    """Mean over targets of ``max_j |phi_j|``; each item is ``(..., n_classes)`` for one target."""
    per_target = [np.abs(p).max(-1) for p in phis]
    return np.mean(per_target, axis=0)


def posterior_accuracy(k: int, n: int, draws: int, rng: np.random.Generator) -> np.ndarray:
    """``(draws,)`` samples of an accuracy of ``k`` correct out of ``n`` (Jeffreys prior)."""
    return rng.beta(k + 0.5, n - k + 0.5, size=draws)


@dataclass(frozen=True)
class ScoreSettings:
    """The open choices of the scoring step, recorded with every run."""

    min_n: int = 5
    threshold: float = 0.1
    level: float = 0.9
    draws: int = 2000
    seed: int = 0


def _interval(samples: np.ndarray, level: float) -> list[float]:
    tail = (1 - level) / 2
    low, high = np.quantile(samples, [tail, 1 - tail])
    return [float(low), float(high)]


def _basic_interval(point: float, samples: np.ndarray, level: float) -> list[float]:
    low, high = _interval(samples, level)
    return [2 * point - high, 2 * point - low]


def rank_attributes(groups: Iterable[Group], settings: ScoreSettings = ScoreSettings()) -> list[dict]:
    """The attribute ranking, sorted by descending score.

    Returns one dict per attribute: ``attribute``, ``score``, ``interval`` (basic interval of the
    score), ``score_corrected`` (the score less its estimated noise inflation),
    ``targets`` (how many targets it was scored for) and ``classes``: one row per (target, bias
    class) with ``target``, ``name``, ``n``, ``accuracy``, ``phi``, ``phi_interval`` and
    ``detected`` (``None`` values where the group is too small). Attributes that could not be
    scored for any target come last with ``score`` ``None``.
    """
    rng = np.random.default_rng(settings.seed)
    by_attribute: dict[str, dict[str, list[Group]]] = defaultdict(lambda: defaultdict(list))
    for group in groups:
        by_attribute[group.attribute][group.target].append(group)
    ranking = []
    for attribute in sorted(by_attribute):
        rows, point_phis, sampled_phis = [], [], []
        for target in sorted(by_attribute[attribute]):
            members = by_attribute[attribute][target]
            scored = [g for g in members if g.n >= settings.min_n]
            if len(scored) >= 2:
                point = np.asarray([g.correct.mean() for g in scored])
                samples = np.stack([posterior_accuracy(int(g.correct.sum()), g.n, settings.draws, rng) for g in scored], -1)
                point_phi, sample_phi = phi(point), phi(samples)
                point_phis.append(point_phi)
                sampled_phis.append(sample_phi)
                stats = {
                    id(g): (float(point[j]), float(point_phi[j]), _interval(sample_phi[:, j], settings.level)) for j, g in enumerate(scored)
                }
            else:
                stats = {}
            for group in members:
                accuracy, value, interval = stats.get(id(group), (None, None, None))
                detected = None if value is None else bool(abs(value) >= settings.threshold and (interval[0] > 0 or interval[1] < 0))
                rows.append({"target": target, "name": group.bias, "n": group.n, "accuracy": accuracy, "phi": value,
                             "phi_interval": interval, "detected": detected})
        rows.sort(key=lambda r: (r["phi"] is None, -abs(r["phi"] or 0.0), r["target"], r["name"]))
        entry = {
            "attribute": attribute,
            "score": None,
            "interval": None,
            "score_corrected": None,
            "targets": len(point_phis),
            "classes": rows,
        }
        if point_phis:
            score, draws = float(attribute_score(point_phis)), attribute_score(sampled_phis)
            entry.update(
                score=score, interval=_basic_interval(score, draws, settings.level), score_corrected=float(2 * score - draws.mean())
            )
        ranking.append(entry)
    ranking.sort(key=lambda e: (e["score"] is None, -(e["score"] or 0.0), e["attribute"]))
    return ranking


def detected_biases(ranking: list[dict]) -> list[dict]:
    """The rows flagged ``detected``, as ``{"target", "attribute", "bias", "phi"}``."""
    return [{"target": row["target"], "attribute": entry["attribute"], "bias": row["name"], "phi": row["phi"]}
            for entry in ranking for row in entry["classes"] if row["detected"]]
