"""embedded-chat: the HF LLaVA build, a tiny training run, export, reload and resumption."""

from __future__ import annotations

import json

import pytest
import torch

from vlmkit.data import world_chat as wc
from vlmkit.models import embedded_chat_build as build


def test_chat_template_matches_the_python_rendering():
    processor = build.build_processor(4, "resize", "bicubic")
    ref = wc.SceneRef(0, 0)
    turns = [wc.Turn("user", [ref, "what color is the shape ?"]), wc.Turn("assistant", ["red"]), wc.Turn("user", [ref, "and its shape ?"])]
    messages = [
        {"role": t.role, "content": [{"type": "image"} if isinstance(p, wc.SceneRef) else {"type": "text", "text": p} for p in t.parts]}
        for t in turns
    ]
    assert processor.apply_chat_template(messages, add_generation_prompt=True) == build.render_text(turns, add_generation_prompt=True)
    ids = processor.tokenizer("What is in the image?")["input_ids"]
    assert processor.tokenizer.unk_token_id not in ids


@pytest.mark.parametrize("mode", ["tile", "resize"])
def test_coarse_tower_pools_positions_and_keeps_the_fine_tower_at_full_grid(mode):
    from transformers import CLIPVisionConfig, CLIPVisionModel

    config = {
        "hidden_size": 16,
        "intermediate_size": 32,
        "num_attention_heads": 2,
        "num_hidden_layers": 1,
        "image_size": 32,
        "patch_size": 8,
    }
    torch.manual_seed(0)
    state = CLIPVisionModel(CLIPVisionConfig(**config)).state_dict()
    same_config, same_state = build.coarse_tower(config, state, 4, mode)
    assert same_config == config and all(torch.equal(same_state[k], state[k]) for k in same_state)
    coarse_config, coarse_state = build.coarse_tower(config, state, 2, mode)
    table = state["embeddings.position_embedding.weight"]
    assert torch.allclose(coarse_state["embeddings.position_embedding.weight"][1], table[1:].reshape(4, 4, -1)[:2, :2].mean((0, 1)))
    tower = build.vision_model(coarse_config, coarse_state)
    side = coarse_config["image_size"]
    assert build.tower_features(tower, torch.zeros(1, 3, side, side)).shape == (1, 5, 16)
    if mode == "tile":  # a coarse patch embeds as the mean of the fine patches it covers
        image = torch.randn(1, 3, 32, 32)
        fine = torch.nn.functional.conv2d(image, state["embeddings.patch_embedding.weight"], stride=8)
        coarse = torch.nn.functional.conv2d(image, coarse_state["embeddings.patch_embedding.weight"], stride=16)
        assert torch.allclose(coarse, torch.nn.functional.avg_pool2d(fine, 2), atol=1e-5)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from vlmkit.models.embedded_chat_train import ChatTrainConfig, train

    out = tmp_path_factory.mktemp("chat")
    cfg = ChatTrainConfig(steps=4, pool=64, count_pool=16, valid_pool=16, valid_n=4, short_batch=8, icl_batch=4, scaffold_batch=8,
                          lens_layer=1, eval_every=4, checkpoint_every=2, log_every=2, threads=1, hidden=32, layers=3, heads=2, mlp=64)
    lines: list[str] = []
    model_dir = train(cfg, out, log=lines.append)
    return cfg, out, model_dir, lines


def test_tiny_run_exports_a_plain_hf_llava_directory(trained):
    from PIL import Image
    from transformers import AutoModelForImageTextToText, AutoProcessor

    cfg, out, model_dir, lines = trained
    assert any("validation" in line for line in lines)
    config = json.loads((model_dir / "config.json").read_text())
    assert config["architectures"] == ["LlavaForConditionalGeneration"] and config["image_seq_length"] == cfg.image_tokens() == 65
    model = AutoModelForImageTextToText.from_pretrained(model_dir).eval()
    processor = AutoProcessor.from_pretrained(model_dir)
    image = Image.fromarray(wc.render_scene(wc.SceneRef(3, 1)))
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "image"}, {"type": "text", "text": "What is in the image?"}]}]
    text = processor.apply_chat_template(messages, add_generation_prompt=True)
    inputs = processor(text=[text], images=[image, image], return_tensors="pt")
    assert int((inputs["input_ids"] == config["image_token_index"]).sum()) == 2 * cfg.image_tokens()
    output = model.generate(**inputs, max_new_tokens=3, do_sample=False)
    assert output.shape[1] <= inputs["input_ids"].shape[1] + 3
    assert (model_dir / "README.md").read_text().startswith("---")


