"""SITH end to end: planted concepts are recovered from the weights, and the CLI runs."""

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from vlmkit.interpret.planted import planted_recovery
from vlmkit.interpret.sith import SithConfig, coherence, parse_layers
from vlmkit.interpret.vocab import load_vocabulary, parse_vocabulary


@pytest.mark.parametrize("method", ["comp", "omp"])
def test_planted_concepts_are_recovered(method):
    measured = planted_recovery(method)
    assert measured["precision"] >= 0.9 and measured["fidelity"] > 0.9, measured


def test_topk_baseline_is_worse_than_comp_on_overlapping_concepts():
    """Top-k ignores that concepts explain the same part of a vector; COMP's refit does not."""
    gen = torch.Generator().manual_seed(1)
    base = F.normalize(torch.randn(40, 64, generator=gen), dim=-1)
    near = F.normalize(base[:10] + 0.35 * torch.randn(10, 64, generator=gen), dim=-1)  # near-duplicates of 0..9
    atoms = torch.cat([base, near])
    targets = F.normalize(atoms[[0, 11, 12]].sum(0, keepdim=True) + atoms[[20, 21]].sum(0, keepdim=True), dim=-1)
    from vlmkit.interpret.comp import sparse_code

    comp_idx, comp_coef = sparse_code(targets, atoms, k=5, method="omp")
    top_idx, top_coef = sparse_code(targets, atoms, k=5, method="topk")
    def residual(idx, coef):
        return (targets - (coef.unsqueeze(-1) * atoms[idx]).sum(1)).norm()
    assert residual(comp_idx, comp_coef) <= residual(top_idx, top_coef) + 1e-6


def test_coherence_is_mean_pairwise_cosine():
    vectors = F.normalize(torch.tensor([[1.0, 0, 0], [0.6, 0.8, 0], [0, 0, 1.0]]), dim=-1)
    got = coherence(torch.tensor([[0, 1, 2], [0, 1, 1]]), vectors)
    assert torch.allclose(got, torch.tensor([(0.6 + 0 + 0) / 3, (0.6 + 0.6 + 1.0) / 3]))


def test_coherence_counts_only_active_concepts_weighted_by_coefficient():
    vectors = F.normalize(torch.tensor([[1.0, 0, 0], [0.6, 0.8, 0], [0, 0, 1.0]]), dim=-1)
    indices = torch.tensor([[0, 1, 2], [0, 1, 2], [0, 2, 1], [0, 1, 2]])
    scores = torch.tensor([[0.5, 0.5, 0.0], [2.0, 1.0, 1.0], [0.7, 0.0, 0.0], [1.0, 1.0, 1.0]])
    got = coherence(indices, vectors, scores)
    # row 0: concept 2 has coefficient 0 and does not count: cos(0, 1) = 0.6 (unweighted over all three: 0.2)
    assert got[0] == pytest.approx(0.6)
    # row 1: pairs weighted by c_i c_j: (2*1*0.6 + 2*1*0 + 1*1*0) / (2*1 + 2*1 + 1*1)
    assert got[1] == pytest.approx(1.2 / 5)
    assert torch.isnan(got[2])  # one active concept: no pairs
    assert got[3] == pytest.approx(float(coherence(indices[3:], vectors)[0]))  # equal weights: the plain mean
    assert coherence(indices, vectors, scores * 7.5)[:2].allclose(got[:2])  # scale-free


def test_artefact_keys_encode_every_option_that_changes_the_result():
    base = SithConfig()
    keys = {SithConfig(lam=0.2).artefact_key(3, "world", "world"), SithConfig(lam=0.4).artefact_key(3, "world", "world"),
            base.artefact_key(3, "world", "world"), base.artefact_key(3, "world", "synthetic"), base.artefact_key(3, "world", "my/data"),
            SithConfig(center=False).artefact_key(3, "world", "world"), SithConfig(affine_ln_post=False).artefact_key(3, "world", "world"),
            SithConfig(k=10).artefact_key(3, "world", "world"), SithConfig(side="left").artefact_key(3, "world", "world"),
            SithConfig(fold_ln=False).artefact_key(3, "world", "world"), SithConfig(method="omp").artefact_key(3, "world", "world")}
    assert len(keys) == 11
    assert base.artefact_key(3, "world", "world").startswith("layer3_right_foldln1_world_comp_k5")  # the official fields first


