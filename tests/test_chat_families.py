"""Every tiny random LMM family (``random:<family>-tiny``) through the in-process HF chat backend.

Each family is a real transformers architecture with random weights, built offline (no
torchvision) once per session into a temporary cache; the recipes are in
``src/vlmkit/models/specs/chat_architectures.json``.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from vlmkit.models import chat as c
from vlmkit.models.chat_random import WORDS, architectures, cached_directory
from vlmkit.models.chat_registry import load_chat_model

pytestmark = pytest.mark.xdist_group("chat-families")  # one worker builds the families once

FAMILIES = [arch for arch, spec in architectures().items() if "vision_config" in spec]
RED = Image.new("RGB", (40, 40), (230, 20, 20))
BLUE = Image.new("RGB", (48, 32), (20, 20, 230))
GREEN = Image.new("RGB", (36, 44), (20, 200, 40))
NEW_TOKENS = 5


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """Tiny matrices: threads only add contention (the 2-core CI machine runs two workers)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def family_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("random-chat-families")


@pytest.fixture(scope="module", params=FAMILIES)
def family(request, family_cache):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("VLMKIT_CACHE", str(family_cache))
        return load_chat_model(f"random:{request.param}")


def batch_of_three(model) -> list[list[c.Message]]:
    """One image, two images (one where the family takes only one), text only."""
    second = [c.user(RED, BLUE, "which one is red ?")] if "multi_image" in model.capabilities else c.ask("which one is red ?", GREEN)
    return [c.ask("what color is it ?", RED), second, [c.system("answer with one word ."), c.user("describe a star .")]]


def test_every_family_in_the_issue_is_registered():
    wanted = {"llava", "llava-next", "llava-onevision", "qwen2-vl", "qwen2.5-vl", "idefics3", "smolvlm", "gemma3", "internvl", "paligemma"}
    assert {f"{name}-tiny" for name in wanted} <= set(FAMILIES)


def test_without_video_drops_only_the_video_slot():
    from transformers import LlavaNextVideoProcessor, LlavaOnevisionProcessor, LlavaProcessor

    from vlmkit.models.hf_processors import without_video

    assert without_video(LlavaProcessor) is LlavaProcessor
    for base in (LlavaOnevisionProcessor, LlavaNextVideoProcessor):  # video slot last, video slot first
        derived = without_video(base)
        assert derived.__name__ == base.__name__ and issubclass(derived, base)
        assert derived.get_attributes() == [a for a in base.get_attributes() if a != "video_processor"]
        # transformers passes saved options back by the names in __init__'s code object
        names = derived.__init__.__code__.co_varnames[: derived.__init__.__code__.co_argcount]
        assert "video_processor" not in names and {"chat_template", "vision_feature_select_strategy"} <= set(names)


def test_batched_generation_equals_one_at_a_time(family):
    conversations = batch_of_three(family)
    batched = family.generate(conversations, max_new_tokens=NEW_TOKENS)
    assert batched == [family.generate([conv], max_new_tokens=NEW_TOKENS)[0] for conv in conversations]
    assert all(isinstance(answer, str) for answer in batched)


def test_the_image_reaches_the_logits(family):
    options = ["red", "blue", "star", "yes", "no"]
    red = family.score(c.ask("what color is it ?", RED), options)
    blue = family.score(c.ask("what color is it ?", BLUE), options)
    assert max(abs(a - b) for a, b in zip(red, blue, strict=True)) > 1e-3


def test_score_is_a_log_probability_consistent_with_greedy_decoding(family):
    conversation = c.ask("what color is it ?", RED)
    first = family.generate([conversation], max_new_tokens=1)[0]
    assert first in WORDS  # tiny models answer in words (their special tokens are suppressed)
    options = list(dict.fromkeys([first, "red", "blue", "star", "yes", "no", "A", "?"]))[:8]
    scores = family.score(conversation, options)
    assert all(math.isfinite(s) and s < 0 for s in scores)
    assert sum(math.exp(s) for s in scores) < 1 + 1e-4  # disjoint one-token continuations
    assert scores[0] >= max(scores) - 1e-4  # the greedy token is the most likely option


def test_save_and_reload_gives_identical_answers(family, tmp_path):
    family.save(tmp_path / "saved")
    reloaded = load_chat_model(str(tmp_path / "saved"))
    conversations = batch_of_three(family)
    assert reloaded.generate(conversations, max_new_tokens=NEW_TOKENS) == family.generate(conversations, max_new_tokens=NEW_TOKENS)
    assert type(reloaded.processor).__name__ == type(family.processor).__name__


FRESH = """
import json, sys
import torch
torch.set_num_threads(1)
from pathlib import Path
from PIL import Image
from vlmkit.models import chat as c
from vlmkit.models.chat_hf import HFChatModel
red = Image.new("RGB", (40, 40), (230, 20, 20))
answers = {}
for directory in sys.argv[1:]:
    model = HFChatModel.from_directory(Path(directory), name=directory, fingerprint="x")
    answer = model.generate([c.ask("what color is it ?", red)], max_new_tokens=5)[0]
    answers[Path(directory).name] = [type(model.processor).__name__, answer]
print(json.dumps(answers))
"""


def test_saved_directories_load_in_a_fresh_process(family_cache):
    """Without vlmkit having built anything in that process: the video-slot processors
    (OneVision, Qwen2-VL, SmolVLM, InternVL) load by their saved, real class name."""
    models, directories = {}, {}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("VLMKIT_CACHE", str(family_cache))
        for arch in FAMILIES:
            models[arch] = load_chat_model(f"random:{arch}")
            directories[cached_directory(arch, 0).name] = arch
    paths = [str(family_cache / "random-chat" / name) for name in directories]
    run = subprocess.run([sys.executable, "-c", FRESH, *paths], capture_output=True, text=True, timeout=300, check=False)
    assert run.returncode == 0, run.stderr[-2000:]
    fresh = json.loads(run.stdout.strip().splitlines()[-1])
    for name, arch in directories.items():
        saved_class = json.loads((family_cache / "random-chat" / name / "processor_config.json").read_text())["processor_class"]
        assert fresh[name][0] == saved_class == type(models[arch].processor).__name__
        assert fresh[name][1] == models[arch].generate([c.ask("what color is it ?", RED)], max_new_tokens=5)[0]


def test_a_processor_that_needs_torchvision_is_a_one_line_error(family_cache, tmp_path):
    import shutil

    from vlmkit.errors import UnsupportedError
    from vlmkit.models.hf_processors import load_processor, torchvision_available

    if torchvision_available():
        pytest.skip("torchvision is installed: every processor loads")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("VLMKIT_CACHE", str(family_cache))
        load_chat_model("random:llava-tiny")
        source = cached_directory("llava-tiny", 0)
    shutil.copytree(source, tmp_path / "model")
    config = json.loads((tmp_path / "model" / "processor_config.json").read_text())
    config["processor_class"] = "PixtralProcessor"  # Pixtral's processor exists only with torchvision
    (tmp_path / "model" / "processor_config.json").write_text(json.dumps(config))
    with pytest.raises(UnsupportedError, match="needs torchvision"):
        load_processor(tmp_path / "model")