def test_training_resumes_from_its_checkpoint(trained):
    from vlmkit.models.embedded_chat_train import train

    cfg, out, _, _ = trained
    cfg.steps = 6
    lines: list[str] = []
    train(cfg, out, log=lines.append)
    assert "resumed at step 4" in lines
    assert json.loads((out / "work" / "history.jsonl").read_text().splitlines()[-1])["step"] == 6


def test_plain_transformers_reference_answers(trained):
    from types import SimpleNamespace

    from PIL import Image

    from vlmkit.models.embedded_chat_plain import PlainLlavaChat

    def ask(question, *images):
        return [SimpleNamespace(role="user", parts=(*images, question))]

    _, _, model_dir, _ = trained
    chat = PlainLlavaChat.load(str(model_dir))
    image = Image.fromarray(wc.render_scene(wc.SceneRef(3, 2)))
    replies = chat.generate([ask("what color is the shape ?", image), ask("how many shapes are there ?", image, image)], max_new_tokens=2)
    assert len(replies) == 2 and all(isinstance(r, str) for r in replies)
    assert replies == chat.generate(
        [ask("what color is the shape ?", image), ask("how many shapes are there ?", image, image)], max_new_tokens=2
    )


def test_eval_chat_writes_every_task(trained, tmp_path):
    from vlmkit.classify.world_chat_eval import WorldChatEvalOptions, run_world_chat_eval

    _, _, model_dir, _ = trained
    out = run_world_chat_eval(WorldChatEvalOptions(model=str(model_dir), n=2, seed=5, out=tmp_path / "eval", batch_size=8))
    result = json.loads((out / "result.json").read_text())
    expected = {
        "color",
        "shape",
        "size",
        "texture",
        "position",
        "background",
        "name_exact",
        "name_attributes",
        "yesno",
        "mcq",
        "count",
        "icl_4shot",
        "multiturn",
    }
    assert set(result["tasks"]) == expected
    assert all(0 <= t["accuracy"] <= 1 and t["n"] == 2 for t in result["tasks"].values())
    assert "<img" in (out / "report.html").read_text()


def test_name_scores_grade_mistakes():
    from vlmkit.classify.world_chat_eval import name_scores, score

    truth = {"size": "small", "color": "red", "texture": "striped", "shape": "star"}
    assert name_scores("a small red striped star", truth) == (True, 1.0)
    assert name_scores("a small red dotted star", truth) == (False, 0.75)
    assert name_scores("a red blue striped star", truth)[1] == 0.5  # two colours named: colour wrong, size missing
    example = wc.Example("count", [], "two", {})
    assert score("count", example, "2") == {"count": 1.0}


def test_lens_targets_sit_where_the_reply_is_predicted_and_the_lens_reads_an_inner_layer():
    import numpy as np
    import torch

    from vlmkit.data import world_chat as wc
    from vlmkit.models import embedded_chat_batches as B
    from vlmkit.models import embedded_chat_train as T

    rng = np.random.default_rng(0)
    source = wc.SceneSource(3, rng)
    examples = [wc.make_example(t, source, rng, []) for t in ("yesno", "mcq", "multiturn", "color", "text_mcq", "count")]
    encoder = B.Encoder(5)
    batch = encoder.batch(examples)
    assistant = encoder.word_ids["<|assistant|>"]
    replies = 0
    for row, pos, word in batch.lens.tolist():
        if batch.ids[row, pos] == assistant:  # a reply's latent: predicted here, its first word next
            replies += 1
            assert batch.labels[row, pos + 1] != -100 and batch.labels[row, pos] == -100
        else:  # an option's letter at the option's word, the letter two tokens before it ("a ) red")
            assert batch.ids[row, pos - 2] == word and batch.labels[row, pos] == -100
    assert replies == sum(t.latent is not None for e in examples for t in e.turns)

    cfg = T.ChatTrainConfig(hidden=16, layers=3, heads=2, mlp=32, lens_layer=1)
    network = T.ChatNetwork(cfg, 8, torch.zeros(8), torch.ones(8)).eval()
    ids, mask = batch.ids[4:], batch.mask[4:]  # the text rows: no image features needed
    first_layer = []
    hook = network.lm.model.layers[0].register_forward_hook(lambda m, i, out: first_layer.append(out[0] if isinstance(out, tuple) else out))
    with torch.no_grad():
        logits, lens_logits, _ = network.run(ids, torch.zeros(0, 8), mask, layer=1)
    hook.remove()
    with torch.no_grad():  # the lens: the first decoder layer's output through the final norm and the tied output matrix
        expected = network.lm.model.norm(first_layer[0]) @ network.lm.model.embed_tokens.weight.T
        assert torch.allclose(lens_logits, expected, atol=1e-5)
        assert torch.allclose(logits, network(ids, torch.zeros(0, 8), mask), atol=1e-5)
    with pytest.raises(ValueError, match="lens_layer"):
        T.ChatNetwork(T.ChatTrainConfig(layers=2, lens_layer=2), 8, torch.zeros(8), torch.ones(8))
    stages = [T.stage_at(step, T.ChatTrainConfig(steps=100)) for step in (0, 29, 30, 59, 60, 99)]
    assert [T.CURRICULUM.index(s) for s in stages] == [0, 0, 1, 1, 2, 2]


