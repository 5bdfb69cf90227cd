"""The ``openai:`` backend against a scripted fake server: payloads, retries, failures, the cache.

Every failure must stop the run with one line naming the server, never record an answer; every
retryable failure that recovers must give the real answer. (The real ``transformers serve`` is in
``test_chat_serve.py``.)
"""

from __future__ import annotations

import base64
import io
import random
import sqlite3
import time
from email.utils import formatdate

import pytest
from PIL import Image

from tests.fake_openai import FakeServer, Reply, completion, free_port
from vlmkit.errors import UnsupportedError, UserError
from vlmkit.models.chat import ask, assistant, system, user
from vlmkit.models.chat_openai import (
    ChatServerError,
    OpenAIChatModel,
    backoff_seconds,
    load,
    normalise_base_url,
    retry_after_seconds,
)
from vlmkit.runs.response_cache import ResponseCache

FAST = {"backoff": 0.01, "max_backoff": 2.0, "seed": 0}


def served(url, *, cache=None, **options) -> OpenAIChatModel:
    return OpenAIChatModel("fake-model", base_url=url, api_key="test", cache=cache, **{**FAST, **options})


def one_line(error: Exception) -> str:
    message = str(error)
    assert "\n" not in message and message
    return message


# -- payloads ----------------------------------------------------------------------------------
def test_payload_has_only_the_portable_fields_and_images_as_png_data_urls():
    image = Image.new("RGB", (9, 7), (200, 30, 30))
    image.putpixel((3, 2), (1, 2, 3))
    with FakeServer() as server:
        model = served(server.url)
        conversation = [system("be brief"), user(image, "what colour ?", image), assistant("red"), user("sure ?")]
        (answer,) = model.generate([conversation], max_new_tokens=5, temperature=0.5, seed=3)
    assert answer == "echo: sure ?"
    (body,) = server.requests
    assert set(body) == {"model", "messages", "max_tokens", "temperature", "seed"}  # no stop, n, response_format
    assert (body["model"], body["max_tokens"], body["temperature"], body["seed"]) == ("fake-model", 5, 0.5, 3)
    assert [m["role"] for m in body["messages"]] == ["system", "user", "assistant", "user"]
    assert body["messages"][0]["content"] == "be brief" and body["messages"][3]["content"] == "sure ?"
    parts = body["messages"][1]["content"]
    assert [p["type"] for p in parts] == ["image_url", "text", "image_url"] and parts[1]["text"] == "what colour ?"
    prefix = "data:image/png;base64,"
    assert parts[0]["image_url"]["url"].startswith(prefix)
    decoded = Image.open(io.BytesIO(base64.b64decode(parts[0]["image_url"]["url"][len(prefix) :])))
    assert decoded.format == "PNG" and decoded.tobytes() == image.tobytes()  # lossless pixels


def test_answers_come_back_in_order_with_bounded_concurrency():
    # every reply waits until three requests have been in flight at once: parallelism is seen
    # however slowly the client's threads start on a loaded machine
    with FakeServer([Reply(body="ECHO", delay=0.05, gather=3)]) as server:
        model = served(server.url, concurrency=3)
        questions = [f"q{i}" for i in range(9)]
        answers = model.generate([ask(q) for q in questions])
    assert answers == [f"echo: {q}" for q in questions]
    assert server.max_in_flight == 3  # parallel, and never more than asked


def test_null_content_is_the_empty_answer_and_a_refusal_is_the_answer():
    with FakeServer([Reply(body=completion(None)), Reply(body=completion(None, refusal="I can't help with that."))]) as server:
        model = served(server.url, concurrency=1)
        assert model.generate([ask("a"), ask("b")]) == ["", "I can't help with that."]


# -- retries -----------------------------------------------------------------------------------
def test_a_500_then_a_200_gives_the_real_answer():
    with FakeServer([Reply(500, {"error": {"message": "boom"}}), Reply(body="ECHO")]) as server:
        assert served(server.url).generate([ask("hi")]) == ["echo: hi"]
    assert len(server.requests) == 2


def test_429_honours_retry_after():
    script = [Reply(429, {"error": {"message": "slow down"}}, headers={"Retry-After": "1"}), Reply(body="ECHO")]
    with FakeServer(script) as server:
        assert served(server.url, backoff=0.001).generate([ask("hi")]) == ["echo: hi"]
    assert server.times[1] - server.times[0] >= 0.95  # the server's wait, not the 1 ms backoff


def test_persistent_429_stops_with_the_server_and_the_status():
    with FakeServer([Reply(429, {"error": {"message": "quota"}}, headers={"Retry-After": "0"})]) as server:
        model = served(server.url, max_retries=2)
        with pytest.raises(ChatServerError) as info:
            model.generate([ask("hi")])
    message = one_line(info.value)
    assert server.url in message and "HTTP 429" in message and "quota" in message and "3 times" in message
    assert len(server.requests) == 3


