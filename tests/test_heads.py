"""SITH's weight-space pieces on a real CLIP architecture."""

import torch

from vlmkit.interpret.heads import head_svd, to_joint_space, value_output


def test_svd_reconstructs_value_output_at_full_rank(clip_tiny):
    layer = clip_tiny.vision_weights().layers[-1]
    vo = value_output(layer)
    _, full, _ = head_svd(vo)
    assert full.shape == (layer.n_heads, layer.d_model)
    assert full[:, layer.d_head :].max() < 1e-8 * full.max()  # rank <= d_head
    U, S, Vt = head_svd(vo, rank=layer.d_head)
    rebuilt = U @ torch.diag_embed(S) @ Vt
    assert torch.allclose(rebuilt, vo, atol=1e-10 * vo.abs().max() + 1e-9)


def test_sign_convention_is_deterministic_and_flip_invariant(clip_tiny):
    vo = value_output(clip_tiny.vision_weights().layers[0])
    U, S, Vt = head_svd(vo, rank=8)
    peak = U.abs().argmax(1, keepdim=True)
    assert (torch.gather(U, 1, peak) > 0).all()
    U2, _, Vt2 = head_svd(-vo, rank=8)  # a flipped matrix flips the write directions only
    assert torch.allclose(U2, U) and torch.allclose(Vt2, -Vt)


def test_centred_writes_are_orthogonal_to_ones_and_folding_matches_layernorm(clip_tiny):
    layer = clip_tiny.vision_weights().layers[0]
    vo = value_output(layer, fold_ln=True, center=True)
    assert vo.sum(-1).abs().max() < 1e-9  # every write row sums to zero
    x = torch.randn(5, layer.d_model, dtype=torch.float64)
    normed = (x - x.mean(-1, keepdim=True)) / x.std(-1, unbiased=False, keepdim=True)
    raw = value_output(layer, fold_ln=False, center=False)
    with_gain = (normed * layer.ln1.weight.double()) @ raw
    folded = normed @ value_output(layer, fold_ln=True, center=False)
    assert torch.allclose(with_gain, folded)


def test_joint_space_vectors_are_unit_and_centred(clip_tiny):
    weights = clip_tiny.vision_weights()
    directions = torch.randn(6, weights.d_model)
    mean = torch.nn.functional.normalize(torch.randn(clip_tiny.embed_dim), dim=0) * 0.3
    p = to_joint_space(directions, weights, image_mean=mean)
    assert torch.allclose(p.norm(dim=-1), torch.ones(6), atol=1e-5)
    q = to_joint_space(directions, weights, affine=False)
    assert q.shape == (6, clip_tiny.embed_dim)


def test_factored_svd_equals_svd_of_the_product(clip_tiny):
    from vlmkit.interpret.heads import factored_svd, head_factors

    layer = clip_tiny.vision_weights().layers[1]
    W_V, W_O = head_factors(layer)
    U, S, Vt = factored_svd(W_V, W_O)
    U2, S2, Vt2 = head_svd(W_V @ W_O, rank=layer.d_head)
    assert torch.allclose(S, S2, atol=1e-10)
    assert torch.allclose(U @ torch.diag_embed(S) @ Vt, W_V @ W_O, atol=1e-10)
    # the sign rule makes the two computations agree vector by vector (distinct singular values)
    assert torch.allclose(Vt, Vt2, atol=1e-6) and torch.allclose(U, U2, atol=1e-6)


def test_way_back_inverts_the_map_and_an_empty_code_stays_empty(clip_tiny):
    """Without an image mean, a direction in the projection's row space that ``ln_post`` only
    rescales comes back onto itself; an empty code maps to zero (fidelity 0), mean or not."""
    from vlmkit.interpret.heads import from_joint_space

    weights = clip_tiny.vision_weights()
    weights.ln_post.weight.fill_(1.0)
    weights.ln_post.bias.zero_()
    weights.proj = weights.proj - weights.proj.mean(0)  # columns orthogonal to ones
    direction = torch.randn(3, clip_tiny.embed_dim) @ torch.linalg.pinv(weights.proj)  # mean-zero rows
    back = from_joint_space(to_joint_space(direction, weights), weights)
    assert torch.allclose(back, torch.nn.functional.normalize(direction, dim=-1), atol=1e-4)
    mean = torch.nn.functional.normalize(torch.randn(clip_tiny.embed_dim), dim=0) * 0.5
    assert torch.equal(from_joint_space(torch.zeros(2, clip_tiny.embed_dim), weights, image_mean=mean), torch.zeros(2, weights.d_model))
