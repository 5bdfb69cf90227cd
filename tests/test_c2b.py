"""C2B's pure parts against hand-computed answers: phi, the ranking and its intervals, proposal
parsing and retries, de-duplication, ground-truth biases, Hit / False Hit / Miss, agreement."""

import json

import numpy as np
import pytest

from vlmkit.audit.evaluate import agreement, ground_truth_biases, hit_miss, names_match
from vlmkit.audit.proposals import (
    DEFAULT_TEMPLATE,
    check_template,
    parse_reply,
    propose_with_llm,
    read_proposals,
    validate_proposal,
)
from vlmkit.audit.retrieve import assign_unique, fill, make_queries
from vlmkit.audit.scores import (
    Group,
    ScoreSettings,
    attribute_score,
    detected_biases,
    phi,
    rank_attributes,
)
from vlmkit.errors import UserError


def bits(k: int, n: int) -> np.ndarray:
    """``n`` outcomes, the first ``k`` correct."""
    return np.arange(n) < k


def test_phi_by_hand():
    np.testing.assert_allclose(phi([1.0, 0.5, 0.0]), [0.75, 0.0, -0.75])
    np.testing.assert_allclose(phi([0.8, 0.2]), [0.6, -0.6])
    np.testing.assert_allclose(phi([0.9, 0.6, 0.6, 0.3]), [0.9 - 0.5, 0.6 - 0.6, 0.6 - 0.6, 0.3 - 0.7])
    np.testing.assert_allclose(phi(np.full((7, 5), 0.4)), 0.0)  # no bias: phi is 0 everywhere, batched
    with pytest.raises(ValueError):
        phi([0.5])


def test_attribute_score_is_mean_over_targets_of_max_abs_phi():
    assert attribute_score([np.array([0.75, 0.0, -0.75]), np.array([0.1, -0.1])]) == pytest.approx((0.75 + 0.1) / 2)


def test_ranking_of_a_classifier_whose_accuracy_we_set_per_group():
    # target "cat": accuracy 1.0 on grass, 0.5 on sand, 0.0 on snow; size does not matter (0.7, 0.7)
    groups = [
        Group("cat", "background", "grass", bits(40, 40)),
        Group("cat", "background", "sand", bits(20, 40)),
        Group("cat", "background", "snow", bits(0, 40)),
        Group("cat", "size", "small", bits(28, 40)),
        Group("cat", "size", "large", bits(28, 40)),
    ]
    ranking = rank_attributes(groups, ScoreSettings(draws=4000))
    assert [e["attribute"] for e in ranking] == ["background", "size"]
    background = ranking[0]
    assert background["score"] == pytest.approx(0.75) and ranking[1]["score"] == pytest.approx(0.0)
    phis = {r["name"]: r["phi"] for r in background["classes"]}
    assert phis == pytest.approx({"grass": 0.75, "sand": 0.0, "snow": -0.75})
    rows = {r["name"]: r for r in background["classes"]}
    assert rows["grass"]["detected"] and rows["snow"]["detected"] and not rows["sand"]["detected"]
    assert rows["grass"]["n"] == 40 and rows["grass"]["accuracy"] == 1.0
    low, high = rows["sand"]["phi_interval"]
    assert low < 0 < high
    assert background["interval"][0] < 0.75 + 1e-9 and background["interval"][1] > 0.5
    assert {(d["attribute"], d["bias"]) for d in detected_biases(ranking)} == {("background", "grass"), ("background", "snow")}


def test_small_groups_get_no_accuracy_and_wider_intervals():
    groups = [
        Group("dog", "pose", "sitting", bits(3, 3)),
        Group("dog", "pose", "running", bits(0, 3)),
        Group("dog", "pose", "lying", bits(1, 2)),
    ]
    ranking = rank_attributes(groups, ScoreSettings(min_n=3))
    rows = {r["name"]: r for r in ranking[0]["classes"]}
    assert rows["lying"]["phi"] is None and rows["lying"]["n"] == 2 and rows["lying"]["detected"] is None
    assert rows["sitting"]["phi"] == pytest.approx(1.0)  # phi over the two scored classes only
    small = rows["sitting"]["phi_interval"]
    big = {
        r["name"]: r
        for r in rank_attributes([Group("dog", "pose", "sitting", bits(30, 30)), Group("dog", "pose", "running", bits(0, 30))])[0][
            "classes"
        ]
    }
    assert small[1] - small[0] > big["sitting"]["phi_interval"][1] - big["sitting"]["phi_interval"][0]
    lonely = rank_attributes([Group("dog", "pose", "sitting", bits(3, 3))], ScoreSettings(min_n=3))
    assert lonely[0]["score"] is None and lonely[0]["targets"] == 0


