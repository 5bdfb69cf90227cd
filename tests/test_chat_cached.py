"""The response cache in front of an in-process chat model: same answers, no recomputation, resume."""

from __future__ import annotations

import pytest
from PIL import Image

from vlmkit.models.chat import ask
from vlmkit.models.chat_cached import CachedChatModel
from vlmkit.runs.response_cache import ResponseCache


class Counting:
    """A chat model that answers with the question reversed, counts calls, and can fail."""

    name, fingerprint, capabilities, batch_size = "counting", "counting:v1", frozenset({"images"}), 2

    def __init__(self, fail_after: int | None = None):
        self.asked: list[str] = []
        self.fail_after = fail_after

    def generate(self, conversations, *, max_new_tokens=64, temperature=0.0, seed=0):
        if self.fail_after is not None and len(self.asked) >= self.fail_after:
            raise KeyboardInterrupt  # the user stops the run
        texts = [c[-1].text for c in conversations]
        self.asked += texts
        return [t[::-1][:max_new_tokens] for t in texts]

    def score(self, conversation, options):
        return [0.0] * len(options)


def test_answers_are_computed_once_per_key(tmp_path):
    inner = Counting()
    model = CachedChatModel(inner, ResponseCache(tmp_path / "r.sqlite"))
    questions = [ask(f"q{i}") for i in range(5)] + [ask("q0")]
    assert model.generate(questions) == [f"{i}q" for i in range(5)] + ["0q"]
    assert inner.asked == [f"q{i}" for i in range(5)]
    assert model.generate(questions) == [f"{i}q" for i in range(5)] + ["0q"] and len(inner.asked) == 5
    model.generate(questions[:1], max_new_tokens=1)
    assert len(inner.asked) == 6  # other settings, other key
    assert model.score(ask("x"), ["a", "b"]) == [0.0, 0.0] and model.name == "counting"


def test_an_interrupted_run_keeps_whole_chunks_and_resumes(tmp_path):
    cache = ResponseCache(tmp_path / "r.sqlite")
    questions = [ask(f"q{i}") for i in range(7)]
    with pytest.raises(KeyboardInterrupt):
        CachedChatModel(Counting(fail_after=4), cache).generate(questions)
    assert len(cache) == 4  # two chunks of two were stored before the interruption
    inner = Counting()
    assert CachedChatModel(inner, cache).generate(questions) == [f"{i}q" for i in range(7)]
    assert inner.asked == ["q4", "q5", "q6"]


def test_a_real_tiny_lmm_gives_the_same_answers_cached(tmp_path):
    from vlmkit.models.chat_registry import load_chat_model

    model = load_chat_model("random:llava-tiny")
    red, blue = Image.new("RGB", (32, 32), (220, 30, 30)), Image.new("RGB", (32, 32), (30, 70, 220))
    questions = [ask("what color is this image ?", red), ask("what color is this image ?", blue), ask("what shape ?")]
    expected = model.generate(questions, max_new_tokens=5)
    cached = CachedChatModel(model, ResponseCache(tmp_path / "r.sqlite"))
    assert cached.generate(questions, max_new_tokens=5) == expected == cached.generate(questions, max_new_tokens=5)
    assert cached.cache.hits == 3
