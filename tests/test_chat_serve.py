"""``openai:`` against a real server: ``transformers serve`` on a tiny random LLaVA directory.

One server per test session (started once, on 127.0.0.1 and a free port, stopped whatever
happens); every test here is in one xdist group so ``make test`` starts it once. The served
answers are compared with the in-process :class:`HFChatModel` on the same directory: greedy
decoding of the same weights from the same prompt gives the same text.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from vlmkit.models.chat import ask, assistant, system, user
from vlmkit.models.chat_openai import ChatServerError, OpenAIChatModel
from vlmkit.runs.response_cache import ResponseCache

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("transformers-serve")]

pytest.importorskip("fastapi", reason="the transformers[serving] extra is not installed")


@pytest.fixture(scope="session")
def llava_dir(tmp_path_factory) -> Path:
    from vlmkit.models.chat_random import build_directory

    return build_directory("llava-tiny", 0, tmp_path_factory.mktemp("served") / "llava-tiny")


@pytest.fixture(scope="session")
def server_url(llava_dir):
    from vlmkit.models.serve_local import transformers_serve

    with transformers_serve(llava_dir) as url:
        yield url


@pytest.fixture(scope="session")
def in_process(llava_dir):
    from vlmkit.models.chat_hf import HFChatModel

    return HFChatModel.from_directory(llava_dir, name="local", fingerprint="local")


def client(url, llava_dir, cache=None, **options) -> OpenAIChatModel:
    return OpenAIChatModel(str(llava_dir), base_url=url, api_key="EMPTY", cache=cache, timeout=120, **options)


def conversations():
    red, blue = Image.new("RGB", (40, 30), (220, 30, 30)), Image.new("RGB", (24, 48), (30, 70, 220))
    striped = Image.new("RGB", (32, 32), (255, 255, 255))
    for x in range(0, 32, 4):
        for y in range(32):
            striped.putpixel((x, y), (0, 0, 0))
    return [
        ask("what color is this image ?", red),
        ask("what color is this image ?", blue),
        ask("what shape is in the picture ?", striped),
        [system("answer with one word ."), user("what shape is it ?")],
        [user(red, "what is this ?"), assistant("a red circle"), user("and the background ?")],
        [user(red, blue, "which one is blue ?")],
    ]


def test_served_answers_equal_in_process_greedy_answers(server_url, llava_dir, in_process):
    batch = conversations()
    expected = in_process.generate(batch, max_new_tokens=6)
    served = client(server_url, llava_dir, concurrency=1).generate(batch, max_new_tokens=6)
    assert served == expected  # an empty answer included: this random model sometimes ends at once
    assert served[0] != served[1]  # the image reached the model: two colours, two answers


def test_concurrent_requests_give_the_same_answers(server_url, llava_dir):
    batch = conversations()
    one_at_a_time = client(server_url, llava_dir, concurrency=1).generate(batch, max_new_tokens=4)
    model = client(server_url, llava_dir, concurrency=4)
    assert model.generate(batch, max_new_tokens=4) == one_at_a_time and model.requests_sent == len(batch)


def test_a_rerun_is_answered_by_the_cache_and_an_interrupted_run_resumes(server_url, llava_dir, tmp_path):
    cache = ResponseCache(tmp_path / "responses.sqlite")
    batch = conversations()
    first = client(server_url, llava_dir, cache=cache, concurrency=2)
    partial = first.generate(batch[:3], max_new_tokens=5)  # a run stopped half-way
    resumed = client(server_url, llava_dir, cache=cache, concurrency=2)
    full = resumed.generate(batch, max_new_tokens=5)
    assert full[:3] == partial and resumed.requests_sent == len(batch) - 3
    rerun = client(server_url, llava_dir, cache=ResponseCache(tmp_path / "responses.sqlite"))
    assert rerun.generate(batch, max_new_tokens=5) == full and rerun.requests_sent == 0
    other_length = client(server_url, llava_dir, cache=cache)
    other_length.generate(batch[:1], max_new_tokens=3)
    assert other_length.requests_sent == 1  # decoding settings are part of the key


def test_a_model_the_server_is_not_pinned_to_is_one_line(server_url, llava_dir):
    model = OpenAIChatModel("someone/else", base_url=server_url, api_key="EMPTY", max_retries=0)
    with pytest.raises(ChatServerError) as info:
        model.generate([ask("what ?")])
    message = str(info.value)
    assert "\n" not in message and server_url in message and "HTTP 4" in message


def test_vlmkit_chat_answers_through_the_server(server_url, llava_dir, in_process, tmp_path, capsys):
    from vlmkit.cli.main import main

    image = tmp_path / "red.png"
    Image.new("RGB", (40, 30), (220, 30, 30)).save(image)
    expected = in_process.generate([ask("what color is this image ?", image)], max_new_tokens=6)[0]
    try:
        main(
            [
                "chat",
                "--model",
                f"openai:{llava_dir}",
                "--base-url",
                server_url,
                "--image",
                str(image),
                "--max-new-tokens",
                "6",
                "what color is this image ?",
            ]
        )
    except SystemExit as exc:
        assert not exc.code
    assert capsys.readouterr().out.strip() == expected
