"""``vlmkit world generate`` and ``eval-model`` end to end, and their bad inputs."""

import json

import pytest

from tests.test_cli import run_cli


def test_generate_writes_images_manifest_and_prompts(tmp_path):
    out = tmp_path / "w"
    assert run_cli("world", "generate", "--n", 12, "--seed", 2, "--out", out, "--spurious", "target=shape,nuisance=background,p=0.9") == 0
    rows = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert len(rows) == 12 and len(list((out / "images").glob("*.png"))) == 12
    assert all(r["group"] == f"{r['attributes']['shape']}|{r['attributes']['background']}" for r in rows)
    assert "color" in json.loads((out / "prompts.json").read_text())


@pytest.mark.parametrize(
    "args, message",
    [
        (["--spurious", "target=shape,nuisance=shape"], "bad --spurious"),
        (["--spurious", "target=smell"], "bad --spurious"),
        (["--n", "0"], "--n >= 1"),
    ],
)
def test_generate_bad_input(tmp_path, capsys, args, message):
    assert run_cli("world", "generate", "--out", tmp_path / "w", *args) == 2
    err = capsys.readouterr().err
    assert message in err and "\n" not in err.strip()
    assert not (tmp_path / "w" / "manifest.jsonl").exists()


def test_train_model_bad_input(tmp_path, capsys):
    assert run_cli("world", "train-model", "--out", tmp_path / "t", "--steps", -3) == 2
    assert "--steps >= 1" in capsys.readouterr().err
    assert not (tmp_path / "t").exists()


def test_eval_model_on_a_random_architecture(tmp_path):
    out = tmp_path / "eval"
    assert run_cli("world", "eval-model", "--model", "random:clip-tiny", "--n", 20, "--out", out) == 0
    result = json.loads((out / "result.json").read_text())
    assert set(result["accuracy"]) == {"color", "shape", "size", "position", "texture", "background"}
    assert 0 <= result["retrieval"]["recall@1"] <= result["retrieval"]["recall@5"] <= 1
    assert result["shape_groups"]["worst_group_accuracy"] <= result["shape_groups"]["mean_group_accuracy"]


def test_zeroshot_uses_the_datasets_own_prompts(tmp_path):
    data = tmp_path / "w"
    run_cli("world", "generate", "--n", 10, "--out", data)
    out = tmp_path / "zs"
    assert run_cli("zeroshot", "--model", "random:clip-tiny", "--dataset", data / "manifest.jsonl", "--attribute", "color", "--out",
                   out) == 0
    result = json.loads((out / "result.json").read_text())
    assert result["templates"] == json.loads((data / "prompts.json").read_text())["color"]
