"""Open-world metrics against values computed by hand (case, whitespace, articles, plurals,
synonyms, empty answers), the official rules for LI parsing, concepts and the median, and Elo."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from vlmkit.classify import elo
from vlmkit.classify import openworld_metrics as m

#: prediction, label, TI, EM: each row computed by hand from the official rules
TABLE = [
    ("Dog", "dog", 1, 1),  # case
    ("  a dog  ", "dog", 1, 0),  # whitespace and an article: TI strips, EM does not
    ("The dogs.", "dog", 1, 0),  # plural prediction contains the singular label
    ("dog", "dogs", 0, 0),  # ... but not the other way round
    ("puppy", "dog", 0, 0),  # a synonym is not text-included
    ("", "dog", 0, 0),  # empty answer
    ("red  star", "red star", 0, 0),  # inner whitespace is not collapsed
    ("hot dog", "dog", 1, 0),  # a substring anywhere counts
    ("Sea lion", " sea lion ", 1, 0),  # the label is normalised too (EM compares unstripped)
    ("1,000$", "1000", 0, 1),  # EM removes "," and "$"; TI does not
    ("A RED STAR on white", "red star", 1, 0),
]


def test_text_inclusion_and_exact_match_by_hand():
    predictions, labels, ti, em = zip(*TABLE, strict=True)
    assert m.text_inclusion(predictions, labels).tolist() == list(map(float, ti))
    assert m.exact_match(predictions, labels).tolist() == list(map(float, em))


@pytest.mark.parametrize(
    "output,score", [("1", 1), (" 1\n", 1), ("1.", 0), ("Yes", 0), ("0", 0), ("", 0), ("10", 0), ("1 ", 1), ('"1"', 0)]
)
def test_judge_replies_other_than_1_count_zero(output, score):
    assert m.parse_binary(output) == score


def test_lower_median_as_torch_and_other_reductions():
    import torch

    values = [0.9, 0.1, 0.5, 0.3]
    assert m.reduce_similarities(values, "median") == 0.3 == float(torch.tensor(values, dtype=torch.float64).median())
    assert m.reduce_similarities([0.2, 0.8, 0.5], "median") == 0.5
    assert m.reduce_similarities(values, "max") == 0.9 and m.reduce_similarities(values, "min") == 0.1
    assert m.reduce_similarities(values, "mean") == pytest.approx(0.45)


class WordSpace:
    """A hand-computable sentence space: each known word is a unit axis, a sentence the
    normalised sum of its known words' axes (unknown sentences map to a last axis)."""

    words = ["dog", "cat", "red", "star", "grass"]

    def encode(self, sentences):
        out = np.zeros((len(sentences), len(self.words) + 1), np.float32)
        for i, s in enumerate(sentences):
            for token in s.lower().replace(",", " ").replace(".", " ").split():
                if token in self.words:
                    out[i, self.words.index(token)] += 1
            if not out[i].any():
                out[i, -1] = 1
        return out / np.linalg.norm(out, axis=1, keepdims=True)


def test_semantic_and_concept_similarity_by_hand():
    space = m.SentenceSpace(WordSpace())
    # SS: "red star" vs "star" = 1/sqrt(2); "dog" vs "dog" = 1; "" vs "dog" = 0 (no shared axis)
    ss = m.semantic_similarity(["red star", "dog", ""], ["star", "dog", "dog"], space)
    assert ss == pytest.approx([2 ** -0.5, 1.0, 0.0])
    # CS with given concepts: ["dog", "cat"] + the whole prediction "a dog and a cat"
    # cosines to "dog": 1, 0, 1/sqrt(2) -> max 1, lower median 1/sqrt(2), min 0
    concepts = [["dog", "cat"], []]
    preds, labels = ["a dog and a cat", ""], ["dog", "dog"]
    assert m.concept_similarity(preds, labels, "max", space, concepts) == pytest.approx([1.0, 0.0])
    assert m.concept_similarity(preds, labels, "median", space, concepts) == pytest.approx([2 ** -0.5, 0.0])
    assert m.concept_similarity(preds, labels, "min", space, concepts) == pytest.approx([0.0, 0.0])


def test_concepts_follow_the_official_extraction():
    (found,) = m.extract_concepts(["This photo shows the Boeing 737 and two dogs, with some grass."])
    # chunks: "this photo" (skipped), "the boeing" -> "boeing", "two dogs", "some grass";
    # entities: "boeing" (already there), "737", "two" (skipped)
    assert found == ["boeing", "two dogs", "some grass", "737"]
    assert m.extract_concepts(["", "It is a red star."]) == [[], ["red star"]]


def test_real_minilm_scores_identity_and_case():
    scores = m.score_rows(["Red star", "a dog", ""], ["red star", "dog", "dog"])
    assert scores["ss"][0] == pytest.approx(1.0, abs=1e-5)  # the uncased encoder ignores case
    assert scores["cs_max"][1] == pytest.approx(1.0, abs=1e-5)  # concept "dog" (article stripped)
    assert scores["ss"][1] < 1.0 and scores["ti"].tolist() == [1.0, 1.0, 0.0]
    assert scores["concepts"][0] == ["red star", "Red star"]  # the whole prediction comes last