def test_an_unreachable_server_is_named():
    url = f"http://127.0.0.1:{free_port()}/v1"
    model = served(url, max_retries=1)
    with pytest.raises(ChatServerError, match="cannot reach the chat server at " + url) as info:
        model.generate([ask("hi")])
    one_line(info.value)
    assert model.requests_sent == 2


def test_a_slow_server_times_out():
    with FakeServer([Reply(body="ECHO", delay=3.0)]) as server:
        model = served(server.url, timeout=0.3, max_retries=1)
        started = time.monotonic()
        with pytest.raises(ChatServerError, match="did not answer within 0.3 s") as info:
            model.generate([ask("hi")])
    assert server.url in one_line(info.value) and model.requests_sent == 2
    assert time.monotonic() - started < 2.5  # gave up on each attempt, did not wait for the slow answers


@pytest.mark.parametrize("status", [401, 403])
def test_a_refused_key_fails_at_once(status):
    with FakeServer([Reply(status, {"error": {"message": "Incorrect API key provided"}})]) as server:
        with pytest.raises(ChatServerError, match="refused the API key") as info:
            served(server.url).generate([ask("hi")])
    assert f"HTTP {status}" in one_line(info.value) and len(server.requests) == 1


def test_a_model_not_served_lists_what_is_served():
    with FakeServer(
        [Reply(404, {"error": {"message": "The model `fake-model` does not exist."}})], models=("llava-1.5", "qwen2-vl")
    ) as server:
        with pytest.raises(ChatServerError) as info:
            served(server.url).generate([ask("hi")])
    message = one_line(info.value)
    assert "'fake-model' is not served at " + server.url in message and "it serves: llava-1.5, qwen2-vl" in message
    assert len(server.requests) == 1


def test_a_url_that_is_no_api_root_is_named_as_such():
    with FakeServer() as server:
        url = server.url.replace("/v1", "/api")
        with pytest.raises(ChatServerError, match="no OpenAI-compatible API answers at " + url) as info:
            served(url).generate([ask("hi")])
    assert "ends in /v1" in one_line(info.value) and server.requests == []


@pytest.mark.parametrize("body", ["this is not json", {"choices": []}, {"error": "overloaded"}, {"choices": [{"message": "text"}]}])
def test_a_malformed_response_is_an_error_not_an_answer(body, tmp_path):
    cache = ResponseCache(tmp_path / "r.sqlite")
    with FakeServer([Reply(200, body)]) as server:
        with pytest.raises(ChatServerError, match="malformed response") as info:
            served(server.url, cache=cache).generate([ask("hi")])
    assert server.url in one_line(info.value) and len(server.requests) == 1 and len(cache) == 0


def test_retry_after_parsing():
    assert retry_after_seconds({"retry-after": "3"}) == 3.0
    assert retry_after_seconds({"retry-after-ms": "250"}) == 0.25
    assert 8 <= retry_after_seconds({"retry-after": formatdate(time.time() + 10, usegmt=True)}) <= 10.5
    assert retry_after_seconds({"retry-after": "soon"}) is None and retry_after_seconds({}) is None


def test_backoff_grows_exponentially_with_jitter_and_is_capped():
    rng = random.Random(0)
    for attempt in range(8):
        delays = [backoff_seconds(attempt, 0.5, 8.0, rng) for _ in range(50)]
        nominal = min(8.0, 0.5 * 2**attempt)
        assert all(nominal / 2 <= d <= nominal for d in delays) and len(set(delays)) > 1


# -- the cache ---------------------------------------------------------------------------------
def test_a_failure_mid_batch_keeps_the_answers_before_it_and_a_rerun_resumes(tmp_path):
    cache = ResponseCache(tmp_path / "r.sqlite")
    conversations = [ask(f"q{i}") for i in range(5)]
    script = [Reply(body="ECHO"), Reply(body="ECHO"), Reply(401, {"error": {"message": "key revoked"}})]
    with FakeServer(script) as server:
        with pytest.raises(ChatServerError):
            served(server.url, cache=cache, concurrency=1).generate(conversations)
        assert len(cache) == 2  # the two answers, and nothing for the failure
        server.script = [Reply(body="ECHO")]
        model = served(server.url, cache=cache, concurrency=2)
        assert model.generate(conversations) == [f"echo: q{i}" for i in range(5)]
        assert model.requests_sent == 3  # only the three not answered before
        again = served(server.url, cache=cache)
        assert again.generate(conversations) == [f"echo: q{i}" for i in range(5)] and again.requests_sent == 0


def test_the_cache_key_covers_everything_that_determines_an_answer(tmp_path):
    with FakeServer() as server:
        model = served(server.url, cache=ResponseCache(tmp_path / "r.sqlite"))
        base = model.cache_key(ask("hi"), max_new_tokens=8, temperature=0.0, seed=0)
        assert base == model.cache_key(ask("hi"), max_new_tokens=8, temperature=0.0, seed=0)
        variants = [
            model.cache_key(ask("hi "), max_new_tokens=8, temperature=0.0, seed=0),
            model.cache_key(ask("hi", Image.new("RGB", (4, 4))), max_new_tokens=8, temperature=0.0, seed=0),
            model.cache_key(ask("hi"), max_new_tokens=9, temperature=0.0, seed=0),
            model.cache_key(ask("hi"), max_new_tokens=8, temperature=0.7, seed=0),
            model.cache_key(ask("hi"), max_new_tokens=8, temperature=0.0, seed=1),
            OpenAIChatModel("other", base_url=server.url, api_key="k").cache_key(ask("hi"), max_new_tokens=8, temperature=0.0, seed=0),
            OpenAIChatModel("fake-model", base_url=server.url + "x", api_key="k").cache_key(
                ask("hi"), max_new_tokens=8, temperature=0.0, seed=0
            ),
        ]
        assert len({base, *variants}) == len(variants) + 1


