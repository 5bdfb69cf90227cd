"""In-context image classification with an LMM (CIRCLE, "LMMs as General In-Context
Classifiers", arXiv 2602.23229, closed-world setting).

A conversation interleaves k labelled context images, each followed by its label, then shows the
query image with a question (or, with the ``turns`` layout, one user/assistant turn per shot). In the closed world the
question lists every class name and the answer is mapped to a class by :func:`parse_choice`.
Shots are the k pool items most similar to the query under a contrastive model ("vanilla ICL",
placed in increasing similarity, so the most similar shot sits next to the query) or k random
pool items (the control).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import cache
from importlib import resources

import numpy as np

from vlmkit.classify.prompts import fill
from vlmkit.models.chat import assistant, user

STRIP = " \t\n.!,;:\"'`"


@cache
def icl_prompts() -> dict[str, str]:
    text = resources.files("vlmkit.classify").joinpath("data/icl.json").read_text(encoding="utf-8")
    return {k: v for k, v in json.loads(text).items() if not k.startswith("_")}


def closed_question(classes: Sequence[str], template: str | None = None) -> str:
    """The query's question: ``template`` (default ``closed_question`` of ``data/icl.json``) with
    ``{classes}`` replaced by every class name, comma-separated."""
    return fill(template or icl_prompts()["closed_question"], classes=", ".join(classes))


def context_conversation(
    shots: Sequence[tuple], query, question: str, context_question: str | None = None, layout: str | None = None
) -> list:
    """``[(image, label), ...]`` then the query image and ``question``, as one interleaved user
    turn (``layout="interleaved"``, the default of ``data/icl.json``) or as one user/assistant
    turn per shot (``"turns"``, each shot asked ``context_question``)."""
    prompts = icl_prompts()
    layout = layout or prompts["layout"]
    if layout == "interleaved":
        parts = [part for image, label in shots for part in (image, fill(prompts["shot"], label=label))]
        return [user(*parts, query, question)]
    if layout != "turns":
        raise ValueError("layout must be interleaved or turns")
    context_question = context_question or prompts["context_question"]
    turns = []
    for image, label in shots:
        turns += [user(image, context_question), assistant(label)]
    return [*turns, user(query, question)]


def select_shots(query: np.ndarray, pool: np.ndarray, k: int, mode: str = "clip", rng: np.random.Generator | None = None) -> np.ndarray:
    """``(q, k)`` pool indices per query: the top-k cosine (``clip``; rows L2-normalised,
    ordered from least to most similar) or k distinct random items (``random``)."""
    q, p = len(query), len(pool)
    k = min(k, p)
    if k == 0:
        return np.zeros((q, 0), dtype=np.int64)
    if mode == "random":
        rng = rng or np.random.default_rng(0)
        return np.stack([rng.choice(p, k, replace=False) for _ in range(q)])
    if mode != "clip":
        raise ValueError("selection must be clip or random")
    sims = query @ pool.T
    top = np.argsort(-sims, axis=1, kind="stable")[:, :k]
    return top[:, ::-1].copy()


def parse_choice(answer: str, classes: Sequence[str]) -> int:
    """The class an answer names, or -1. Case-insensitive exact match (surrounding punctuation
    and whitespace stripped), else the longest class name the answer contains (the earliest on
    a tie), else -1."""
    text = answer.lower().strip(STRIP)
    lowered = [c.lower().strip() for c in classes]
    if text in lowered:
        return lowered.index(text)
    hits = [(len(c), -text.find(c), -i) for i, c in enumerate(lowered) if c and c in text]
    return -max(hits)[2] if hits else -1


def sample_pool(labels: Sequence[str], k: int, seed: int = 0) -> list[int]:
    """Indices of up to ``k`` items per class (all of a class with fewer), seeded, class order kept."""
    rng = np.random.default_rng(seed)
    by_class: dict[str, list[int]] = {}
    for i, label in enumerate(labels):
        by_class.setdefault(label, []).append(i)
    chosen = []
    for label in sorted(by_class):
        items = by_class[label]
        chosen += sorted(rng.choice(items, min(k, len(items)), replace=False).tolist())
    return chosen