class ScriptedJudge:
    name = "scripted"
    capabilities = frozenset()
    fingerprint = "scripted"

    def __init__(self, replies):
        self.replies = list(replies)
        self.prompts = []

    def generate(self, conversations, max_new_tokens=64, temperature=0.0, seed=0):
        self.prompts += [c[-1].text for c in conversations]
        return [self.replies.pop(0) for _ in conversations]


def test_llm_inclusion_with_the_prompt_as_data():
    judge = ScriptedJudge(["1", "0", "Yes"])
    li, raw = m.llm_inclusion(["a dog", "a cat", "a puppy"], ["dog", "dog", "dog"], judge)
    assert li.tolist() == [1.0, 0.0, 0.0] and raw == ["1", "0", "Yes"]
    assert "This is the answer: a puppy\nThis is the target value: dog" in judge.prompts[2]
    assert "What type of object is in this photo?" in judge.prompts[0]


@pytest.mark.slow
def test_li_judge_runs_on_the_real_smollm2(monkeypatch):
    monkeypatch.setenv("VLMKIT_CACHE", str(Path.home() / ".cache" / "vlmkit"))
    from vlmkit.models.chat_registry import load_chat_model

    li, raw = m.llm_inclusion(["a golden retriever", "a sports car"], ["dog", "dog"], load_chat_model("smollm2-135m"))
    assert set(li.tolist()) <= {0.0, 1.0} and len(raw) == 2
    assert li.tolist() == [m.parse_binary(r) for r in raw]


def test_elo_update_is_the_logistic_rule_by_hand():
    assert elo.expected(1000, 1000) == 0.5
    a, b = elo.update(1000, 1000, 1.0, k=16)
    assert (a, b) == (1008.0, 992.0)
    # after A (1008) beats B (992) again: E_A = 1 / (1 + 10^(-16/400))
    e = 1 / (1 + 10 ** (-16 / 400))
    a2, b2 = elo.update(a, b, 1.0, k=16)
    assert a2 == pytest.approx(1008 + 16 * (1 - e)) and a2 + b2 == pytest.approx(2000)
    assert elo.update(1000, 1000, 0.5) == (1000.0, 1000.0)


def test_elo_ranks_a_dominant_player_first_with_intervals():
    players = ["strong", "medium", "weak"]
    strength = {"strong": 2, "medium": 1, "weak": 0}
    games = elo.sample_games(50, players, 2000, seed=0)
    assert len({(g.item, g.a, g.b) for g in games}) > 100
    scored = [elo.Game(g.item, g.a, g.b, 1.0 if strength[g.a] > strength[g.b] else 0.0) for g in games]
    for mode in ("resample", "shards"):
        ratings = elo.bootstrap(scored, players, rounds=20, mode=mode, seed=1)
        assert ratings["strong"]["low"] > ratings["medium"]["high"] > ratings["medium"]["low"] > ratings["weak"]["high"]
        assert sum(r["online"] for r in ratings.values()) == pytest.approx(3000)


def test_similarity_outcomes_use_the_official_margin():
    games = [elo.Game(0, "a", "b"), elo.Game(1, "a", "b"), elo.Game(2, "a", "b")]
    sim = {"a": np.asarray([0.9, 0.50, 0.1]), "b": np.asarray([0.1, 0.48, 0.9])}
    assert [g.score for g in elo.similarity_outcomes(games, sim)] == [1.0, 0.5, 0.0]


class LikelihoodJudge:
    """Prefers "1" when the answer contains the target's text (a stand-in for log-probabilities)."""

    name, fingerprint, capabilities = "likelihood", "likelihood", frozenset({"score"})

    def score(self, conversation, options):
        text = conversation[-1].text
        answer = text.split("This is the answer: ")[1].split("\n")[0]
        target = text.split("This is the target value: ")[1].split("\n")[0]
        yes = target in answer
        return [-0.1 if yes else -2.0, -2.0 if yes else -0.1]


def test_li_score_mode_compares_the_two_replies():
    li, raw = m.llm_inclusion(["a dog", "a cat"], ["dog", "dog"], LikelihoodJudge(), mode="score")
    assert li.tolist() == [1.0, 0.0] and raw == ["1", "0"]
    from vlmkit.errors import UnsupportedError

    with pytest.raises(UnsupportedError):
        m.llm_inclusion(["a dog"], ["dog"], ScriptedJudge(["1"]), mode="score")


def test_groups_average_their_datasets_not_their_samples():
    from vlmkit.classify.openworld import aggregate

    scores = {"ti": np.asarray([1.0, 1.0, 1.0, 0.0, 0.5])}
    summary = aggregate(scores, ["a", "a", "a", "b", "c"], ["g", "g", "g", "g", "h"])
    assert summary["per_dataset"]["a"] == {"n": 3, "group": "g", "ti": 1.0}
    assert summary["per_group"]["g"]["ti"] == 0.5 and summary["per_group"]["g"]["datasets"] == ["a", "b"]
    assert summary["metrics"]["ti"] == pytest.approx(0.7)  # all rows pooled
