"""Evaluating C2B against annotated data (arXiv 2504.20902, §4): ground-truth biases, Hit /
False Hit / Miss, the agreement score, and retrieval precision.

Choices the paper leaves open (documented in ``docs/c2b.md``):

- **Ground-truth bias**: the same statistic as C2B's phi, computed on a *labelled* set: for true
  class ``y`` and annotated attribute ``a`` with values ``v``, ``Delta_yav`` = accuracy of f on
  images of ``y`` with ``a = v`` minus the mean accuracy over the other values of ``a``; a
  ground-truth bias is a row with ``|Delta| >= threshold`` whose interval excludes 0
  (:func:`vlmkit.audit.scores.rank_attributes` with the same :class:`ScoreSettings`).
- **Matching**: a detected bias ``(y, attribute, class, phi)`` matches a ground-truth bias
  ``(y, a, v, Delta)`` when the target is the same, the signs agree, and the names match:
  the class equals ``v`` and the attribute equals ``a`` or one contains the other, after
  lower-casing and turning ``_`` into spaces. For a boolean annotation (``True``/``False``, as
  CelebA's), ``a = True`` matches a class named ``a`` or ``with a``; ``a = False`` a class named
  ``no a``, ``without a`` or ``not a``, under any attribute name.
- **Hit** = detected biases that match a ground-truth bias; **False Hit** = detected biases that
  match none; **Miss** = ground-truth biases no detected bias matches.
- **Agreement**: over the (target, attribute, class) rows scored by both C2B and the labelled
  set (matched by name as above, whether detected or not), the fraction whose phi and Delta have
  the same sign, and the Pearson correlation of phi and Delta.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from vlmkit.audit.scores import Group, ScoreSettings, detected_biases, rank_attributes


def _norm(text) -> str:
    return " ".join(str(text).replace("_", " ").split()).lower()


def names_match(attribute: str, bias: str, gt_attribute: str, gt_value) -> bool:
    """Whether a proposed (attribute, class) names an annotated (attribute, value)."""
    attribute, bias, gt_attribute, value = _norm(attribute), _norm(bias), _norm(gt_attribute), _norm(gt_value)
    if value == "true":
        return bias in (gt_attribute, f"with {gt_attribute}")
    if value == "false":
        return bias in (f"no {gt_attribute}", f"without {gt_attribute}", f"not {gt_attribute}")
    return bias == value and (attribute == gt_attribute or gt_attribute in attribute or attribute in gt_attribute)


def ground_truth_groups(true_labels: Sequence[str], predictions: Sequence[str], annotations: Sequence[dict],
                        attributes: Sequence[str] | None = None) -> list[Group]:
    """Groups (true class, annotated attribute, value) of a labelled set, with f's correctness."""
    correct = np.asarray([p == t for p, t in zip(predictions, true_labels, strict=True)])
    names = attributes or sorted({k for row in annotations for k in row})
    cells: dict[tuple[str, str, str], list[int]] = {}
    for i, (label, row) in enumerate(zip(true_labels, annotations, strict=True)):
        for name in names:
            if row.get(name) is not None:
                cells.setdefault((str(label), name, str(row[name])), []).append(i)
    return [Group(t, a, v, correct[idx]) for (t, a, v), idx in sorted(cells.items())]


def ground_truth_biases(
    true_labels, predictions, annotations, attributes=None, settings: ScoreSettings = ScoreSettings()
) -> tuple[list[dict], list[dict]]:
    """``(ranking, biases)`` on a labelled set: the same statistic and rule as detection."""
    ranking = rank_attributes(ground_truth_groups(true_labels, predictions, annotations, attributes), settings)
    return ranking, detected_biases(ranking)


def _matches(row: dict, gt: dict) -> bool:
    return row["target"] == gt["target"] and names_match(row["attribute"], row["bias"], gt["attribute"], gt["bias"])


def hit_miss(detected: Sequence[dict], truth: Sequence[dict]) -> dict:
    """Hit / False Hit / Miss counts (sign-aware name matching) and the rates built from them."""
    def same(row, gt):
        return _matches(row, gt) and np.sign(row["phi"]) == np.sign(gt["phi"])

    hits = sum(any(same(d, g) for g in truth) for d in detected)
    found = sum(any(same(d, g) for d in detected) for g in truth)
    return {
        "hit": hits,
        "false_hit": len(detected) - hits,
        "miss": len(truth) - found,
        "detected": len(detected),
        "ground_truth": len(truth),
        "precision": hits / len(detected) if detected else None,
        "recall": found / len(truth) if truth else None,
    }


def _rows(ranking: list[dict]) -> list[dict]:
    return [{"target": r["target"], "attribute": e["attribute"], "bias": r["name"], "phi": r["phi"]}
            for e in ranking for r in e["classes"] if r["phi"] is not None]


def agreement(ranking: list[dict], truth_ranking: list[dict]) -> dict:
    """Sign agreement and Pearson r between phi and the labelled Delta over rows both scored."""
    truth = _rows(truth_ranking)
    pairs = []
    for row in _rows(ranking):
        match = next((g for g in truth if _matches(row, g)), None)
        if match is not None:
            pairs.append((row["phi"], match["phi"]))
    if not pairs:
        return {"rows": 0, "sign_agreement": None, "pearson": None}
    phi, delta = np.asarray(pairs).T
    pearson = float(np.corrcoef(phi, delta)[0, 1]) if len(pairs) > 2 and phi.std() > 0 and delta.std() > 0 else None
    return {"rows": len(pairs), "sign_agreement": float(np.mean(np.sign(phi) == np.sign(delta))), "pearson": pearson}


def retrieval_precision(retrieved, truth_of: dict[str, dict], target_attribute: str) -> dict:
    """Fraction of retrieved images that really show their pseudo-label, from ground truth.

    Args:
        retrieved: :class:`~vlmkit.audit.retrieve.Retrieved` groups.
        truth_of: resolved image path -> its annotated attributes (including ``target_attribute``).
    Returns ``target`` (the image shows y), ``bias`` (it shows the bias class, judged by
    :func:`names_match` against every annotated attribute), ``both`` and ``n`` (images with ground truth).
    """
    target = bias = both = n = 0
    for group in retrieved:
        q = group.query
        for path in group.paths:
            attrs = truth_of.get(path)
            if attrs is None:
                continue
            n += 1
            t = _norm(attrs.get(target_attribute)) == _norm(q.target)
            b = any(names_match(q.attribute, q.bias, name, value) for name, value in attrs.items() if name != target_attribute)
            target, bias, both = target + t, bias + b, both + (t and b)
    return {
        "n": n,
        **(
            {k: v / n for k, v in (("target", target), ("bias", bias), ("both", both))}
            if n
            else {"target": None, "bias": None, "both": None}
        ),
    }
