"""The NumPy LLaVA backend (chat_numpy) against the transformers backend (chat_hf).

Tiny random LLaVAs of embedded-chat's family (CLIP tower, Llama, embedded-chat's word-level
tokenizer and template) and the shipped embedded-chat: same greedy answers on world
conversations of every eval-chat task (single and multi-image, multi-turn, in-context), logits
within 1e-4, the same scores and pixels; unsupported checkpoints fall back to transformers; the
`vlmkit chat` path imports neither torch nor transformers.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vlmkit.errors import UnsupportedError, UserError
from vlmkit.models import chat as c
from vlmkit.models.chat_numpy import ImagePreprocessor, NumpyLlavaChat, eos_ids
from vlmkit.models.chat_registry import embedded_chat_dir, load_chat_model
from vlmkit.models.llava_checkpoint import parse_config

#: variant -> (LlavaConfig / processor knobs); "wide" covers what embedded-chat does not use
VARIANTS = {
    "embedded": {"strategy": "full", "layer": -1, "tied": True, "projector": "gelu", "vision_act": "quick_gelu"},
    "wide": {
        "strategy": "default", "layer": [-3, -1], "tied": False, "projector": "gelu_pytorch_tanh", "vision_act": "gelu",
        "kv_heads": 2, "head_dim": 16, "bias": True, "rope": {"rope_type": "linear", "factor": 2.0, "rope_theta": 500.0},
        "size": {"height": 64, "width": 64}, "resample": 2,
    },
}  # fmt: skip


def build_tiny_llava(out: Path, variant: str, seed: int = 0, text_model: str = "llama") -> Path:
    """A random ``LlavaForConditionalGeneration`` with embedded-chat's tokenizer and template."""
    import torch
    from transformers import (
        CLIPImageProcessor,
        CLIPVisionConfig,
        GenerationConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
        Qwen2Config,
    )

    from vlmkit.models import embedded_chat_build as build
    from vlmkit.models.quiet import quiet_transformers

    v = VARIANTS[variant]
    vocab = build.vocabulary()
    if "size" in v:  # a fixed-size resize, no crop
        image_kwargs = {**build.image_processor_kwargs(96), "size": v["size"], "do_center_crop": False, "resample": v["resample"]}
        side = v["size"]["height"]
    else:
        image_kwargs, side = build.image_processor_kwargs(96), 96
    patch = side // 4
    vision = CLIPVisionConfig(
        hidden_size=32, intermediate_size=64, num_hidden_layers=3, num_attention_heads=2, image_size=side, patch_size=patch,
        hidden_act=v["vision_act"],
    )  # fmt: skip
    text_kwargs = {
        "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
        "num_key_value_heads": v.get("kv_heads", 4), "vocab_size": len(vocab), "eos_token_id": 6, "pad_token_id": 0,
        "initializer_range": 0.3, "tie_word_embeddings": v["tied"], "max_position_embeddings": 1024,
    }  # fmt: skip
    if text_model == "qwen2":
        text = Qwen2Config(**text_kwargs)
    else:
        extra = {"head_dim": v["head_dim"]} if "head_dim" in v else {}
        if "rope" in v:
            extra["rope_parameters"] = v["rope"]
        if v.get("bias"):
            extra.update(attention_bias=True, mlp_bias=True)
        text = LlamaConfig(**text_kwargs, **extra)
    config = LlavaConfig(
        vision_config=vision, text_config=text, image_token_id=vocab.index(build.IMAGE_TOKEN), projector_hidden_act=v["projector"],
        vision_feature_select_strategy=v["strategy"], vision_feature_layer=v["layer"], tie_word_embeddings=v["tied"],
        multimodal_projector_bias=not v.get("bias", False),
    )  # fmt: skip
    torch.manual_seed(seed)
    with quiet_transformers():
        model = LlavaForConditionalGeneration(config).eval()
        processor = LlavaProcessor(
            image_processor=CLIPImageProcessor(**image_kwargs), tokenizer=build.build_tokenizer(), patch_size=patch,
            vision_feature_select_strategy=v["strategy"], chat_template=build.CHAT_TEMPLATE, num_additional_image_tokens=1,
            image_token=build.IMAGE_TOKEN,
        )  # fmt: skip
    # several common words end a row too, so batches mix finished and unfinished rows
    stops = [6, *(vocab.index(w) for w in ("red", "blue", "circle", "yes", "no", "large"))]
    model.generation_config = GenerationConfig(eos_token_id=stops, pad_token_id=0)
    with quiet_transformers():
        model.save_pretrained(out)
        processor.save_pretrained(out)
    return out


