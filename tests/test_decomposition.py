"""The canonical weight view proven by an exact direct-effect decomposition on real CLIP code."""

import pytest
import torch

from vlmkit.errors import UnsupportedError
from vlmkit.interpret.decompose import direct_effects, head_writes


@pytest.fixture(scope="module")
def pixels():
    generator = torch.Generator().manual_seed(1)
    return torch.randn(3, 3, 224, 224, generator=generator)


def test_sum_of_direct_effects_is_the_embedding(clip_b32, pixels):
    effects = direct_effects(clip_b32, pixels)
    embedding = clip_b32.encode_images(pixels, normalize=False)
    relative = (effects.total() - embedding).norm(dim=-1) / embedding.norm(dim=-1)
    assert relative.max() < 1e-4
    weights = clip_b32.vision_weights()
    assert effects.heads.shape == (3, weights.n_layers, weights.n_heads, clip_b32.embed_dim)


def test_head_write_from_weights_matches_hf_attention(clip_b32, pixels):
    weights = clip_b32.vision_weights()
    for layer in (0, 5, 11):
        trace = clip_b32.trace_vision(pixels, [f"blocks.{layer}.ln1", f"blocks.{layer}.attn.z", f"blocks.{layer}.attn.out"])
        lw = weights.layers[layer]
        ours = head_writes(lw, trace[f"blocks.{layer}.ln1"])  # (b, h, pos, d)
        hf_z = trace[f"blocks.{layer}.attn.z"]  # (b, pos, h, d_head)
        hf_heads = torch.einsum("bphe,hed->bhpd", hf_z, lw.W_O)
        scale = hf_heads.abs().max()
        assert (ours - hf_heads).abs().max() / scale < 1e-4
        # and all heads plus the output bias reproduce the HF out_proj output itself
        total = ours.sum(1) + lw.b_O
        assert (total - trace[f"blocks.{layer}.attn.out"]).abs().max() / scale < 1e-4


def test_residual_parts_add_up_before_the_layernorm(clip_tiny):
    pixels = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    effects = direct_effects(clip_tiny, pixels)
    emb = clip_tiny.encode_images(pixels, normalize=False)
    assert torch.allclose(effects.total(), emb, rtol=1e-4, atol=1e-5)


def test_siglip_has_no_linear_readout():
    from vlmkit.models import load_model

    model = load_model("random:siglip-tiny")
    assert model.vision_weights().proj is None
    with pytest.raises(UnsupportedError, match="non-linearly"):
        direct_effects(model, torch.randn(1, 3, 64, 64))
