"""Structural pruning: exact slicing, Block Influence, importance, the CLI, and recovery."""

from __future__ import annotations

import copy
import json

import pytest
import torch
from PIL import Image

from vlmkit.compress import prune as P
from vlmkit.compress.recover import kd_hidden_loss, kd_logits_loss
from vlmkit.models import chat as c
from vlmkit.models import chat_blocks as cb

RED = Image.new("RGB", (32, 32), (220, 20, 20))


@pytest.fixture(scope="module")
def llava():
    from vlmkit.models.chat_registry import load_chat_model

    return load_chat_model("random:llava-tiny")


@pytest.fixture(scope="module")
def inputs(llava):
    return llava.training_batch([[c.user(RED, "what color is it ?"), c.assistant("red")], [c.user("what shape ?"), c.assistant("a star")]])


def logits(network, batch):
    with torch.no_grad():
        return network(**{k: v for k, v in batch.items() if k != "labels"}).logits


def test_pruning_nothing_is_the_identity(llava, inputs):
    reference = logits(llava.model, inputs)
    n = len(cb.blocks(llava.model))
    assert torch.equal(logits(cb.keep_layers(llava.model, list(range(n))), inputs), reference)
    b = cb.blocks(llava.model)[0]
    same = cb.keep_width(llava.model, [list(range(b.n_heads))] * n, [list(range(b.n_kv_heads))] * n, [list(range(b.gate.out_features))] * n)
    assert torch.allclose(logits(same, inputs), reference, atol=1e-6)


def test_pruned_heads_and_channels_are_exactly_absent(llava, inputs):
    """Slicing out kv group 1 (query heads 2, 3) and channels 0-31 equals zeroing their weights."""
    n = len(cb.blocks(llava.model))
    pruned = cb.keep_width(llava.model, [[0, 1]] * n, [[0]] * n, [list(range(32, 64))] * n)
    zeroed = copy.deepcopy(llava.model)
    for block in cb.blocks(zeroed):
        with torch.no_grad():
            block.o.weight[:, 2 * block.head_dim : 4 * block.head_dim] = 0
            block.gate.weight[:32] = 0
    assert torch.allclose(logits(pruned, inputs), logits(zeroed, inputs), atol=1e-5)
    config = pruned.config.get_text_config()
    assert (config.num_attention_heads, config.num_key_value_heads, config.intermediate_size) == (2, 1, 32)
    for block in cb.blocks(pruned):
        assert (
            block.q.weight.shape[0] == 2 * block.head_dim and block.k.weight.shape[0] == block.head_dim and block.down.weight.shape[1] == 32
        )


def test_query_only_pruning_keeps_groups_consistent(llava, inputs):
    n = len(cb.blocks(llava.model))
    pruned = cb.keep_width(llava.model, [[1, 2]] * n, [[0, 1]] * n, [list(range(64))] * n)  # one query head per kv group
    assert pruned.config.get_text_config().num_key_value_heads == 2
    assert torch.isfinite(logits(pruned, inputs)).all()
    with pytest.raises(ValueError, match="equal numbers"):
        cb.keep_width(llava.model, [[0, 1]] * n, [[0, 1]] * n, [list(range(64))] * n)  # both heads read kv head 0


def test_removing_a_block_equals_skipping_it(llava, inputs):
    removed = cb.keep_layers(llava.model, [1])
    skipping = copy.deepcopy(llava.model)
    first = cb.blocks(skipping)[0].module
    handle = first.register_forward_hook(
        lambda module, args, kwargs, output: (
            (args[0] if args else kwargs["hidden_states"])
            if not isinstance(output, tuple)
            else (args[0] if args else kwargs["hidden_states"], *output[1:])
        ),
        with_kwargs=True,
    )
    try:
        assert torch.allclose(logits(removed, inputs), logits(skipping, inputs), atol=1e-5)
    finally:
        handle.remove()
    assert removed.config.get_text_config().num_hidden_layers == 1