def world_conversations(n: int, seed: int) -> list[list[c.Message]]:
    """``n`` conversations per eval-chat task (12 tasks): attributes, naming, yes/no, MCQ,
    counting (several images), 4-shot ICL (five images), multi-turn."""
    from vlmkit.classify.world_chat_eval import eval_examples, to_messages
    from vlmkit.data import world_chat as wc

    images, conversations = {}, []
    for examples in eval_examples(n, seed).values():
        for example in examples:
            for ref in wc.turn_images(example.prompt):
                images.setdefault(ref, Image.fromarray(wc.render_scene(ref)))
            conversations.append(to_messages(example.prompt, images))
    return conversations


def both(directory: Path):
    from vlmkit.models.chat_hf import HFChatModel

    return (
        NumpyLlavaChat.from_directory(directory, name="n", fingerprint="n"),
        HFChatModel.from_directory(directory, name="h", fingerprint="h"),
    )


@pytest.fixture(scope="module", params=list(VARIANTS))
def tiny(request, tmp_path_factory):
    import torch

    torch.set_num_threads(1)
    return both(build_tiny_llava(tmp_path_factory.mktemp(f"llava-{request.param}") / "model", request.param))


@pytest.fixture(scope="module")
def shipped():
    if not (embedded_chat_dir() / "model.safetensors").is_file():
        pytest.skip("the embedded-chat weights are not in this checkout")
    return both(embedded_chat_dir())


@pytest.fixture(scope="module")
def conversations():
    convs = world_conversations(3, 4242)
    assert len(convs) >= 32 and any(len(c.conversation_images(x)) > 1 for x in convs) and any(len(x) > 1 for x in convs)
    return convs


def assert_same_greedy_answers(pair, conversations, max_new_tokens):
    numpy_model, hf_model = pair
    ours = numpy_model.generate(conversations, max_new_tokens=max_new_tokens)
    theirs = hf_model.generate(conversations, max_new_tokens=max_new_tokens)
    assert ours == theirs
    return ours


def test_greedy_answers_equal_the_hf_backend_on_tiny_random_llavas(tiny, conversations):
    answers = assert_same_greedy_answers(tiny, conversations, 8)
    assert len(set(answers)) > 3  # not one degenerate reply
    lengths = {len(a.split()) for a in answers}
    assert len(lengths) > 1  # some rows stopped early, others ran to the limit


def test_greedy_answers_equal_the_hf_backend_on_the_shipped_embedded_chat(shipped, conversations):
    answers = assert_same_greedy_answers(shipped, conversations, 12)
    assert all(answers)


def _hf_logits(hf_model, texts, images):
    import torch

    batch = hf_model._encode(texts, images, "right")
    with torch.no_grad():
        return hf_model.model(**batch).logits.numpy(), batch["input_ids"].numpy(), batch["attention_mask"].numpy().astype(bool)


def _assert_logits_close(pair, conversations):
    numpy_model, hf_model = pair
    texts = [hf_model.render(x) for x in conversations]
    images = [c.conversation_images(x) for x in conversations]
    expected, hf_ids, mask = _hf_logits(hf_model, texts, images)
    ids, pixels = numpy_model._inputs(texts, images)
    for row, tokens in enumerate(ids):
        assert tokens == hf_ids[row][mask[row]].tolist()
    net = numpy_model.network
    positions = np.broadcast_to(np.arange(hf_ids.shape[1]), hf_ids.shape)
    got = net.forward(net.embed(hf_ids, numpy_model._features(pixels)), positions, mask, net.new_cache(*hf_ids.shape), 0)
    assert np.abs(got - expected)[mask].max() < 1e-4


def test_logits_match_the_hf_forward(tiny, shipped, conversations):
    picks = [conversations[i] for i in (0, 20, 30, 33)]  # one image, several images, ICL, multi-turn
    _assert_logits_close(tiny, picks)
    _assert_logits_close(shipped, picks)


def test_scores_match_the_hf_backend(tiny, shipped, conversations):
    options = ["red", "a small red striped star", "yes"]
    for numpy_model, hf_model in (tiny, shipped):
        for conversation in (conversations[0], conversations[-1]):
            assert np.allclose(numpy_model.score(conversation, options), hf_model.score(conversation, options), atol=1e-4)


def test_pixels_equal_the_hf_image_processor(tiny):
    from transformers import CLIPImageProcessor

    rng = np.random.default_rng(0)
    images = [Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)) for h, w in ((96, 96), (70, 130), (150, 61), (20, 33))]
    images.append(Image.fromarray(rng.integers(0, 256, (50, 40, 4), dtype=np.uint8), "RGBA"))
    for config in (tiny[0].text.images.cfg, {"size": {"shortest_edge": 40}, "crop_size": {"height": 50, "width": 30}}):
        ours = ImagePreprocessor(config)
        kwargs = {k: v for k, v in config.items() if k != "image_processor_type"}
        reference = CLIPImageProcessor(**kwargs)
        for image in images:
            expected = reference(images=[image], return_tensors="np")["pixel_values"][0]
            assert np.array_equal(ours(image), expected)


