"""Conversation files, mixtures, training labels and fine-tuning (LoRA, full, projector)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from PIL import Image

from vlmkit.errors import UserError
from vlmkit.models import chat as c

COLOURS = {"red": (230, 20, 20), "blue": (20, 20, 230), "green": (20, 200, 20)}


def write_colour_data(root: Path, n: int = 12, name: str = "data.json") -> Path:
    records = []
    for i in range(n):
        colour = list(COLOURS)[i % 3]
        Image.new("RGB", (32, 32), COLOURS[colour]).save(root / f"img{i}.png")
        records.append(
            {
                "id": str(i),
                "image": f"img{i}.png",
                "conversations": [{"from": "human", "value": "<image>\nwhat color is it ?"}, {"from": "gpt", "value": colour}],
            }
        )
    (root / name).write_text(json.dumps(records))
    return root / name


def test_llava_records_become_conversations(tmp_path):
    from vlmkit.data.conversations import load_conversations

    Image.new("RGB", (8, 8)).save(tmp_path / "a.png")
    Image.new("RGB", (8, 8)).save(tmp_path / "b.png")
    records = [
        {"image": "a.png", "conversations": [{"from": "human", "value": "<image>\nWhat?"}, {"from": "gpt", "value": "A star."}]},
        {
            "image": ["a.png", "b.png"],
            "conversations": [
                {"from": "human", "value": "Compare <image> and <image> now"},
                {"from": "gpt", "value": "x"},
                {"from": "human", "value": "more?"},
                {"from": "gpt", "value": "y"},
            ],
        },
        {"image": "a.png", "conversations": [{"from": "human", "value": "no placeholder"}, {"from": "gpt", "value": "z"}]},
        {"conversations": [{"from": "system", "value": "be brief"}, {"from": "human", "value": "hi"}, {"from": "gpt", "value": "hello"}]},
    ]
    (tmp_path / "d.json").write_text(json.dumps(records))
    first, second, third, fourth = load_conversations(tmp_path / "d.json")
    assert first[0].parts == (tmp_path / "a.png", "What?") and first[1] == c.assistant("A star.")
    assert second[0].parts == ("Compare", tmp_path / "a.png", "and", tmp_path / "b.png", "now") and len(second) == 4
    assert third[0].parts == (tmp_path / "a.png", "no placeholder")
    assert [m.role for m in fourth] == ["system", "user", "assistant"]


@pytest.mark.parametrize(
    "content,match",
    [
        ("{not json", "not valid JSON"),
        ('{"a": 1}', "not a list"),
        ('[{"conversations": []}]', "conversations"),
        ('[{"image": "a.png", "conversations": [{"from": "human", "value": "<image> <image>"}]}]', "more <image>"),
        ('[{"conversations": [{"from": "robot", "value": "x"}]}]', "from"),
    ],
)
def test_bad_conversation_files_are_one_line_errors(tmp_path, content, match):
    from vlmkit.data.conversations import load_conversations

    (tmp_path / "d.json").write_text(content)
    with pytest.raises(UserError, match=match):
        load_conversations(tmp_path / "d.json")


def test_mixture_draws_counts_without_replacement_and_is_seeded(tmp_path):
    from vlmkit.data.conversations import load_mixture

    write_colour_data(tmp_path, 12, "a.json")
    write_colour_data(tmp_path, 9, "b.json")
    (tmp_path / "mix.json").write_text(json.dumps({"a.json": 5, "b.json": 2}))
    drawn, counts = load_mixture(tmp_path / "mix.json", seed=3)
    assert counts == {"a.json": 5, "b.json": 2} and len(drawn) == 7
    assert load_mixture(tmp_path / "mix.json", seed=3)[0] == drawn
    (tmp_path / "big.json").write_text(json.dumps({"a.json": 50}))
    with pytest.raises(UserError, match="asks for 50"):
        load_mixture(tmp_path / "big.json")


def test_training_labels_cover_exactly_the_assistant_tokens():
    from vlmkit.models.chat_registry import load_chat_model

    model = load_chat_model("random:llava-tiny")
    red = Image.new("RGB", (32, 32), (255, 0, 0))
    batch = model.training_batch(
        [
            [c.user(red, "what color ?"), c.assistant("red")],
            [c.user("what shape ?"), c.assistant("a star"), c.user("and color ?"), c.assistant("blue")],
        ]
    )
    tokens = [model.tokenizer.convert_ids_to_tokens(batch["input_ids"][r][batch["labels"][r] != -100].tolist()) for r in range(2)]
    assert tokens == [["red", "<|end|>"], ["a", "star", "<|end|>", "blue", "<|end|>"]]
    with pytest.raises(UserError, match="assistant turn"):
        model.training_batch([[c.user("x")]])


@pytest.mark.parametrize("mode", ["full", "projector", "lora"])
def test_finetuning_lowers_the_loss_and_touches_only_its_roles(tmp_path, mode):
    from vlmkit.compress.sft import SFTConfig, finetune
    from vlmkit.data.conversations import load_conversations
    from vlmkit.models import chat_weights as cw
    from vlmkit.models.chat_registry import load_chat_model

    data = load_conversations(write_colour_data(tmp_path))
    model = load_chat_model("random:llava-tiny")
    roles = cw.module_roles(model.model)
    before = {k: v.clone() for k, v in model.model.state_dict().items()}
    summary = finetune(model, data, SFTConfig(mode=mode, lr=3e-3, max_steps=12, batch_size=6))
    assert summary["losses"][-1] < summary["losses"][0]
    after = model.model.state_dict()
    assert set(after) == set(before)  # LoRA is merged back into plain weights
    changed = {roles[k] for k in before if not torch.equal(before[k], after[k])}
    assert "vision" not in changed
    expected = {
        "full": {"projector", "attention", "mlp", "norm", "embeddings"},
        "projector": {"projector"},
        "lora": {"projector", "attention", "mlp"},
    }[mode]
    assert changed <= expected | {"head"} and "projector" in changed


def test_sft_cli_resumes_and_writes_a_loadable_checkpoint(tmp_path):
    from vlmkit.cli.main import main
    from vlmkit.models.chat_registry import load_chat_model

    data = write_colour_data(tmp_path)
    out = tmp_path / "run"
    args = [
        "sft",
        "--model",
        "random:llava-tiny",
        "--data",
        str(data),
        "--out",
        str(out),
        "--mode",
        "full",
        "--lr",
        "3e-3",
        "--batch-size",
        "6",
    ]
    main([*args, "--max-steps", "6"])
    result = json.loads((out / "result.json").read_text())
    assert result["steps"] == 6 and not (out / "work").exists()
    model = load_chat_model(str(out))
    assert isinstance(model.generate([c.ask("what color is it ?", Image.new("RGB", (32, 32), (230, 20, 20)))], max_new_tokens=2)[0], str)
    with pytest.raises(SystemExit) as info:
        main([*args, "--max-steps", "6"])
    assert info.value.code == 2  # a finished run is not overwritten
    # resume: a run interrupted after step 5 (state saved at step 4) continues from 4 to 6,
    # and ends where an uninterrupted run ends
    from vlmkit.compress.sft import SFTConfig, finetune
    from vlmkit.data.conversations import load_conversations

    convs = load_conversations(data)
    config = SFTConfig(mode="full", lr=3e-3, max_steps=6, batch_size=6, save_every=4)
    full = finetune(load_chat_model("random:llava-tiny"), convs, config, work=tmp_path / "w0")
    calls = []

    def interrupt(outputs, batch):
        calls.append(1)
        if len(calls) == 6:
            raise KeyboardInterrupt
        return outputs.loss * 0

    with pytest.raises(KeyboardInterrupt):
        finetune(load_chat_model("random:llava-tiny"), convs, config, work=tmp_path / "w1", extra_loss=interrupt)
    resumed = finetune(load_chat_model("random:llava-tiny"), convs, config, work=tmp_path / "w1")
    assert resumed["resumed_at"] == 4 and len(resumed["losses"]) == 2
    assert resumed["losses"] == pytest.approx(full["losses"][4:], rel=1e-4)


def test_a_bad_image_met_midway_keeps_the_saved_progress_and_the_rerun_resumes(tmp_path, monkeypatch, capsys):
    """A fresh --out is removed on a user error, except the progress a long run has saved: the
    error says where it is, and the same command resumes from it once the image is fixed."""
    from vlmkit.cli.main import main
    from vlmkit.models import chat_hf

    data = write_colour_data(tmp_path, n=4)
    out = tmp_path / "run"
    args = ["sft", "--model", "random:llava-tiny", "--data", str(data), "--out", str(out), "--mode", "projector",
            "--batch-size", "1", "--max-steps", "4", "--save-every", "1"]
    real, broken = chat_hf.open_image, []

    def open_breaking_one_after_a_save(image):
        if not broken and (out / "work").is_dir() and any((out / "work").iterdir()):
            broken.append(Path(image))
            broken[0].write_bytes(b"not a png")  # a file goes bad once the run has saved progress
        return real(image)

    monkeypatch.setattr(chat_hf, "open_image", open_breaking_one_after_a_save)
    with pytest.raises(SystemExit) as info:
        main(args)
    assert info.value.code == 2
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert line.startswith("error: ") and broken[0].name in line and f"kept in {out / 'work'}" in line and "resume" in line
    assert [p.name for p in out.iterdir()] == ["work"] and any((out / "work").iterdir())
    Image.new("RGB", (32, 32), COLOURS["red"]).save(broken[0])  # fixed
    monkeypatch.setattr(chat_hf, "open_image", real)
    main(args)
    result = json.loads((out / "result.json").read_text())
    assert (result["resumed_at"], result["steps"]) == (1, 4) and not (out / "work").exists()


def test_a_bad_image_before_any_saved_progress_leaves_no_out(tmp_path, monkeypatch):
    from vlmkit.cli.main import main
    from vlmkit.models import chat_hf

    data = write_colour_data(tmp_path, n=2)
    out = tmp_path / "run"
    real = chat_hf.open_image

    def open_broken(image):
        Path(image).write_bytes(b"")
        return real(image)

    monkeypatch.setattr(chat_hf, "open_image", open_broken)
    with pytest.raises(SystemExit) as info:
        main(["sft", "--model", "random:llava-tiny", "--data", str(data), "--out", str(out), "--mode", "projector",
              "--batch-size", "1", "--max-steps", "2", "--save-every", "1"])
    assert info.value.code == 2 and not out.exists()