def test_parse_layers():
    assert parse_layers("last4", 24) == [20, 21, 22, 23]
    assert parse_layers("all", 3) == [0, 1, 2]
    assert parse_layers("0,2-3,-1", 6) == [0, 2, 3, 5]
    for bad in ("last30", "7", "x"):
        with pytest.raises(ValueError):
            parse_layers(bad, 6)
    with pytest.raises(ValueError, match="empty; write it from low to high, e.g. 1-3"):
        parse_layers("3-1", 6)  # used to give no layer: a crash in sith, an unedited copy from edit


def test_shipped_vocabularies():
    default = load_vocabulary("default")
    assert len(default) >= 10_000 and len(set(default)) == len(default)
    assert not any(ch.isdigit() for word in default for ch in word)
    assert {"the", "and", "of", "with"}.isdisjoint(default)
    world = load_vocabulary("world")
    from vlmkit.data.world import ATTRIBUTES

    assert {value for values in ATTRIBUTES.values() for value in values} <= set(world)
    assert parse_vocabulary("# c\n a \n\nb\na\n") == ["a", "b"]


def test_sith_cli_on_a_random_clip(tmp_path):
    from vlmkit.cli.main import main

    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(f"word{i}" for i in range(50)))
    out = tmp_path / "sith"
    main(["sith", "--model", "random:clip-tiny", "--layers", "all", "--vocab", str(vocab), "--k", "3", "--out", str(out), "--no-coherence"])
    result = json.loads((out / "result.json").read_text())
    assert result["summary"]["vectors"] == 2 * 4 * 16
    vector = result["layers"][1]["heads"][3]["vectors"][0]
    assert len(vector["concepts"]) == 3 and all(c >= 0 for _, c in vector["concepts"])
    arrays = np.load(out / "arrays.npz")
    key = result["layers"][0]["key"]
    assert key == "layer0_right_foldln1_vocab_comp_k3_lam0.3_center1_lnaffine_meansynthetic"
    assert arrays[f"{key}.indices"].shape == (4 * 16, 3)
    assert "layer 1 head 3" in (out / "report.html").read_text()


@pytest.mark.parametrize(("args", "message"), [
    (["--layers", "9"], "layer 9 does not exist"),
    (["--vocab", "nope.txt"], "neither a shipped one"),
    (["--method", "lasso"], "method"),
])
def test_sith_cli_rejects_bad_input(tmp_path, capsys, args, message):
    from vlmkit.cli.main import main

    with pytest.raises(SystemExit) as exit_info:
        main(["sith", "--model", "random:clip-tiny", "--out", str(tmp_path / "o"), *args])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "o").exists()  # nothing at all under --out


def test_sith_refuses_attention_pooled_towers(tmp_path, capsys):
    from vlmkit.cli.main import main

    with pytest.raises(SystemExit) as exit_info:
        main(["sith", "--model", "random:siglip-tiny", "--vocab", "world", "--out", str(tmp_path / "o")])
    assert exit_info.value.code == 2 and "attention pooling" in capsys.readouterr().err


def test_image_mean_from_a_dataset_is_the_mean_unit_embedding(clip_tiny, colour_folder):
    from vlmkit.data.datasets import load_dataset
    from vlmkit.embed import embed_images
    from vlmkit.interpret.image_mean import resolve_image_mean
    from vlmkit.runs.cache import EmbeddingCache

    cache = EmbeddingCache()
    mean, info = resolve_image_mean(clip_tiny, str(colour_folder), cache=cache)
    vectors = embed_images(clip_tiny, load_dataset(str(colour_folder)).paths).vectors
    assert info["images"] == 9 and torch.allclose(mean, torch.from_numpy(vectors).mean(0), atol=1e-6)
    synthetic, info = resolve_image_mean(clip_tiny, "auto", cache=cache)
    assert info["source"] == "synthetic" and torch.equal(resolve_image_mean(clip_tiny, "synthetic", cache=cache)[0], synthetic)