def test_ranking_is_deterministic_under_the_seed():
    groups = [Group("a", "x", v, bits(k, 10)) for v, k in (("p", 9), ("q", 4))]
    assert rank_attributes(groups, ScoreSettings(seed=3)) == rank_attributes(groups, ScoreSettings(seed=3))


def test_parse_reply_accepts_fenced_json_and_normalises():
    reply = (
        'Sure!\n```json\n{"Background": ["Forest", "sky", "sky", " water "], "pose": ["flying"], "light_level": ["dark", "bright"]}\n```'
    )
    assert parse_reply(reply) == {"background": ["forest", "sky", "water"], "light level": ["dark", "bright"]}


def test_parse_reply_unwraps_and_skips_what_is_not_an_attribute():
    assert parse_reply('{"target_class": "circle", "attributes": {"background": ["black", "white"]}}') == {"background": ["black", "white"]}
    assert parse_reply('{"attributes": [{"name": "pose", "values": ["up", "down"]}, {"name": "x"}]}') == {"pose": ["up", "down"]}
    assert parse_reply('{"target_class": "circle", "size": ["small", "large"]}') == {"size": ["small", "large"]}
    # the outer object does not parse (smollm2-135m's trailing garbage); an inner one that fits the schema is used
    assert parse_reply('{"attributes": {"background": ["a", "b"]}, "values": [{"t": 1}, }') == {"background": ["a", "b"]}
    with pytest.raises(ValueError):
        validate_proposal({"target_class": "circle", "size": ["small", "large"]})  # files are strict


@pytest.mark.parametrize(
    "reply", ["no json here", '{"pose": ["flying"]}', '["background", "sky"]', '{"background": "forest, sky"}', "{bad json}"]
)
def test_parse_reply_rejects_malformed_output(reply):
    with pytest.raises(ValueError):
        parse_reply(reply)


class ScriptedLLM:
    """A ChatModel that answers from a script, recording temperatures and seeds."""

    name, capabilities, fingerprint = "scripted", frozenset(), "scripted"

    def __init__(self, replies):
        self.replies, self.calls = list(replies), []

    def generate(self, conversations, *, max_new_tokens=64, temperature=0.0, seed=0):
        self.calls.append((len(conversations), temperature, seed))
        return [self.replies.pop(0) for _ in conversations]


def test_malformed_llm_output_is_retried_then_reported():
    llm = ScriptedLLM(['{"background": ["grass", "sand"]}', "I cannot help", '{"size": ["small"]}', '{"size": ["small", "large"]}'])
    proposals, log = propose_with_llm(llm, "classify animals", ["cat", "dog"], retries=3, seed=5)
    assert proposals == {"cat": {"background": ["grass", "sand"]}, "dog": {"size": ["small", "large"]}}
    assert llm.calls == [(2, 0.0, 5), (1, 0.7, 6), (1, 0.7, 7)]  # greedy first, then sampled with new seeds
    assert [a["error"] is None for a in log.attempts["dog"]] == [False, False, True] and not log.failures

    partial, log = propose_with_llm(ScriptedLLM(['{"a": ["x", "y"]}', "nope", "nope"]), "t", ["cat", "dog"], retries=2)
    assert list(partial) == ["cat"] and "no JSON object" in log.failures["dog"]

    with pytest.raises(UserError) as info:
        propose_with_llm(ScriptedLLM(["nope"] * 3), "t", ["cat"], retries=3)
    assert "no valid bias proposal" in str(info.value) and "\n" not in str(info.value)


def test_proposals_file_flat_and_nested(tmp_path):
    flat = tmp_path / "flat.json"
    flat.write_text(json.dumps({"background": ["black", "white"]}))
    assert read_proposals(flat, ["a", "b"]) == {"a": {"background": ["black", "white"]}, "b": {"background": ["black", "white"]}}
    nested = tmp_path / "nested.json"
    nested.write_text(json.dumps({"a": {"texture": ["solid", "dotted"]}}))
    assert read_proposals(nested, ["a", "b"]) == {"a": {"texture": ["solid", "dotted"]}}
    for bad in ({"zebra": {"x": ["p", "q"]}}, {"background": ["black"]}, ["background"], {"background": "black"}):
        path = tmp_path / "bad.json"
        path.write_text(json.dumps(bad))
        with pytest.raises(UserError):
            read_proposals(path, ["a", "b"])
    with pytest.raises(UserError):
        read_proposals(tmp_path / "missing.json", ["a"])


