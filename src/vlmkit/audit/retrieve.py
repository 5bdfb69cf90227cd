"""Captions and retrieval of C2B (arXiv 2504.20902, §3.2-3.3).

Each (target ``y``, attribute ``i``, bias class ``b_ij``) gets one caption, the template filled
with ``y`` and ``b_ij``, and the top ``k`` images of the index for that caption are pseudo-labelled
``(y, b_ij)``.

De-duplication (the paper leaves it open): besides the index's own removal of repeated files
and near-duplicate embeddings, an image may appear in only one class of the same (target,
attribute): when several captions of ``y`` and ``i`` retrieve it, it stays with the caption it is
most similar to. Images may repeat across attributes (a red circle on black is evidence for both
"red" and "black background") and across targets. Each caption first fetches
``overfetch * k`` candidates so that groups still reach ``k`` after de-duplication.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vlmkit.audit.proposals import Proposal


@dataclass(frozen=True)
class Query:
    """One caption and the group it stands for."""

    target: str
    attribute: str
    bias: str
    caption: str


def fill(template: str, target: str, attribute: str, bias: str) -> str:
    """The caption of one group: ``template`` with ``{target}``, ``{bias}`` and ``{attribute}``."""
    return template.replace("{target}", target).replace("{bias}", bias).replace("{attribute}", attribute)


def make_queries(proposals: dict[str, Proposal], template: str, templates: dict[str, str] | None = None) -> list[Query]:
    """One :class:`Query` per (target, attribute, bias class), in a stable order.

    ``templates`` optionally overrides ``template`` per attribute.
    """
    queries = []
    for target in proposals:
        for attribute, classes in proposals[target].items():
            chosen = (templates or {}).get(attribute, template)
            queries.extend(Query(target, attribute, bias, fill(chosen, target, attribute, bias)) for bias in classes)
    return queries


@dataclass(frozen=True)
class Retrieved:
    """The images kept for one query: index positions ``(m,)``, paths and similarities, best first."""

    query: Query
    positions: list[int]
    paths: list[str]
    scores: list[float]


def assign_unique(candidates: list[list[tuple[int, float]]], k: int) -> list[list[tuple[int, float]]]:
    """De-duplicate within a block of queries: each item goes to the query it scores highest for
    (ties: the earlier query); then each query keeps its best ``k``.

    ``candidates[q]`` is a list of ``(item, score)`` for query ``q``, best first.
    """
    best: dict[int, tuple[float, int]] = {}
    for q, row in enumerate(candidates):
        for item, score in row:
            if item not in best or score > best[item][0]:
                best[item] = (score, q)
    return [[(item, score) for item, score in row if best[item][1] == q][:k] for q, row in enumerate(candidates)]


def retrieve(index, text_vectors: np.ndarray, queries: list[Query], k: int, overfetch: int = 4) -> list[Retrieved]:
    """Top-``k`` images per query from an :class:`~vlmkit.retrieval.index.ImageIndex`.

    Args:
        text_vectors: ``(len(queries), dim)`` unit embeddings of the captions, by the index's model.
    """
    hits = index.search(text_vectors, k=k * overfetch, dedup=True)
    blocks: dict[tuple[str, str], list[int]] = {}
    for q, query in enumerate(queries):
        blocks.setdefault((query.target, query.attribute), []).append(q)
    kept: list[list[tuple[int, float]]] = [[] for _ in queries]
    for members in blocks.values():
        for q, row in zip(members, assign_unique([[(h.position, h.score) for h in hits[q]] for q in members], k), strict=True):
            kept[q] = row
    paths = {h.position: h.path for row in hits for h in row}
    return [
        Retrieved(query, [p for p, _ in row], [paths[p] for p, _ in row], [s for _, s in row])
        for query, row in zip(queries, kept, strict=True)
    ]
