"""Closed-world ICL pieces, cache adapters and CIRCLE's update rule against known answers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from vlmkit.classify.cache_adapters import knn_vote, tip_adapter_logits
from vlmkit.classify.circle import answer_with_context, refine_context
from vlmkit.classify.icl import (
    closed_question,
    context_conversation,
    parse_choice,
    sample_pool,
    select_shots,
)


def unit(rows):
    rows = np.asarray(rows, dtype=np.float64)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def test_clip_selection_takes_the_top_k_with_the_most_similar_last():
    pool = unit([[1, 0], [0.9, 0.1], [0, 1], [0.5, 0.5]])
    query = unit([[1, 0.05]])
    assert select_shots(query, pool, 2, "clip").tolist() == [[1, 0]]
    assert select_shots(query, pool, 0, "clip").shape == (1, 0)
    random = select_shots(np.zeros((5, 2)), pool, 3, "random", np.random.default_rng(0))
    assert random.shape == (5, 3) and all(len(set(r)) == 3 for r in random.tolist())


@pytest.mark.parametrize("answer,expected", [
    ("red star", 0), ("Red Star.", 0), ("  RED STAR  ", 0), ("It is a red star on white", 0),
    ("star", -1), ("blue star", 1), ("a red star or a blue star", 1), ("", -1), ("red", -1),
    ("red starfish", 0),  # substring rule: the class name is inside the answer
    ("a red cross, a blue star", 2),  # equal lengths: the earliest in the answer
])
def test_parsing_is_exact_then_longest_substring(answer, expected):
    assert parse_choice(answer, ["red star", "blue star", "red cross"]) == expected  # the longest name wins ("blue star")


def test_longest_contained_class_wins():
    assert parse_choice("a sea lion", ["lion", "sea lion"]) == 1
    assert parse_choice("lion", ["lion", "sea lion"]) == 0


def test_pool_draws_k_per_class_and_keeps_small_classes():
    labels = ["a"] * 5 + ["b"] * 2 + ["c"] * 4
    chosen = sample_pool(labels, 3, seed=0)
    counts = {c: sum(labels[i] == c for i in chosen) for c in "abc"}
    assert counts == {"a": 3, "b": 2, "c": 3} and sample_pool(labels, 3, seed=0) == chosen


def test_knn_majority_and_similarity_tie_break():
    labels = np.asarray([[0, 1, 1], [0, 1, 2], [2, 2, 0]])
    sims = np.asarray([[0.9, 0.1, 0.2], [0.5, 0.9, 0.1], [0.3, 0.3, 0.9]])
    # row 0: class 1 has two votes; row 1: three-way tie -> class 1 (0.9); row 2: class 2
    assert knn_vote(labels, sims, 3).tolist() == [1, 1, 2]


def test_tip_adapter_by_hand():
    x = unit([[1, 0]])
    classes = unit([[1, 0], [0, 1]])
    pool = unit([[0, 1], [1, 0]])
    labels = np.asarray([1, 0])
    logits = tip_adapter_logits(x, classes, pool, labels, 2, alpha=2.0, beta=3.0)
    # CLIP: [100, 0]; cache: affinity [0, 1] -> exp(-3 (1 - a)) = [e^-3, 1] -> class 1 gets 2 e^-3, class 0 gets 2
    assert logits[0] == pytest.approx([100 + 2.0, 2 * np.exp(-3.0)])
    assert tip_adapter_logits(x, classes, pool, labels, 2, alpha=0).tolist() == [[100.0, 0.0]]
    # a strong cache overturns a weak zero-shot preference
    flipped = tip_adapter_logits(unit([[1, 0.99]]), classes, unit([[0.99, 1]]), np.asarray([1]), 2, alpha=50, beta=1)
    assert flipped.argmax(1).tolist() == [1]


def test_context_conversation_layouts_and_closed_question():
    shots = [(Path("a.png"), "red star"), (Path("b.png"), "blue cross")]
    question = closed_question(["red star", "blue cross"])
    (interleaved,) = context_conversation(shots, Path("q.png"), question)
    assert interleaved.role == "user" and interleaved.parts == (
        Path("a.png"),
        "red star",
        Path("b.png"),
        "blue cross",
        Path("q.png"),
        question,
    )
    turns = context_conversation(shots, Path("q.png"), question, layout="turns")
    assert [m.role for m in turns] == ["user", "assistant", "user", "assistant", "user"]
    assert turns[1].text == "red star" and turns[-1].images == [Path("q.png")]
    assert "red star, blue cross" in question


class Echo:
    """A fake LMM: answers ``<image>|<context labels, in order>``, and records conversations."""

    name, fingerprint, capabilities = "echo", "echo", frozenset({"images", "multi_image"})

    def __init__(self):
        self.seen = []

    def generate(self, conversations, max_new_tokens=64, temperature=0.0, seed=0):
        self.seen += conversations
        out = []
        for conversation in conversations:
            texts = [p for m in conversation for p in m.parts if isinstance(p, str) and p != "what?"]
            out.append(f"{conversation[-1].images[-1].stem}|{','.join(texts)}")
        return out


@pytest.mark.parametrize("layout", ["interleaved", "turns"])
def test_circle_rounds_are_parallel_and_leave_one_out(layout, monkeypatch):
    from vlmkit.classify import icl

    prompts = {**icl.icl_prompts(), "layout": layout, "context_question": "what?"}
    monkeypatch.setattr(icl, "icl_prompts", lambda: prompts)
    images = [Path(f"x{j}.png") for j in range(3)]
    history = refine_context(Echo(), images, "what?", rounds=2, batch_size=2)
    assert history[0] == ["x0|", "x1|", "x2|"]
    # round 1: each image sees the others' round-0 labels, never its own
    assert history[1] == ["x0|x1|,x2|", "x1|x0|,x2|", "x2|x0|,x1|"]
    # round 2 reads round 1 only (Jacobi): x0 sees x1's and x2's round-1 labels
    assert history[2][0] == f"x0|{history[1][1]},{history[1][2]}"
    answers = answer_with_context(Echo(), [Path("q.png")], list(zip(images, history[-1], strict=True)), "what?")
    assert answers == ["q|" + ",".join(history[-1])]
    assert answer_with_context(Echo(), [Path("q.png")], [], "what?") == ["q|"]
