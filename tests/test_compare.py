"""Fine-tune comparison: matching recovers planted permutations and re-weightings."""

import json

import torch

from vlmkit.interpret.compare import hungarian, jaccard, match_layer
from vlmkit.interpret.edit import rescale_layer
from vlmkit.interpret.sith import SithConfig, layer_svd


def test_hungarian_recovers_a_signed_permutation():
    gen = torch.Generator().manual_seed(0)
    base = torch.linalg.qr(torch.randn(32, 8, generator=gen))[0].T
    perm = torch.randperm(8, generator=gen)
    signs = torch.tensor([1.0, -1, 1, 1, -1, -1, 1, -1])
    match, cos = hungarian(base, signs[:, None] * base[perm])
    assert torch.equal(perm[match], torch.arange(8))
    assert torch.allclose(cos, torch.ones(8, dtype=cos.dtype))


def test_a_planted_reweighting_is_read_as_a_stable_basis(clip_tiny):
    cfg = SithConfig()
    weights = clip_tiny.vision_weights()
    S, Vt = layer_svd(weights, 1, cfg)[1:]
    factors = 1.0 + 0.1 * torch.linspace(-1, 1, weights.d_head)  # distinct, keep the order of sigma
    tuned = weights.clone()
    rescale_layer(tuned, 1, factors.expand(weights.n_heads, -1).clone(), cfg)
    S2, Vt2 = layer_svd(tuned, 1, cfg)[1:]
    m = match_layer(1, S.float(), Vt, S2.float(), Vt2)
    assert m.cos.min() > 0.999
    assert torch.allclose(m.rel_dsigma, (factors - 1).expand_as(m.rel_dsigma), atol=1e-4)
    assert m.random_cos.mean() < 0.6


def test_jaccard():
    assert torch.allclose(jaccard(torch.tensor([[1, 2, 3], [1, 2, 3]]), torch.tensor([[3, 2, 1], [1, 4, 5]])), torch.tensor([1.0, 0.2]))


def test_compare_cli_model_with_itself(tmp_path):
    from vlmkit.cli.main import main

    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(f"word{i}" for i in range(30)))
    out = tmp_path / "cmp"
    main(["sith", "compare", "--base", "random:clip-tiny", "--tuned", "random:clip-tiny", "--vocab", str(vocab), "--layers", "all", "--k",
          "3", "--out", str(out)])
    result = json.loads((out / "result.json").read_text())
    assert result["summary"]["mean_cos"] > 0.999 and result["summary"]["jaccard"] == 1.0
    assert abs(result["summary"]["mean_abs_rel_dsigma"]) < 1e-4
    other = tmp_path / "cmp2"
    main(["sith", "compare", "--base", "random:clip-tiny", "--tuned", "random:clip-tiny@1", "--vocab", str(vocab), "--layers", "all", "--k",
          "3", "--out", str(other)])
    unrelated = json.loads((other / "result.json").read_text())["summary"]
    assert unrelated["mean_cos"] < 0.6