def test_sampling_is_deterministic_under_its_seed(shipped, conversations):
    numpy_model, _ = shipped
    first = numpy_model.generate(conversations[:4], max_new_tokens=6, temperature=1.5, seed=3)
    assert first == numpy_model.generate(conversations[:4], max_new_tokens=6, temperature=1.5, seed=3)


def test_unsupported_configs_are_refused():
    config = json.loads((embedded_chat_dir() / "config.json").read_text())
    parse_config(config)
    for edit in (
        {"text_config": {**config["text_config"], "model_type": "qwen2"}},
        {"text_config": {**config["text_config"], "rope_parameters": {"rope_type": "yarn", "rope_theta": 1e4, "factor": 2.0}}},
        {"dtype": "bfloat16"},
        {"projector_hidden_act": "mish"},
        {"vision_config": {**config["vision_config"], "model_type": "siglip_vision_model"}},
        {"vision_feature_select_strategy": "cls"},
    ):
        with pytest.raises(UnsupportedError):
            parse_config({**config, **edit})


def test_a_decoding_setting_it_lacks_is_refused(tmp_path):
    (tmp_path / "generation_config.json").write_text(json.dumps({"eos_token_id": [6, 9], "repetition_penalty": 1.3}))
    with pytest.raises(UnsupportedError, match="repetition_penalty"):
        eos_ids(tmp_path, {})
    (tmp_path / "generation_config.json").write_text(json.dumps({"eos_token_id": [6, 9], "top_k": 50, "do_sample": False}))
    assert eos_ids(tmp_path, {})[0] == {6, 9}


def test_the_registry_falls_back_to_transformers_for_an_unsupported_checkpoint(tmp_path):
    from vlmkit.models.chat_hf import HFChatModel

    directory = build_tiny_llava(tmp_path / "qwen", "embedded", text_model="qwen2")
    assert isinstance(load_chat_model(str(directory), backend="auto"), HFChatModel)
    with pytest.raises(UnsupportedError, match="NumPy backend"):
        load_chat_model(str(directory), backend="numpy")
    with pytest.raises(UnsupportedError, match="CPU"):
        load_chat_model("embedded-chat", backend="numpy", device="cuda")
    assert isinstance(load_chat_model("embedded-chat", backend="auto", dtype="bfloat16"), HFChatModel)
    fast = load_chat_model("embedded-chat", backend="auto")
    assert isinstance(fast, NumpyLlavaChat) and isinstance(fast, c.ChatModel) and fast.capabilities == {"images", "multi_image", "score"}
    assert isinstance(load_chat_model("embedded-chat"), HFChatModel)  # library callers keep transformers by default


def test_vlmkit_chat_answers_without_importing_torch_or_transformers(shipped, tmp_path):
    image = tmp_path / "scene.png"
    world_image = world_conversations(1, 7)[0][0].images[0]
    world_image.save(image)
    code = (
        "import sys\n"
        "from vlmkit.cli.main import main\n"
        "try:\n"
        f"    main(['chat', '--model', 'embedded-chat', '--image', {str(image)!r}, 'What is in the image?'])\n"
        "finally:\n"
        "    heavy = sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'transformers', 'scipy'})\n"
        "    print('HEAVY', heavy)\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True)
    answer, heavy = run.stdout.strip().splitlines()
    assert heavy == "HEAVY []"
    assert answer == shipped[1].generate([[c.user(world_image, "What is in the image?")]], max_new_tokens=128)[0]


def test_the_exported_directory_answers_in_plain_transformers_as_vlmkit_chat_does(shipped, conversations, tmp_path):
    """Issue 15: `vlmkit chat` (the NumPy path) and the `vlmkit export` directory loaded with
    nothing but AutoModelForImageTextToText + AutoProcessor give the same greedy answers."""
    from vlmkit.models.embedded_chat_plain import PlainLlavaChat
    from vlmkit.models.export import export_model

    plain = PlainLlavaChat.load(str(export_model("embedded-chat", tmp_path / "export")))
    ours = load_chat_model("embedded-chat", backend="auto").generate(conversations, max_new_tokens=12)
    theirs = [
        answer
        for start in range(0, len(conversations), 8)
        for answer in plain.generate(conversations[start : start + 8], max_new_tokens=12)
    ]
    assert ours == theirs


def test_decoding_settings_no_backend_can_honour_are_refused_alike(tiny, conversations):
    for model in tiny:
        for settings in ({"max_new_tokens": 0}, {"temperature": -0.5}, {"temperature": float("nan")}):
            with pytest.raises(UserError, match="max_new_tokens must be >= 1 and temperature a finite number >= 0"):
                model.generate(conversations[:1], **settings)