def test_block_influence_is_one_minus_cosine_and_picks_the_identity_block(llava):
    model = copy.copy(llava)
    model.model = copy.deepcopy(llava.model)
    convs = [[c.user(RED, "what color is it ?"), c.assistant("red")]]
    # a block whose attention and MLP output nothing is the identity: influence 0, removed first
    block = cb.blocks(model.model)[1]
    with torch.no_grad():
        block.o.weight.zero_()
        block.down.weight.zero_()
    influence = P.block_influence(model, convs)
    assert influence[1] == pytest.approx(0, abs=1e-4) and influence[0] > 0.01
    assert P.layers_to_remove(influence, 1) == [1]


def test_importance_scores_rank_a_planted_dead_channel_last(llava):
    model = copy.copy(llava)
    model.model = copy.deepcopy(llava.model)
    with torch.no_grad():
        for block in cb.blocks(model.model):
            block.gate.weight[5] = 0
            block.up.weight[5] = 0
            block.down.weight[:, 5] = 0
    P.accumulate_gradients(model, [[c.user(RED, "what color is it ?"), c.assistant("red")]])
    for importance in ("taylor", "l1", "l2"):
        for score in P.group_scores(model, importance):
            assert int(score["channels"].argmin()) == 5 and score["channels"][5] == 0


def test_plan_reaches_the_ratio_and_counts_match_the_built_model(llava):
    scores = P.group_scores(llava, "l2")
    plan, achieved = P.plan_for_ratio(llava, scores, 0.3)
    pruned = cb.keep_width(llava.model, plan["heads"], plan["kv_heads"], plan["channels"])
    before = cb.count_parameters(llava.model)["language_backbone"]
    assert achieved == pytest.approx(1 - cb.count_parameters(pruned)["language_backbone"] / before)
    assert abs(achieved - 0.3) < 0.1


def test_kd_losses_by_hand():
    student = torch.tensor([[[0.0, 0.0]]])
    teacher = torch.tensor([[[2.0, 0.0]]])
    p = torch.softmax(teacher / 2, -1)
    expected = 4 * float((p * (p.log() - torch.log(torch.tensor([0.5, 0.5])))).sum())
    assert float(kd_logits_loss(student, teacher, torch.ones(1, 1))) == pytest.approx(expected)
    assert float(kd_logits_loss(teacher, teacher, torch.ones(1, 1))) == pytest.approx(0, abs=1e-7)
    hidden = kd_hidden_loss(torch.zeros(1, 2, 4), torch.tensor([[[1.0] * 4, [3.0] * 4]]), torch.tensor([[1.0, 0.0]]))
    assert float(hidden) == pytest.approx(1.0)  # the masked position (error 9) does not count


def write_data(root, n=8):
    colours = {"red": (220, 20, 20), "blue": (20, 20, 220)}
    records = []
    for i in range(n):
        name = list(colours)[i % 2]
        Image.new("RGB", (32, 32), colours[name]).save(root / f"{i}.png")
        records.append(
            {
                "image": f"{i}.png",
                "conversations": [{"from": "human", "value": "<image> what color is it ?"}, {"from": "gpt", "value": name}],
            }
        )
    (root / "data.json").write_text(json.dumps(records))
    return root / "data.json"


@pytest.mark.parametrize(
    "method,extra", [("layer", []), ("width", ["--importance", "taylor"]), ("width", ["--importance", "random", "--heads", "query"])]
)
def test_prune_cli_writes_a_model_plain_transformers_loads(tmp_path, method, extra):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from vlmkit.cli.main import main
    from vlmkit.models.chat_hf import HFChatModel

    data = write_data(tmp_path)
    out = tmp_path / "pruned"
    main(
        [
            "prune",
            "--model",
            "random:llava-tiny",
            "--method",
            method,
            "--ratio",
            "0.4",
            "--calibration",
            str(data),
            "--n-calibration",
            "4",
            "--out",
            str(out),
            *extra,
        ]
    )
    record = json.loads((out / "result.json").read_text())
    assert (
        0.2 < record["compression"]["language_backbone"] < 0.7
        and record["compression"]["whole_model"] < record["compression"]["language_backbone"]
    )
    plain = HFChatModel(
        AutoModelForImageTextToText.from_pretrained(out), AutoProcessor.from_pretrained(out), name="p", fingerprint="p", multimodal=True
    )
    assert isinstance(plain.generate([c.ask("what color is it ?", RED)], max_new_tokens=3)[0], str)
    assert sum(p.numel() for p in plain.model.parameters()) == record["parameters_after"]["total"]