def test_the_cache_file_is_shared_and_in_wal_mode(tmp_path):
    path = tmp_path / "deep" / "responses.sqlite"
    writer, reader = ResponseCache(path), ResponseCache(path)
    writer.put("k1", "an answer", model="m")
    writer.put("k2", "", model="m")  # an empty answer the model gave is an answer
    assert reader.get_many(["k1", "k2", "k3"]) == {"k1": "an answer", "k2": ""} and reader.get("k3") is None
    assert (reader.hits, reader.misses) == (2, 2)
    with sqlite3.connect(path) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_several_processes_write_one_cache_at_once(tmp_path):
    import subprocess
    import sys

    path = tmp_path / "responses.sqlite"
    code = (
        "import sys; from vlmkit.runs.response_cache import ResponseCache; c = ResponseCache(sys.argv[1]); "
        "[c.put(f'{sys.argv[2]}-{i}', str(i), model='m') for i in range(300)]"
    )
    writers = [
        subprocess.Popen([sys.executable, "-c", code, str(path), name], stderr=subprocess.PIPE, text=True) for name in ("a", "b", "c")
    ]
    errors = [w.communicate(timeout=120)[1] for w in writers]
    assert [w.returncode for w in writers] == [0, 0, 0], errors
    cache = ResponseCache(path)
    assert len(cache) == 900 and cache.get("b-299") == "299"


# -- options and scores ------------------------------------------------------------------------
def test_options_environment_and_defaults(monkeypatch, tmp_path):
    monkeypatch.setenv("OPENAI_BASE_URL", "http://10.0.0.9:8000")
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    model = load("llava", concurrency=None, cache_dir=tmp_path)
    assert model.base_url == "http://10.0.0.9:8000/v1" and model.concurrency == 8 and model.name == "openai:llava"
    assert model.cache.path == tmp_path / "responses.sqlite" and model.capabilities == {"images", "multi_image"}
    assert (
        load("llava", base_url="http://h:1/api/v1/", cache=False).base_url == "http://h:1/api/v1" and load("x", cache=False).cache is None
    )
    monkeypatch.delenv("OPENAI_BASE_URL")
    with pytest.raises(UserError, match="OPENAI_API_KEY"):
        load("gpt-4o")
    with pytest.raises(UserError, match="unknown option"):
        load("llava", base_url="http://h:1", stop=["\n"])
    with pytest.raises(UserError, match="bad server URL"):
        normalise_base_url("localhost:8000")


def test_images_sent_to_a_text_only_server_are_refused_before_any_request():
    with FakeServer() as server:
        model = served(server.url, images=False)
        with pytest.raises(UnsupportedError, match="images"):
            model.generate([ask("what ?", Image.new("RGB", (4, 4)))])
    assert server.requests == []


def test_score_is_unsupported_without_logprobs_and_reads_top_logprobs_with_them():
    with FakeServer() as server:
        with pytest.raises(UnsupportedError, match="no log-probabilities"):
            served(server.url).score(ask("yes or no ?"), ["yes", "no"])
    top = [{"token": " yes", "logprob": -0.2}, {"token": "no", "logprob": -1.9}, {"token": "maybe", "logprob": -4.0}]
    logprobs = {"content": [{"token": " yes", "logprob": -0.2, "top_logprobs": top}]}
    with FakeServer([Reply(body=completion("yes", logprobs=logprobs))]) as server:
        model = served(server.url, logprobs=True)
        assert "score" in model.capabilities
        assert model.score(ask("yes or no ?"), ["no", "yes"]) == [-1.9, -0.2]
        assert server.requests[0]["logprobs"] is True and server.requests[0]["max_tokens"] == 1
        with pytest.raises(UnsupportedError, match="single-token"):
            model.score(ask("yes or no ?"), ["yes", "perhaps"])


def test_vlmkit_chat_reports_a_server_failure_in_one_line_and_exit_code_2(capsys):
    from vlmkit.cli.main import main

    with FakeServer([Reply(401, {"error": {"message": "Incorrect API key provided"}})]) as server:
        with pytest.raises(SystemExit) as info:
            main(["chat", "--model", "openai:fake-model", "--base-url", server.url, "--api-key", "wrong", "hi"])
    captured = capsys.readouterr()
    assert info.value.code == 2 and captured.out == ""
    (line,) = captured.err.strip().splitlines()
    assert server.url in line and "HTTP 401" in line and "--api-key" in line
