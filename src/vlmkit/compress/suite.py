"""Evaluation suites for chat models: named benchmarks of conversations with reference answers.

A suite file is JSON mapping benchmark names to conversation files (LLaVA/ShareGPT layout,
:mod:`vlmkit.data.conversations`); each record's *last* assistant turn is the reference answer
and everything before it is the prompt. The score of a benchmark is the fraction of answers
that match their reference after normalisation (case, surrounding whitespace and punctuation,
a leading article), the VQA-style exact match. ``average`` is the mean over benchmarks.
Merging and pruning studies use the same suites, so a proxy and the model it stands for are
scored identically (same prompts, same greedy decoding, same batch size).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from vlmkit.data.conversations import load_conversations
from vlmkit.errors import DatasetError
from vlmkit.models.chat import Message, conversation_images, open_image
from vlmkit.runs.readers import read_json

ARTICLES = ("a ", "an ", "the ")


def normalize_answer(text: str) -> str:
    """``"  The Red star. "`` -> ``"red star"``."""
    text = re.sub(r"[^\w\s]", " ", text.lower()).strip()
    text = " ".join(text.split())
    for article in ARTICLES:
        if text.startswith(article):
            return text[len(article) :]
    return text


def split_reference(conversation: list[Message]) -> tuple[list[Message], str]:
    """(prompt turns, reference answer) of a conversation ending with an assistant turn."""
    if not conversation or conversation[-1].role != "assistant":
        raise DatasetError("an evaluation conversation must end with the reference answer (an assistant turn)")
    return conversation[:-1], conversation[-1].text


def load_suite(path: str | Path) -> dict[str, list[tuple[list[Message], str]]]:
    """``{benchmark: [(prompt, reference), ...]}`` from a suite file; every image is checked to
    decode (an evaluation suite is small: one decode each costs far less than the runs it feeds)."""
    path = Path(path)
    spec = read_json(path, "evaluation suite", "write a JSON object mapping benchmark names to conversation files", schema=dict[str, str])
    if not spec:
        raise DatasetError(f"{path} names no benchmark; map at least one name to a conversation file")
    suite = {name: [split_reference(c) for c in load_conversations(path.parent / file)] for name, file in spec.items()}
    every_image = dict.fromkeys(image for items in suite.values() for prompt, _ in items for image in conversation_images(prompt))
    for image in every_image:  # decoded once now: a broken image stops the run before any merging, training or scoring
        open_image(image)
    return suite


def evaluate(model, suite: dict[str, Sequence[tuple[list[Message], str]]], *, max_new_tokens: int = 16) -> dict[str, float]:
    """Per-benchmark normalised exact-match accuracy of ``model`` (greedy), and ``average``."""
    scores = {}
    for name, items in suite.items():
        answers = model.generate([prompt for prompt, _ in items], max_new_tokens=max_new_tokens)
        scores[name] = sum(normalize_answer(a) == normalize_answer(r) for a, (_, r) in zip(answers, items, strict=True)) / len(items)
    scores["average"] = sum(scores.values()) / len(scores)
    return scores