def test_attention_routes_point_at_the_labelled_image_the_query_image_and_the_label_to_copy():
    import numpy as np

    from vlmkit.data import world_chat as wc
    from vlmkit.models import embedded_chat_batches as B

    rng = np.random.default_rng(4)
    source = wc.SceneSource(3, rng)
    labels, _ = wc.nonce_split()
    encoder = B.Encoder(5)
    for _ in range(6):  # several draws, so by-name follow-ups (no query image) occur
        example = wc.make_example("icl", source, rng, labels, icl_queries=4)
        ids, targets, _, _ = encoder.encode(example)
        routes = encoder.routes(ids, targets)
        label_of = dict(zip(example.meta["labels"], example.meta["shapes"], strict=True))
        binds = [(p, s, e) for p, s, e, k in routes if k == B.GATHER and targets[p + 1] == -100]
        assert len(binds) == len(label_of)  # one per context label: the first of the 5 image tokens right before it
        assert all(s == p - 5 and e == s + 1 and set(ids[s:p]) == {B.IMAGE_ID} and ids[s - 1] != B.IMAGE_ID for p, s, e in binds)
        replies = [p for p in range(len(ids) - 1) if targets[p + 1] in {encoder.word_ids[w] for w in label_of}]
        copies = {p: s for p, s, e, k in routes if k == B.COPY}
        assert sorted(copies) == replies
        assert all(ids[copies[p]] == targets[p + 1] and copies[p] in {b[0] for b in binds} for p in replies)
        looks = {p: (s, e) for p, s, e, k in routes if k == B.GATHER and targets[p + 1] != -100}
        for p in replies:  # the query image: the turn's own image, unless the turn asks by the shape's name
            by_name = "which" in [encoder.tokenizer.convert_ids_to_tokens(t) for t in ids[p - 8: p]]
            assert (p in looks) != by_name
            if p in looks:
                s, e = looks[p]
                assert e == s + 1 and set(ids[s: s + 5]) == {B.IMAGE_ID} and ids[s - 1] != B.IMAGE_ID
                assert all(t == -100 for t in targets[s: p + 1])
    text = wc.make_example("text_icl", source, rng, labels, icl_queries=2)
    ids, targets, _, _ = encoder.encode(text)
    assert {k for *_, k in encoder.routes(ids, targets)} == {B.COPY}


def test_head_weights_are_llamas_own_attention():
    import numpy as np
    import torch

    from vlmkit.data import world_chat as wc
    from vlmkit.models import embedded_chat_batches as B
    from vlmkit.models import embedded_chat_train as T

    rng = np.random.default_rng(0)
    labels, _ = wc.nonce_split()
    examples = [wc.make_example(t, None, rng, labels, icl_queries=2) for t in ("text_icl", "echo", "text_icl")]
    batch = B.Encoder(5).batch(examples)
    network = T.ChatNetwork(T.ChatTrainConfig(hidden=32, layers=3, heads=2, mlp=32, lens_layer=1), 8, torch.zeros(8), torch.ones(8)).eval()
    rows, positions = batch.routes[:, 0], batch.routes[:, 1]
    mixed = {}  # every head's attention output, as o_proj receives it
    hooks = [network.lm.model.layers[i].self_attn.o_proj.register_forward_pre_hook(lambda m, args, i=i: mixed.__setitem__(i, args[0]))
             for i in (1, 2)]
    with torch.no_grad():
        ours = network.run(batch.ids, torch.zeros(0, 8), batch.mask, queries={1: (rows, positions), 2: (rows, positions)}).heads
        for hook in hooks:
            hook.remove()
        network.lm.config._attn_implementation = "eager"
        theirs = network.lm.model(input_ids=batch.ids, attention_mask=batch.mask, output_attentions=True).attentions
    for layer in (1, 2):
        assert torch.allclose(ours[layer].weights, theirs[layer][rows, 0, positions], atol=1e-6)
        o_proj = network.lm.model.layers[layer].self_attn.o_proj.weight
        assert torch.allclose(ours[layer].output, mixed[layer][rows, positions, :16] @ o_proj[:, :16].T, atol=1e-5)
    assert float(T.attention_mass(ours[1].weights, batch.routes[:, 2], batch.routes[:, 3]).min()) > 0
