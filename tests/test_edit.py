"""SITH edits: exact round trips, the bias path kept, saved edits reload."""

import json

import pytest
import torch

from vlmkit.interpret.edit import relevance, rescale_layer
from vlmkit.interpret.sith import SithConfig, layer_svd
from vlmkit.models import load_model


def _pixels(model, n=3, seed=0):
    gen = torch.Generator().manual_seed(seed)
    size = model.preprocess.output_size
    return torch.randn(n, 3, size, size, generator=gen)


@pytest.mark.parametrize("cfg", [SithConfig(), SithConfig(fold_ln=False, center=False)])
def test_rewriting_every_head_with_factor_one_leaves_the_model_unchanged(clip_tiny, cfg):
    pixels = _pixels(clip_tiny)
    before = clip_tiny.encode_images(pixels, normalize=False)
    weights = clip_tiny.vision_weights()
    for layer in range(weights.n_layers):
        rescale_layer(weights, layer, torch.ones(weights.n_heads, weights.d_head), cfg, heads=list(range(weights.n_heads)))
    assert not torch.equal(weights.layers[0].W_V, clip_tiny.vision_weights().layers[0].W_V)  # really rewritten
    clip_tiny.set_vision_weights(weights)
    after = clip_tiny.encode_images(pixels, normalize=False)
    assert torch.allclose(after, before, atol=1e-5 * before.abs().max())


def test_a_zeroed_direction_is_gone_and_the_others_are_kept(clip_tiny):
    cfg = SithConfig()
    weights = clip_tiny.vision_weights()
    U, S, Vt = layer_svd(weights, 1, cfg)
    alphas = torch.ones(weights.n_heads, weights.d_head)
    alphas[2, 0] = 0.0
    alphas[3, 1] = -1.0
    rescale_layer(weights, 1, alphas, cfg)
    U2, S2, Vt2 = layer_svd(weights, 1, cfg)
    rebuilt = U2 @ torch.diag_embed(S2) @ Vt2
    expected = U @ torch.diag_embed(S * alphas.double()) @ Vt
    assert torch.allclose(rebuilt, expected, atol=1e-5 * expected.abs().max())


def test_edit_keeps_the_constant_write_of_each_head(clip_tiny):
    """Zeroing a whole head removes its input-dependent write but not its bias path."""
    cfg = SithConfig()
    weights = clip_tiny.vision_weights()
    attn = weights.layers[0]
    x = torch.randn(5, attn.d_model)
    ln = attn.ln1(x)
    constant = sum((attn.ln1.bias @ attn.W_V[h] + attn.b_V[h]) @ attn.W_O[h] for h in range(attn.n_heads)) + attn.b_O
    alphas = torch.zeros(attn.n_heads, attn.d_head)
    rescale_layer(weights, 0, alphas, cfg)
    edited = weights.layers[0]
    writes = sum((ln @ edited.W_V[h] + edited.b_V[h]) @ edited.W_O[h] for h in range(attn.n_heads)) + edited.b_O
    assert torch.allclose(writes, constant.expand_as(writes), atol=1e-5)


def test_relevance_weighs_concepts_by_coefficient():
    from vlmkit.interpret.concepts import ConceptDictionary
    from vlmkit.interpret.sith import LayerExplanation

    atoms = torch.eye(3)
    dictionary = ConceptDictionary(["a", "b", "c"], atoms, torch.zeros(3))
    e = LayerExplanation(0, torch.ones(1, 2), torch.zeros(2, 3), torch.tensor([[0, 1], [2, 1]]), torch.tensor([[3.0, 1.0], [0.0, 0.0]]),
                         torch.zeros(2))
    got = relevance(e, dictionary, atoms[[0]])  # target = concept a
    assert torch.allclose(got, torch.tensor([0.75, 0.0]))


def test_edit_cli_writes_a_model_that_reloads(tmp_path):
    from vlmkit.cli.main import main

    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(f"word{i}" for i in range(40)))
    out = tmp_path / "edited"
    main(["edit", "--model", "random:clip-tiny", "--vocab", str(vocab), "--layers", "all", "--suppress", "word1,word2",
          "--threshold", "0.2", "--out", str(out)])
    result = json.loads((out / "result.json").read_text())
    assert result["vectors_edited"] > 0
    assert all(e["new_sigma"] == 0 for e in result["edited"])
    base, edited = load_model("random:clip-tiny"), load_model(str(out))
    pixels = _pixels(base)
    assert not torch.allclose(base.encode_images(pixels), edited.encode_images(pixels), atol=1e-4)
    first = result["edited"][0]
    _, S, _ = layer_svd(edited.vision_weights(), first["layer"], SithConfig())
    assert S[first["head"]].min() < 1e-5  # the zeroed singular value is gone from the saved model


def test_edit_cli_with_factor_one_saves_an_identical_model(tmp_path):
    from vlmkit.cli.main import main

    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(f"word{i}" for i in range(40)))
    out = tmp_path / "same"
    main(["edit", "--model", "random:clip-tiny", "--vocab", str(vocab), "--layers", "all", "--amplify", "word1",
          "--threshold", "0.2", "--factor", "1", "--out", str(out)])
    base, reloaded = load_model("random:clip-tiny"), load_model(str(out))
    pixels = _pixels(base)
    assert torch.allclose(base.encode_images(pixels), reloaded.encode_images(pixels), atol=1e-6)


@pytest.mark.parametrize(("args", "message"), [
    ([], "exactly one of --suppress or --amplify"),
    (["--suppress", "a", "--amplify", "b"], "exactly one of --suppress or --amplify"),
    (["--suppress", " , "], "needs at least one concept"),
])
def test_edit_rejects_bad_directions(tmp_path, capsys, args, message):
    from vlmkit.cli.main import main

    with pytest.raises(SystemExit) as exit_info:
        main(["edit", "--model", "random:clip-tiny", "--out", str(tmp_path / "o"), *args])
    assert exit_info.value.code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
