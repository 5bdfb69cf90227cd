"""R2P's core against hand-computed values: retrieval, verification, the pairwise probability,
fingerprint and reasoning validation with retries, the decision rule, and the whole pipeline on
planted models whose every answer the test controls."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from tests.r2p_planted import PlantedChat, PlantedClip, solid
from vlmkit.errors import UserError
from vlmkit.models.chat_json import first_valid, generate_validated
from vlmkit.personalize.concepts import Concept
from vlmkit.personalize.database import ConceptDatabase, build_database, leave_one_out_threshold, mean_embedding
from vlmkit.personalize.fingerprint import Fingerprint, fingerprints_json, validate_fingerprint
from vlmkit.personalize.pipeline import R2P
from vlmkit.personalize.r2p import (
    R2PConfig,
    Trace,
    decide,
    method_config,
    retrieval_scores,
    top_k,
    verification_scores,
    yes_probability,
)
from vlmkit.personalize.reasoning import Reasoning, reason_questions, validate_reasoning


def test_retrieval_scores_by_hand():
    q = np.array([3.0, 4.0])  # unit: (0.6, 0.8)
    image = np.array([[1.0, 0.0], [0.0, 2.0]])
    text = np.array([[0.0, 1.0], [1.0, 1.0]])
    s = retrieval_scores(q, image, text)
    assert s == pytest.approx([0.5 * (0.6 + 0.8), 0.5 * (0.8 + 1.4 / math.sqrt(2))])
    assert retrieval_scores(q, image) == pytest.approx([0.6, 0.8])
    assert top_k(np.array([0.2, 0.9, 0.9, 0.1]), 3) == [1, 2, 0]


def test_verification_and_yes_probability_by_hand():
    q = np.array([1.0, 0.0])
    v = verification_scores(q, [np.array([[1.0, 0.0], [0.0, 1.0]]), np.zeros((0, 2)), np.array([[1.0, 1.0]])])
    assert v[0] == pytest.approx(0.5) and v[1] == -math.inf and v[2] == pytest.approx(1 / math.sqrt(2))
    assert yes_probability(math.log(0.3), math.log(0.1)) == pytest.approx(0.75)
    assert yes_probability(-1000.0, -1001.0) == pytest.approx(1 / (1 + math.exp(-1)))


def test_mean_embedding_and_leave_one_out_threshold():
    refs = np.array([[1.0, 0.0], [0.0, 1.0]])
    assert mean_embedding(refs) == pytest.approx([1 / math.sqrt(2)] * 2)
    # each reference against the other one: cos = 0; second concept: identical references, cos = 1
    assert leave_one_out_threshold([refs, np.array([[1.0, 0.0], [1.0, 0.0]])]) == pytest.approx(0.0)
    assert leave_one_out_threshold([np.array([[1.0, 0.0]])]) is None
    text = np.array([[1.0, 0.0]])
    assert leave_one_out_threshold([refs], text) == pytest.approx(min(0.5 * (0 + 1), 0.5 * (0 + 0)))


CONCEPT = Concept("dax", "star", ("a.png",))


def test_validate_fingerprint_rules():
    fp = validate_fingerprint({"description": "A red star.", "distinctive_features": ["thin stripes", " a  dot "],
                               "color": "red", "alternative_names": ["asterisk", "star"]}, CONCEPT)
    assert fp.description == "dax is a red star." and fp.features == ["thin stripes", "a dot"] and fp.category == "star"
    assert fp.attributes() == ["thin stripes", "a dot", "red color", "asterisk, star alternative names"]
    kept = validate_fingerprint({"description": "<dax> is red", "features": ["x"]}, CONCEPT)
    assert kept.description == "<dax> is red"
    for bad in ({"description": "x"}, {"description": "", "distinctive_features": ["a"]},
                {"description": "x", "distinctive_features": [1]}, {"description": "x", "distinctive_features": ["a"], "color": {}}):
        with pytest.raises(ValueError):
            validate_fingerprint(bad, CONCEPT)


def test_first_valid_skips_prose_fences_and_invalid_objects():
    text = 'Sure!\n```json\n{"bad": 1}\n``` then {"description": "dax is red", "distinctive_features": ["red"]}'
    assert first_valid(text, lambda obj: validate_fingerprint(obj, CONCEPT)).features == ["red"]
    with pytest.raises(ValueError, match="no JSON object"):
        first_valid("no json here", lambda obj: obj)


def test_malformed_fingerprints_are_retried_then_reported_in_one_line():
    good = json.dumps({"description": "dax is a red star", "distinctive_features": ["red"]})
    chat = PlantedChat(reply=lambda c, t: good if t > 0 else "{not json")
    fps, attempts = fingerprints_json(chat, [CONCEPT], retries=2)
    assert fps[0].features == ["red"] and [a["temperature"] for a in attempts[0]] == [0.0, 0.7]
    assert attempts[0][0]["error"] == "no JSON object in the reply"
    never = PlantedChat(reply=lambda c, t: '{"description": "dax"}')
    with pytest.raises(UserError) as info:
        fingerprints_json(never, [CONCEPT], retries=3)
    assert "'dax' after 3 tries" in str(info.value) and "\n" not in str(info.value) and len(never.calls) == 3
    with pytest.raises(ValueError):
        generate_validated(never, [], lambda i, o: o, retries=0)


FPS = [Fingerprint("dax", "star", "dax is a red star", ["red color", "thin stripes"]),
       Fingerprint("wug", "star", "wug is a blue star", ["blue color"])]


def test_validate_reasoning_keeps_only_fingerprint_attributes():
    r = validate_reasoning({"answer": "<DAX>", "matched_attributes": {"dax": ["Red  Color", "huge"], "zzz": ["a"]}}, FPS)
    assert r.choice == "dax" and r.matched == {"dax": ["red color"], "wug": []} and r.dropped == 1
    assert validate_reasoning({"answer": "none"}, FPS).choice is None
    for bad in ({"answer": "fep"}, {}, {"answer": "dax", "matched_attributes": {"dax": "red"}}):
        with pytest.raises(ValueError):
            validate_reasoning(bad, FPS)


def test_questions_reasoning_needs_every_field():
    fps = [Fingerprint("dax", "star", "", [], {"color": "red", "pattern": "striped"}),
           Fingerprint("wug", "star", "", [], {"color": "red", "pattern": "dotted"})]
    r = reason_questions({"color": "red", "pattern": "dotted"}, fps)
    assert r.choice == "wug" and r.matched == {"dax": ["red color"], "wug": ["red color", "dotted pattern"]}
    assert reason_questions({"color": "blue", "pattern": "dotted"}, fps).choice is None


def _db(thresholds=None):
    concepts = [Concept("dax", "star", ("d.png",)), Concept("wug", "star", ("w.png",)), Concept("fep", "star", ("f.png",))]
    eye = np.eye(3, dtype=np.float32)
    return ConceptDatabase(concepts, [Fingerprint(c.id, "star", f"{c.id} is", ["x"]) for c in concepts], eye, eye,
                           thresholds or {"clip-retrieval": 0.5, "retrieval": 0.5})


def test_decision_rule_per_stage():
    db = _db()
    full = R2PConfig()
    base = Trace("q", [0.9, 0.2, 0.1], [0.4, 0.3, 0.1], ["dax", "wug", "fep"])
    agree = Trace(**{**base.__dict__, "reasoning": Reasoning("wug"), "verification": {"dax": 0.1, "wug": 0.3, "fep": -math.inf}})
    assert decide(agree, full, db) == ("wug", "verification")
    assert decide(agree, method_config(full, "reasoning"), db) == ("wug", "reasoning")
    assert decide(agree, method_config(full, "clip-retrieval"), db) == ("dax", "retrieval")
    assert decide(agree, method_config(full, "retrieval"), db) == (None, "retrieval")  # 0.4 < 0.5
    disagree = Trace(**{**agree.__dict__, "verification": {"dax": 0.5, "wug": 0.3, "fep": -math.inf},
                        "pairwise": {"dax": 0.2, "wug": 0.7, "fep": 0.9}})
    assert decide(disagree, method_config(full, "verification"), db) == ("dax", "verification")
    assert decide(disagree, full, db) == ("fep", "pairwise")
    low = Trace(**{**disagree.__dict__, "pairwise": {"dax": 0.2, "wug": 0.4, "fep": 0.49}})
    assert decide(low, full, db) == (None, "pairwise")
    none = Trace(**{**disagree.__dict__, "reasoning": Reasoning(None)})
    assert decide(none, full, db) == (None, "reasoning")
    failed = Trace(**{**disagree.__dict__, "reasoning": None})
    assert decide(failed, full, db) == ("fep", "pairwise")
    assert decide(failed, method_config(full, "verification"), db) == (None, "retrieval")
    with pytest.raises(ValueError):
        R2PConfig(reasoning=False)


RED, GREEN, BLUE, DARKRED = (200, 0, 0), (0, 200, 0), (0, 0, 200), (150, 0, 30)


def _planted(tmp_path):
    """Three concepts (red, green, blue solid squares); the chat model fingerprints them by
    colour, reasons by a fixed table and says 'yes' only for identical colours."""
    concepts = [Concept(cid, "square", (solid(tmp_path / f"{cid}/0.png", rgb), solid(tmp_path / f"{cid}/1.png", rgb)))
                for cid, rgb in (("dax", RED), ("wug", GREEN), ("fep", BLUE))]
    names = {RED: "red", GREEN: "green", BLUE: "blue"}

    def reply(conversation, temperature):
        from tests.r2p_planted import mean_rgb
        from vlmkit.models.chat import conversation_images

        text = conversation[-1].text
        if text.startswith("Identifier"):
            cid = text.split("<")[1].split(">")[0]
            colour = names[mean_rgb(conversation_images(conversation)[0])]
            return json.dumps({"description": f"{cid} is a {colour} square", "distinctive_features": [f"{colour} paint"]})
        rgb = mean_rgb(conversation_images(conversation)[0])
        # the planted reasoner: a dark red query is wrongly called fep, with dax's attribute matched
        if rgb == DARKRED:
            return json.dumps({"answer": "fep", "matched_attributes": {"dax": ["red paint"], "fep": []}})
        if rgb == (0, 90, 90):
            return "I cannot tell."
        cid = {RED: "dax", GREEN: "wug", BLUE: "fep"}.get(rgb)
        return json.dumps({"answer": cid or "none", "matched_attributes": {cid: [f"{names[rgb]} paint"]} if cid else {}})

    def yes(query, reference):
        return (math.log(0.9), math.log(0.1)) if np.abs(np.subtract(query, reference)).sum() < 100 else (math.log(0.2), math.log(0.8))

    texts = {f"{c} is a {n} square": v for c, n, v in (("dax", "red", [1, 0, 0]), ("wug", "green", [0, 1, 0]), ("fep", "blue", [0, 0, 1]))}
    texts |= {f"a photo of a square with {n} paint": v for n, v in (("red", [1, 0, 0]), ("green", [0, 1, 0]), ("blue", [0, 0, 1]))}
    return concepts, PlantedChat(reply=reply, yes=yes), PlantedClip(texts)


def test_pipeline_end_to_end_on_planted_models(tmp_path):
    concepts, chat, clip = _planted(tmp_path)
    db, _ = build_database(chat, clip, concepts)
    assert db.fingerprints[0].description == "dax is a red square"
    assert db.image[0] == pytest.approx([1, 0, 0]) and db.text[2] == pytest.approx([0, 0, 1])
    assert db.thresholds["clip-retrieval"] == pytest.approx(1.0)
    path = db.save(tmp_path / "db")
    db = ConceptDatabase.load(path)
    queries = [solid(tmp_path / "q/red.png", RED), solid(tmp_path / "q/darkred.png", DARKRED), solid(tmp_path / "q/gray.png", (90, 90, 90))]
    traces = R2P(chat, clip, db, R2PConfig(k=2)).traces(queries)
    red, dark, gray = traces
    assert red.candidates[0] == "dax" and red.reasoning.choice == "dax" and red.pairwise == {}
    assert red.verification["dax"] == pytest.approx(1.0) and red.verification[red.candidates[1]] == -math.inf
    assert decide(red, R2PConfig(k=2), db) == ("dax", "verification")
    # dark red (150, 0, 30): s_dax = cos((150,0,30), (1,0,0)) by image and description alike
    u = np.array([150, 0, 30]) / np.linalg.norm([150, 0, 30])
    assert dark.scores[0] == pytest.approx(u[0]) and dark.scores[2] == pytest.approx(u[2])
    assert dark.candidates == ["dax", "fep"]
    # the reasoner says fep, the verification dax (v = cos(dark red, red); fep matched nothing) -> pairwise
    assert dark.reasoning.choice == "fep" and dark.verification == pytest.approx({"dax": u[0], "fep": -math.inf})
    assert dark.pairwise == pytest.approx({"dax": 0.9, "fep": 0.2})
    assert decide(dark, R2PConfig(k=2), db) == ("dax", "pairwise")
    assert decide(dark, method_config(R2PConfig(k=2), "reasoning"), db) == ("fep", "reasoning")
    assert gray.reasoning.choice is None and decide(gray, R2PConfig(k=2), db) == (None, "reasoning")
    assert decide(gray, method_config(R2PConfig(k=2), "clip-retrieval"), db)[0] is None  # cos < 1 threshold
    (teal,) = R2P(chat, clip, db, R2PConfig(k=2)).traces([solid(tmp_path / "q/teal.png", (0, 90, 90))])
    assert teal.reasoning is None and set(teal.pairwise) == {"wug", "fep"}  # unparsable reply -> pairwise
    assert decide(teal, R2PConfig(k=2), db) == (None, "pairwise")


def test_pairwise_needs_score_and_says_so_before_any_work(tmp_path):
    from vlmkit.errors import UnsupportedError

    concepts, chat, clip = _planted(tmp_path)
    db, _ = build_database(chat, clip, concepts)
    chat.capabilities = frozenset({"images", "multi_image"})
    with pytest.raises(UnsupportedError, match="does not support score"):
        R2P(chat, clip, db).traces([solid(tmp_path / "q.png", RED)])
    assert R2P(chat, clip, db, method_config(R2PConfig(), "verification")).traces([solid(tmp_path / "q.png", RED)])[0].reasoning
