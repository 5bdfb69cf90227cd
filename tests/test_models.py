"""Model names, random architectures, Hugging Face loading from local directories, errors."""

import pytest
import torch

from vlmkit.errors import ModelNotFound
from vlmkit.models import list_models, load_model
from vlmkit.models.random_models import architectures

# (layers, width, heads, patch, projection) of the public checkpoints
TRUE_VISION = {
    "clip-vit-b32": (12, 768, 12, 32, 512),
    "clip-vit-b16": (12, 768, 12, 16, 512),
    "clip-vit-l14": (24, 1024, 16, 14, 768),
}


@pytest.mark.parametrize("arch", sorted(TRUE_VISION))
def test_architectures_carry_the_true_sizes(arch):
    config = architectures()[arch]["config"]
    vision = config["vision_config"]
    got = (vision["num_hidden_layers"], vision["hidden_size"], vision["num_attention_heads"], vision["patch_size"],
           config["projection_dim"])
    assert got == TRUE_VISION[arch]


def test_siglip_base_loads_with_its_true_sizes():
    model = load_model("random:siglip-base")
    weights = model.vision_weights()
    assert (weights.n_layers, weights.d_model, weights.n_heads) == (12, 768, 12)
    assert model.encode_texts(["a photo of a dog", "a cat"]).shape == (2, 768)
    pixels = model.preprocess.batch([__import__("PIL.Image").Image.new("RGB", (300, 200), (1, 2, 3))])
    assert pixels.shape == (1, 3, 224, 224)
    assert model.encode_images(pixels).shape == (1, 768)


def test_seeded_random_weights(clip_tiny):
    again = load_model("random:clip-tiny")
    other = load_model("random:clip-tiny@1")
    text = ["a red circle"]
    assert torch.equal(again.encode_texts(text), clip_tiny.encode_texts(text))
    assert not torch.allclose(other.encode_texts(text), clip_tiny.encode_texts(text))
    assert other.name == "random:clip-tiny@1" and other.fingerprint != clip_tiny.fingerprint


def test_embeddings_are_unit_vectors(clip_tiny):
    texts = clip_tiny.encode_texts(["one", "a much longer sentence about shapes"])
    images = clip_tiny.encode_images(torch.randn(2, 3, 64, 64))
    assert torch.allclose(texts.norm(dim=-1), torch.ones(2), atol=1e-5)
    assert torch.allclose(images.norm(dim=-1), torch.ones(2), atol=1e-5)


@pytest.mark.parametrize("name", ["random:clip-tiny", "random:siglip-tiny"])
def test_saved_checkpoint_loads_through_hf_path(tmp_path, name):
    model = load_model(name)
    model.save(tmp_path / "ckpt")
    for spec in (f"hf:{tmp_path / 'ckpt'}", str(tmp_path / "ckpt")):
        loaded = load_model(spec)
        assert loaded.family == model.family
        assert loaded.preprocess == model.preprocess
        assert torch.allclose(loaded.encode_texts(["a blue square"]), model.encode_texts(["a blue square"]), atol=1e-6)
        pixels = torch.randn(1, 3, 64, 64)
        assert torch.allclose(loaded.encode_images(pixels), model.encode_images(pixels), atol=1e-6)


@pytest.mark.parametrize(
    "name, message",
    [
        ("nonsense", "unknown model 'nonsense'"),
        ("random:clip-vit-b99", "unknown random architecture"),
        ("random:clip-tiny@x", "bad seed"),
        ("hf:no-such-org/no-such-model", "not in the local Hugging Face cache and the hub is unreachable"),
    ],
)
def test_unknown_models_give_one_actionable_line(name, message):
    with pytest.raises(ModelNotFound, match=message) as info:
        load_model(name)
    assert "\n" not in str(info.value)


def test_directory_without_config(tmp_path):
    with pytest.raises(ModelNotFound, match="no config.json"):
        load_model(f"hf:{tmp_path}")


def test_directory_of_an_unsupported_family(tmp_path):
    (tmp_path / "config.json").write_text('{"model_type": "bert"}')
    with pytest.raises(ModelNotFound, match="not a supported contrastive family"):
        load_model(str(tmp_path))


def test_list_models_covers_random_architectures_and_families():
    names = {m.name for m in list_models()}
    assert {"random:clip-vit-b32", "random:clip-vit-b16", "random:clip-vit-l14", "random:siglip-base"} <= names
    clip = next(m for m in list_models() if m.name == "random:clip-vit-b32")
    assert "decomposition" in clip.supports


def test_hub_name_loads_from_the_local_hf_cache(tmp_path, monkeypatch):
    """``hf:<org>/<name>`` resolves through the Hugging Face cache layout, offline."""
    commit = "0" * 40
    repo = tmp_path / "hub" / "models--vlmkit-test--clip-tiny"
    load_model("random:clip-tiny").save(repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    import huggingface_hub.constants as constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    model = load_model("hf:vlmkit-test/clip-tiny")
    assert model.name == "hf:vlmkit-test/clip-tiny" and model.family == "clip"
