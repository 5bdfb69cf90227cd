"""``vlmkit debias encode`` end to end on a random CLIP, and its input checks."""

import json

import numpy as np
import pytest
import torch

from vlmkit.cli.main import main
from vlmkit.debias.sae import MatryoshkaSAE, SAEConfig


@pytest.fixture
def queries(tmp_path):
    path = tmp_path / "q.txt"
    path.write_text("a photo of a doctor.\na photo of a nurse.\n")
    return path


def test_encode_with_every_method(tmp_path, queries, clip_tiny):
    sae_dir = MatryoshkaSAE(SAEConfig(clip_tiny.embed_dim, 48, (4, 8))).save(tmp_path / "sae")
    para = tmp_path / "para.json"
    para.write_text(json.dumps({"a photo of a doctor.": ["a doctor.", "an image of a doctor."],
                                "a photo of a nurse.": ["a nurse.", "an image of a nurse."]}))
    for method in ("none", "orth_proj", "orth_cali", "sem_i", "sem_b", "sem_bi"):
        out = tmp_path / method
        main(["debias", "encode", "--model", "random:clip-tiny", "--texts", str(queries), "--method", method, "--bias", "gender",
              "--sae", str(sae_dir), "--paraphrases", str(para), "--out", str(out)])
        vectors = np.load(out / "embeddings.npy")
        assert vectors.shape == (2, clip_tiny.embed_dim) and np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
        result = json.loads((out / "result.json").read_text())
        if method == "none":
            assert result["cosine_to_original"]["min"] == pytest.approx(1.0, abs=1e-5)
    projected = torch.from_numpy(np.load(tmp_path / "orth_proj" / "embeddings.npy"))
    gender = clip_tiny.encode_texts(["a photo of a woman.", "a photo of a man."])
    assert (projected @ gender.T).abs().max() < 1e-4  # orthogonal to the gender prompts' span


@pytest.mark.parametrize(("args", "message"), [
    (["--method", "orth_proj"], "needs --bias"),
    (["--method", "sem_i", "--bias", "gender"], "needs --paraphrases"),
    (["--method", "none", "--bias", "colour"], "no bias prompts for colour"),
    (["--method", "magic"], "method must be one of"),
])
def test_encode_rejects_bad_input(tmp_path, queries, capsys, args, message):
    with pytest.raises(SystemExit) as exit_info:
        main(["debias", "encode", "--model", "random:clip-tiny", "--texts", str(queries), *args, "--out", str(tmp_path / "o")])
    assert exit_info.value.code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "o").exists()  # nothing at all under --out


@pytest.fixture
def world_split(tmp_path):
    from vlmkit.data.world_sample import generate

    return generate(tmp_path / "world", 48, seed=3, group_by=("shape", "background"))


@pytest.mark.parametrize("task", ["zeroshot", "retrieval"])
def test_debias_eval_table(tmp_path, world_split, clip_tiny, task):
    sae_dir = MatryoshkaSAE(SAEConfig(clip_tiny.embed_dim, 48, (4, 8))).save(tmp_path / "sae")
    out = tmp_path / task
    main(
        [
            "debias",
            "eval",
            "--model",
            "random:clip-tiny",
            "--dataset",
            str(world_split),
            "--attribute",
            "shape",
            "--sensitive",
            "background",
            "--task",
            task,
            "--methods",
            "none,orth_proj,sem_b,sem_bi",
            "--bias",
            "world-background",
            "--sae",
            str(sae_dir),
            "--splits",
            "3",
            "--k",
            "10",
            "--out",
            str(out),
        ]
    )
    result = json.loads((out / "result.json").read_text())
    assert list(result["table"]) == ["none", "orth_proj", "sem_b", "sem_bi"]
    metrics = {"zeroshot": {"accuracy", "worst_group", "mean_group"}, "retrieval": {"kl@k", "max_skew@k", "ndkl", "precision@k"}}[task]
    for row in result["table"].values():
        assert set(row) == metrics and all(cell["ci95"] >= 0 for cell in row.values())
    if task == "zeroshot":
        none = result["table"]["none"]
        assert none["worst_group"]["mean"] <= none["mean_group"]["mean"] <= 1
    assert "<svg" in (out / "report.html").read_text()


def test_debias_eval_needs_an_sae_for_sem_off_the_embedded_models(tmp_path, world_split, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(
            [
                "debias",
                "eval",
                "--model",
                "random:clip-tiny",
                "--dataset",
                str(world_split),
                "--attribute",
                "shape",
                "--sensitive",
                "background",
                "--methods",
                "none,sem_b",
                "--bias",
                "world-background",
                "--out",
                str(tmp_path / "o"),
            ]
        )
    assert exit_info.value.code == 2 and "need --sae" in capsys.readouterr().err


def test_encode_finds_the_sae_shipped_beside_embedded_as_eval_does(tmp_path, queries):
    """One lookup for both commands: sem_i on `embedded` needs no --sae (regression: encode asked for one)."""
    from vlmkit.debias.encode_run import DebiasEncodeOptions
    from vlmkit.debias.eval_run import DebiasEvalOptions
    from vlmkit.debias.sae import find_sae
    from vlmkit.runs.options import build_options

    para = tmp_path / "p.json"
    para.write_text("{}")
    shipped = find_sae(None, "embedded")
    assert shipped is not None and (shipped / "sae.json").is_file()
    build_options(DebiasEncodeOptions, model="embedded", texts=queries, method="sem_i", paraphrases=para, out=tmp_path / "o")
    build_options(DebiasEvalOptions, model="embedded", dataset="d", attribute="a", sensitive="s", methods="sem_i", out=tmp_path / "o")
    from vlmkit.errors import UserError

    with pytest.raises(UserError, match="needs --sae"):
        build_options(DebiasEncodeOptions, model="random:clip-tiny", texts=queries, method="sem_i", paraphrases=para, out=tmp_path / "o")
