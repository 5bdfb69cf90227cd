"""ComCa's object prior and sampler (arXiv 2503.19145, §3 steps 1-2).

For each attribute ``a`` the prior over objects is ``pi_a(o) = cooc(a, o) * s(a, o)``: how often
captions of a collection mention ``a`` together with ``o``, times a compatibility score (from a
file, uniform, or later a language model). The sampler ("top-0.8_weighted" in the official code)
normalises ``pi_a``, keeps the shortest prefix of objects (by decreasing prior) whose mass
reaches the nucleus (0.8), takes a softmax over the kept *normalised* scores (values <= 1, so
close to uniform: the official behaviour, kept on purpose) and draws ``k`` objects with
replacement; a prior whose sum is <= 0.99 (all zero in practice) falls back to ``k`` uniform
draws over all objects.

Attributes and objects are given as ``name`` or ``name:syn1/syn2`` entries; a caption mentions
one when any synonym appears as whole words (case-insensitive).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vlmkit.errors import UserError
from vlmkit.runs.readers import read_json, read_text


@dataclass(frozen=True)
class Term:
    """An attribute or object: its name and the synonyms that mention it."""

    name: str
    synonyms: tuple[str, ...]

    @classmethod
    def parse(cls, entry: str) -> Term:
        name, _, rest = entry.strip().partition(":")
        synonyms = tuple(s.strip() for s in (rest or name).split("/") if s.strip())
        return cls(name.strip(), synonyms or (name.strip(),))


def parse_terms(lines: Iterable[str]) -> list[Term]:
    terms = [Term.parse(line) for line in lines if line.strip() and not line.lstrip().startswith("#")]
    names = [t.name for t in terms]
    if len(set(names)) != len(names):
        raise UserError("attribute and object names must be unique")
    return terms


def _pattern(term: Term) -> re.Pattern:
    return re.compile(r"\b(" + "|".join(re.escape(s.lower()) for s in term.synonyms) + r")\b")


def cooccurrence(captions: Iterable[str], attributes: Sequence[Term], objects: Sequence[Term]) -> np.ndarray:
    """``(A, O)`` counts of captions that mention attribute ``a`` and object ``o``."""
    attribute_patterns = [_pattern(t) for t in attributes]
    object_patterns = [_pattern(t) for t in objects]
    counts = np.zeros((len(attributes), len(objects)), np.int64)
    for text in captions:
        text = text.lower()
        a_hit = [i for i, p in enumerate(attribute_patterns) if p.search(text)]
        if not a_hit:
            continue
        o_hit = [j for j, p in enumerate(object_patterns) if p.search(text)]
        if o_hit:
            counts[np.ix_(a_hit, o_hit)] += 1
    return counts


def compatibility_from_file(path: str | Path, attributes: Sequence[Term], objects: Sequence[Term]) -> tuple[np.ndarray, list[str]]:
    """``(A, O)`` scores from a CSV (``attribute,object,score``) or JSON (``{attribute: {object: score}}``)
    file; missing pairs score 0 and are returned as log lines."""
    fix = "write CSV rows attribute,object,score or JSON {attribute: {object: score}} with numeric scores"
    if Path(path).suffix == ".json":
        table = read_json(path, "compatibility file", fix, dict[str, dict[str, float]])
        triples = [(a, o, s) for a, row in table.items() for o, s in row.items()]
    else:
        text = read_text(path, "compatibility file", fix)
        rows = list(csv.DictReader(text.splitlines()))
        if not rows or not {"attribute", "object", "score"} <= set(rows[0]):
            raise UserError(f"{path} needs a header attribute,object,score and one row per pair; {fix}")
        triples = []
        for number, row in enumerate(rows, start=2):
            try:
                triples.append((row["attribute"], row["object"], float(row["score"])))
            except (TypeError, ValueError) as exc:
                raise UserError(f"{path} line {number}: score {row.get('score')!r} is not a number; {fix}") from exc
    if any(not np.isfinite(s) for _, _, s in triples):
        raise UserError(f"{path} has a score that is not a finite number; {fix}")
    a_index = {t.name: i for i, t in enumerate(attributes)}
    o_index = {t.name: j for j, t in enumerate(objects)}
    scores = np.full((len(attributes), len(objects)), np.nan)
    for a, o, s in triples:
        if a in a_index and o in o_index:
            scores[a_index[a], o_index[o]] = float(s)
    missing = [f"no score for ({attributes[i].name}, {objects[j].name}); using 0" for i,
               j in zip(*np.nonzero(np.isnan(scores)), strict=True)]
    return np.nan_to_num(scores, nan=0.0), missing


def prior(cooc: np.ndarray | None, compatibility: np.ndarray | None) -> np.ndarray:
    """``pi = cooc * compatibility``; a missing factor counts as uniform (all ones)."""
    if cooc is None and compatibility is None:
        raise ValueError("the prior needs co-occurrence counts, compatibility scores, or both")
    if cooc is None:
        return np.asarray(compatibility, float)
    if compatibility is None:
        return np.asarray(cooc, float)
    return np.asarray(cooc, float) * np.asarray(compatibility, float)


def _nucleus(row: np.ndarray, nucleus: float) -> tuple[np.ndarray, np.ndarray] | None:
    """The objects of one prior row ``(O,)`` that :func:`sample_objects` draws from and their
    probabilities, or ``None`` for the uniform fallback (an all-zero or non-normalisable row)."""
    row = np.asarray(row, float)
    total = row.sum()
    if total <= 0 or (row / total).sum() <= 0.99:
        return None
    p = row / total
    order = np.argsort(-p, kind="stable")
    keep = order[: int(np.searchsorted(np.cumsum(p[order]), nucleus - 1e-12) + 1)]
    weights = np.exp(p[keep] - p[keep].max())
    return keep, weights / weights.sum()


def sample_objects(row: np.ndarray, k: int = 16, nucleus: float = 0.8, rng: np.random.Generator | None = None) -> np.ndarray:
    """``k`` object indices drawn for one attribute's prior row ``(O,)`` (see the module docstring)."""
    rng = rng if rng is not None else np.random.default_rng(0)
    found = _nucleus(row, nucleus)
    if found is None:
        return rng.integers(0, len(row), k)
    keep, probs = found
    return keep[rng.choice(len(keep), size=k, replace=True, p=probs)]


def sampling_probabilities(row: np.ndarray, nucleus: float = 0.8) -> np.ndarray:
    """``(O,)`` the probability with which :func:`sample_objects` draws each object for one prior row
    (zero outside the nucleus; uniform in the fallback), for ablations that allocate the ``k``
    queries instead of drawing them."""
    found = _nucleus(row, nucleus)
    if found is None:
        return np.full(len(row), 1 / len(row))
    keep, probs = found
    out = np.zeros(len(row))
    out[keep] = probs
    return out


def sample_all(pi: np.ndarray, k: int = 16, nucleus: float = 0.8, seed: int = 0) -> np.ndarray:
    """``(A, k)`` sampled object indices, one seeded generator shared across attributes in order."""
    rng = np.random.default_rng(seed)
    return np.stack([sample_objects(row, k, nucleus, rng) for row in pi])