def test_templates_and_captions():
    assert check_template(DEFAULT_TEMPLATE) and check_template("a {target} on a {bias} background")
    for bad in ("a {target}", "a {bias} {thing} {target}", "no slots"):
        with pytest.raises(UserError):
            check_template(bad)
    assert fill("a {target} on a {bias} {attribute}", "circle", "background", "black") == "a circle on a black background"
    queries = make_queries({"circle": {"background": ["black", "white"], "size": ["small", "large"]}}, DEFAULT_TEMPLATE,
                           {"background": "a {target} on a {bias} background"})
    assert [q.caption for q in queries] == ["a circle on a black background", "a circle on a white background",
                                            "a photo of a circle, small size", "a photo of a circle, large size"]
    assert validate_proposal({"x": [1, 2]}) == {"x": ["1", "2"]}


def test_an_image_stays_with_its_best_caption_within_a_block():
    candidates = [[(1, 0.9), (2, 0.8), (3, 0.7)], [(2, 0.85), (4, 0.6), (1, 0.5)]]
    assert assign_unique(candidates, k=2) == [[(1, 0.9), (3, 0.7)], [(2, 0.85), (4, 0.6)]]
    assert assign_unique([[(1, 0.5)], [(1, 0.5)]], k=1) == [[(1, 0.5)], []]  # ties go to the first caption


def test_names_match_rules():
    assert names_match("background", "black", "background", "black")
    assert names_match("background colour", "black", "background", "black")
    assert not names_match("color", "black", "background", "black")
    assert names_match("accessories", "eyeglasses", "Eyeglasses", True) and names_match("x", "no eyeglasses", "Eyeglasses", "False")
    assert not names_match("x", "eyeglasses", "Eyeglasses", False)


def test_ground_truth_biases_from_labels():
    # class y: correct on all 'black' images, on none of the 'white' ones; class z: always correct
    labels = ["y"] * 40 + ["z"] * 40
    predictions = ["y"] * 20 + ["z"] * 20 + ["z"] * 40
    annotations = (
        [{"background": "black"}] * 20 + [{"background": "white"}] * 20 + [{"background": "black"}] * 20 + [{"background": "white"}] * 20
    )
    ranking, truth = ground_truth_biases(labels, predictions, annotations)
    assert ranking[0]["score"] == pytest.approx(0.5)  # (1.0 for y + 0.0 for z) / 2
    assert sorted((t["target"], t["bias"], t["phi"]) for t in truth) == [("y", "black", 1.0), ("y", "white", -1.0)]


def test_hit_false_hit_miss_by_hand():
    truth = [{"target": "y", "attribute": "background", "bias": "black", "phi": 0.4},
             {"target": "y", "attribute": "background", "bias": "white", "phi": -0.4},
             {"target": "z", "attribute": "texture", "bias": "dotted", "phi": 0.3}]
    detected = [{"target": "y", "attribute": "background color", "bias": "black", "phi": 0.2},   # hit
                {"target": "y", "attribute": "background", "bias": "white", "phi": 0.3},         # wrong sign: false hit
                {"target": "z", "attribute": "size", "bias": "small", "phi": 0.5}]               # no counterpart: false hit
    counts = hit_miss(detected, truth)
    assert (counts["hit"], counts["false_hit"], counts["miss"]) == (1, 2, 2)
    assert counts["precision"] == pytest.approx(1 / 3) and counts["recall"] == pytest.approx(1 / 3)
    assert hit_miss([], truth)["miss"] == 3 and hit_miss([], [])["precision"] is None


def test_agreement_by_hand():
    ranking = [
        {
            "attribute": "background",
            "classes": [
                {"target": "y", "name": "black", "phi": 0.5},
                {"target": "y", "name": "white", "phi": -0.5},
                {"target": "y", "name": "gray", "phi": 0.1},
                {"target": "y", "name": "navy", "phi": None},
            ],
        }
    ]
    truth = [
        {
            "attribute": "background",
            "classes": [
                {"target": "y", "name": "black", "phi": 0.6},
                {"target": "y", "name": "white", "phi": -0.2},
                {"target": "y", "name": "gray", "phi": -0.4},
            ],
        }
    ]
    result = agreement(ranking, truth)
    assert result["rows"] == 3 and result["sign_agreement"] == pytest.approx(2 / 3)
    assert result["pearson"] == pytest.approx(np.corrcoef([0.5, -0.5, 0.1], [0.6, -0.2, -0.4])[0, 1])
    assert agreement(ranking, [])["rows"] == 0