def test_prune_and_recover_errors_leave_nothing(tmp_path, capsys):
    from vlmkit.cli.main import main

    data = write_data(tmp_path)
    cases = [
        ["prune", "--method", "depth", "--ratio", "0.3", "--calibration", str(data)],
        ["prune", "--method", "layer", "--ratio", "1.5", "--calibration", str(data)],
        ["prune", "--method", "layer", "--ratio", "0.3", "--calibration", str(tmp_path / "missing.json")],
        ["recover", "--model", "random:llava-tiny", "--recipe", "kd-hidden", "--data", str(data)],
        ["recover", "--model", "random:llava-tiny", "--recipe", "magic", "--data", str(data)],
        ["recover", "--model", "random:llava-tiny", "--recipe", "sft", "--data", str(data), "--fraction", "0"],
        # a teacher the student cannot be compared with (other vocabulary / other width): refused before training
        ["recover", "--model", "random:llava-tiny", "--recipe", "kd-logits", "--teacher", "random:qwen2-vl-tiny", "--data", str(data)],
        ["recover", "--model", "random:llava-tiny", "--recipe", "kd-hidden", "--teacher", "embedded-chat", "--data", str(data)],
    ]
    for i, args in enumerate(cases):
        with pytest.raises(SystemExit) as info:
            main([*args, "--out", str(tmp_path / f"o{i}")])
        assert info.value.code == 2, args
        err = capsys.readouterr().err.strip()
        assert err.startswith("error:") and "\n" not in err, err
        assert not (tmp_path / f"o{i}").exists() or not any((tmp_path / f"o{i}").iterdir())


@pytest.mark.parametrize("recipe", ["projector", "sft+kd-hidden", "kd-logits"])
def test_recovery_recipes_train_and_write_a_checkpoint(tmp_path, recipe):
    from vlmkit.cli.main import main
    from vlmkit.models.chat_registry import load_chat_model

    data = write_data(tmp_path)
    main(
        [
            "prune",
            "--model",
            "random:llava-tiny",
            "--method",
            "layer",
            "--ratio",
            "0.5",
            "--calibration",
            str(data),
            "--n-calibration",
            "2",
            "--out",
            str(tmp_path / "p"),
        ]
    )
    teacher = tmp_path / "teacher"
    from vlmkit.models.export import export_model

    export_model("random:llava-tiny", teacher)
    main(
        [
            "recover",
            "--model",
            str(tmp_path / "p"),
            "--teacher",
            str(teacher),
            "--recipe",
            recipe,
            "--data",
            str(data),
            "--fraction",
            "1",
            "--max-steps",
            "3",
            "--batch-size",
            "4",
            "--out",
            str(tmp_path / "r"),
        ]
    )
    result = json.loads((tmp_path / "r" / "result.json").read_text())
    assert result["steps"] == 3 and len(result["losses"]) == 3 and all(l == l for l in result["losses"])  # noqa: E741
    assert load_chat_model(str(tmp_path / "r")).model.config.get_text_config().num_hidden_layers == 1


def test_width_plans_keep_head_counts_that_divide_the_hidden_size():
    """transformers refuses num_attention_heads that do not divide hidden_size (3 heads of 128)."""
    import types

    block = types.SimpleNamespace(n_heads=4, n_kv_heads=4, head_dim=32, q=torch.nn.Linear(128, 128), gate=torch.nn.Linear(128, 256))
    model = types.SimpleNamespace(model=None)
    scores = [{"heads": torch.arange(4.0), "kv_groups": torch.arange(4.0), "channels": torch.arange(256.0)}]
    original = cb.blocks
    cb.blocks = lambda network: [block]
    try:
        plan = P.width_plan(model, scores, 0.25)  # 4 -> 3 heads would not divide 128: 2 are kept
        assert len(plan["heads"][0]) == 2 and plan["heads"][0] == [2, 3]
        assert len(P.width_plan(model, scores, 0.25, heads="query")["heads"][0]) == 4  # one head per group: nothing to prune
    finally:
        cb.blocks = original
