"""Shapes-world conversations: every answer agrees with the scene's ground truth."""

from __future__ import annotations

import numpy as np
import pytest

from vlmkit.data import world as w
from vlmkit.data import world_chat as wc


@pytest.fixture(scope="module")
def generated():
    rng = np.random.default_rng(0)
    source = wc.SceneSource(11, rng)
    train, _ = wc.nonce_split()
    return source, {task: [wc.make_example(task, source, rng, train, icl_queries=3) for _ in range(12)] for task in wc.TASKS}


def test_nonce_pools_are_fresh_disjoint_and_deterministic():
    train, heldout = wc.nonce_split()
    assert len(train) + len(heldout) == wc.NONCE_TOTAL and not set(train) & set(heldout)
    assert not set(train + heldout) & set(wc.base_words())
    assert wc.nonce_split() == (train, heldout)


def test_attribute_answers_are_the_ground_truth(generated):
    source, examples = generated
    for task in wc.ATTRIBUTE_TASKS:
        for e in examples[task]:
            assert e.answer == source.attributes(e.meta["refs"][0])[task]
    for e in examples["name"]:
        attrs = source.attributes(e.meta["refs"][0])
        assert e.answer.split() == ["a", attrs["size"], attrs["color"], attrs["texture"], attrs["shape"]]


def test_yesno_mcq_and_count(generated):
    source, examples = generated
    for e in examples["mcq"]:
        truth = source.attributes(e.meta["refs"][0])[e.meta["attribute"]]
        assert e.meta["options"][wc.LETTERS.index(e.answer)] == truth
        assert len(set(e.meta["options"])) == len(e.meta["options"])
    for e in examples["yesno"]:
        attrs = source.attributes(e.meta["refs"][0])
        question = e.turns[0].parts[1]
        named = [v for v in w.ATTRIBUTES[e.meta["attribute"]] if v in question.split()]
        assert (e.answer == "yes") == (named == [attrs[e.meta["attribute"]]])
    for e in examples["count"]:
        scene, _ = wc.make_scene(e.meta["refs"][0])
        assert e.answer == wc.COUNT_WORDS[len(scene.objects) - 1]
        assert len({o.position for o in scene.objects}) == len(scene.objects)


def test_icl_query_matches_exactly_one_context_image_by_shape(generated):
    source, examples = generated
    for e in examples["icl"]:
        first = e.turns[0].parts
        context = [(first[i], first[i + 1]) for i in range(0, len(first) - 2, 2)]
        shapes = [source.attributes(ref)["shape"] for ref, _ in context]
        assert len(set(shapes)) == len(shapes) and [n for _, n in context] == e.meta["labels"]
        for user, reply in zip(e.turns[::2], e.turns[1::2], strict=True):
            query = [p for p in user.parts if isinstance(p, wc.SceneRef)]
            shape = source.attributes(query[-1])["shape"] if query else user.parts[0].split()[-2]
            assert reply.parts[0] == e.meta["labels"][shapes.index(shape)]


def test_multiturn_needs_the_first_turn(generated):
    source, examples = generated
    for e in examples["multiturn"]:
        refs = e.meta["refs"]
        attrs = source.attributes(refs[0])
        if e.meta["kind"] == "follow-up":
            assert not wc.turn_images(e.turns[2:]) and e.answer == attrs[e.meta["attribute"]]
        else:
            same = source.attributes(refs[1])[e.meta["attribute"]] == attrs[e.meta["attribute"]]
            assert e.answer == ("yes" if same else "no")


def test_every_word_is_in_the_vocabulary(generated):
    from vlmkit.models.embedded_chat_build import build_tokenizer, render_text

    _, examples = generated
    tokenizer = build_tokenizer()
    for items in examples.values():
        for e in items:
            ids = tokenizer(render_text(e.turns))["input_ids"]
            assert tokenizer.unk_token_id not in ids, render_text(e.turns)


def test_fresh_sources_are_deterministic():
    def draw():
        rng = np.random.default_rng(3)
        source = wc.SceneSource(5, rng)
        return [wc.make_example(t, source, rng, wc.nonce_split()[1]).answer for t in wc.TASKS]

    assert draw() == draw()


def test_text_scaffolds_state_the_truth_and_echo_recalls_every_pair(generated):
    _, examples = generated
    for task in ("text_yesno", "text_mcq"):
        for e in examples[task]:
            assert not any(isinstance(p, wc.SceneRef) for t in e.turns for p in t.parts)
            described = e.turns[0].parts[0].split()  # one value of every attribute, the latent among them
            assert all(sum(v in described for v in values) == 1 for values in w.ATTRIBUTES.values()), described
            assert e.turns[-1].latent in described
    for e in examples["text_yesno"]:  # yes exactly when the asked value is the described one
        assert (e.meta["value"] in e.turns[0].parts[0].split()) == (e.answer == "yes"), e.turns
    for e in examples["text_mcq"]:  # the lettered option is the described value
        assert e.meta["options"][wc.LETTERS.index(e.answer)] in e.turns[0].parts[0].split(), e.turns
    for e in examples["echo"]:
        prompt = e.turns[0].parts[0].split(" . ")[0].split()
        pairs = dict(zip(prompt[::2], prompt[1::2], strict=True))
        recalled = e.answer.split()
        assert dict(zip(recalled[::2], recalled[1::2], strict=True)) == pairs


def test_latents_are_the_perceived_truth_behind_each_reply(generated):
    source, examples = generated
    for e in examples["yesno"] + examples["mcq"]:  # the value seen in the image, whatever the reply says
        assert e.turns[-1].latent == source.attributes(e.meta["refs"][0])[e.meta["attribute"]]
    for e in examples["multiturn"]:  # a follow-up or "same ?" hinges on the (last) image's attribute
        assert e.turns[-1].latent == source.attributes(e.meta["refs"][-1])[e.meta["attribute"]]
    for task in ("color", "shape", "texture"):
        assert all(e.turns[-1].latent == e.answer for e in examples[task])
    assert all(t.latent is None for task in ("name", "count", "icl", "echo", "text_icl") for e in examples[task] for t in e.turns)
