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
    para.write_text(json.dumps({"a photo of a doctor.": ["a doctor.", "an image of a doctor."], "a photo of a nurse.": ["a nurse.", "an image of a nurse."]}))
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
    assert not (tmp_path / "o" / "result.json").exists()
