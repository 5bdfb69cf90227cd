"""The response cache: re-runs cost nothing, an interrupted run resumes, settings are part of the key."""

from __future__ import annotations

import pytest
from PIL import Image

from vlmkit.models.chat import user
from vlmkit.models.chat_cached import CachedChatModel
from vlmkit.runs.response_cache import ResponseCache


class Counting:
    name, fingerprint, capabilities = "counting", "counting-v1", frozenset({"images"})

    def __init__(self, fail_after: int | None = None):
        self.calls = 0
        self.fail_after = fail_after

    def generate(self, conversations, max_new_tokens=64, temperature=0.0, seed=0):
        if self.fail_after is not None and self.calls >= self.fail_after:
            raise KeyboardInterrupt
        self.calls += 1
        return [f"{c[-1].text}:{max_new_tokens}" for c in conversations]


def conversations(n):
    return [[user(Image.new("RGB", (4, 4), (i, 0, 0)), f"q{i}")] for i in range(n)]


def test_rerun_is_free_and_duplicates_are_asked_once(tmp_path):
    model = Counting()
    cached = CachedChatModel(model, ResponseCache(tmp_path / "responses.sqlite"), chunk=2)
    first = cached.generate(conversations(5) + conversations(1))
    assert first == ["q0:64", "q1:64", "q2:64", "q3:64", "q4:64", "q0:64"] and model.calls == 3
    again = CachedChatModel(Counting(), ResponseCache(tmp_path / "responses.sqlite"), chunk=2)
    assert again.generate(conversations(5)) == first[:5] and again.model.calls == 0
    assert again.stats() == {"cached": 5, "generated": 0}
    assert again.generate(conversations(1), max_new_tokens=8) == ["q0:8"] and again.model.calls == 1


def test_an_interrupted_run_resumes_where_it_stopped(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        CachedChatModel(Counting(fail_after=2), ResponseCache(tmp_path / "responses.sqlite"), chunk=2).generate(conversations(6))
    resumed = CachedChatModel(Counting(), ResponseCache(tmp_path / "responses.sqlite"), chunk=2)
    assert resumed.generate(conversations(6))[-1] == "q5:64"
    assert resumed.stats() == {"cached": 4, "generated": 2}


def test_no_cache_always_asks(tmp_path):
    model = Counting()
    cached = CachedChatModel(model, None)
    cached.generate(conversations(2))
    cached.generate(conversations(2))
    assert model.calls == 2 and not (tmp_path / "responses.sqlite").exists()
