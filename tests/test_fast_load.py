"""Fast model construction: cached random weights and memory-mapped loading give the same model."""

import torch

from vlmkit.models import random_models
from vlmkit.models.fast_init import empty_model, load_mapped, save_weights


def _state(model):
    return {name: tensor.detach().clone() for name, tensor in model.hf_model.state_dict().items()}


def test_random_weights_cache_is_bit_identical(monkeypatch):
    monkeypatch.setenv("VLMKIT_RANDOM_WEIGHTS_CACHE", "1")
    monkeypatch.setattr(random_models, "CACHE_MIN_PARAMETERS", 0)
    drawn = random_models.build("clip-tiny", seed=2)
    path = random_models.weights_file("clip-tiny", 2)
    assert path.is_file()  # written by the first build
    cached = random_models.build("clip-tiny", seed=2)
    want, got = _state(drawn), _state(cached)
    assert want.keys() == got.keys()
    assert all(torch.equal(want[name], got[name]) for name in want)
    pixels = torch.rand(2, 3, 64, 64)
    assert torch.equal(drawn.encode_images(pixels), cached.encode_images(pixels))
    assert torch.equal(drawn.encode_texts(["a red circle", "blue"]), cached.encode_texts(["a red circle", "blue"]))
    assert drawn.fingerprint == cached.fingerprint


def test_damaged_cache_file_is_drawn_again(monkeypatch):
    monkeypatch.setenv("VLMKIT_RANDOM_WEIGHTS_CACHE", "1")
    monkeypatch.setattr(random_models, "CACHE_MIN_PARAMETERS", 0)
    path = random_models.weights_file("clip-tiny", 3)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"not a safetensors file")
    model = random_models.build("clip-tiny", seed=3)
    monkeypatch.setenv("VLMKIT_RANDOM_WEIGHTS_CACHE", "0")
    fresh = random_models.build("clip-tiny", seed=3)
    assert random_models.weights_file("clip-tiny", 3) is None
    assert all(torch.equal(a, b) for a, b in zip(_state(model).values(), _state(fresh).values(), strict=True))


def test_mapped_weights_can_be_edited_without_touching_the_file(tmp_path):
    model = random_models.build("clip-tiny", seed=4)
    path = save_weights(model.hf_model, tmp_path / "w.safetensors")
    loaded = load_mapped(empty_model(type(model.hf_model), model.hf_model.config), path)
    weights = model.vision_weights()
    with torch.no_grad():
        loaded.vision_model.post_layernorm.weight.mul_(2)
    again = load_mapped(empty_model(type(model.hf_model), model.hf_model.config), path)
    assert torch.equal(again.vision_model.post_layernorm.weight, weights.ln_post.weight)


def test_checkpoint_directory_loads_mapped_and_equals_from_pretrained(tmp_path):
    from transformers import CLIPConfig, CLIPModel

    from vlmkit.models import load_model
    from vlmkit.models.fast_init import load_checkpoint

    model = random_models.build("clip-tiny", seed=5)
    model.save(tmp_path / "ckpt")
    mapped = load_checkpoint(CLIPModel, CLIPConfig, tmp_path / "ckpt")
    reference = CLIPModel.from_pretrained(tmp_path / "ckpt")
    want, got = reference.state_dict(), mapped.state_dict()
    assert want.keys() == got.keys() and all(torch.equal(want[k], got[k]) for k in want)
    loaded = load_model(str(tmp_path / "ckpt"))
    pixels = torch.rand(2, 3, 64, 64)
    assert torch.equal(loaded.encode_images(pixels), model.encode_images(pixels))
    assert torch.allclose(loaded.encode_texts(["a red circle"]), model.encode_texts(["a red circle"]), atol=1e-5)


def test_deferred_random_model_reads_the_vision_view_from_the_file(monkeypatch):
    """``random:`` with cached weights loads deferred: the weight view read from the file equals the
    built model's (values, LayerNorm eps), and everything else builds the real model once."""
    from vlmkit.models import load_model
    from vlmkit.models.deferred import DeferredModel

    monkeypatch.setenv("VLMKIT_RANDOM_WEIGHTS_CACHE", "1")
    monkeypatch.setattr(random_models, "CACHE_MIN_PARAMETERS", 0)
    random_models.build("clip-tiny", seed=6)  # fills the cache
    model = load_model("random:clip-tiny@6")
    assert isinstance(model, DeferredModel) and model._model is None
    view = model.vision_weights()
    assert model._model is None  # reading the view built nothing
    real = random_models.build("clip-tiny", seed=6).vision_weights()
    for ours, theirs in zip(view.layers, real.layers, strict=True):
        for name in ("W_Q", "W_K", "W_V", "W_O", "b_Q", "b_K", "b_V", "b_O"):
            assert torch.equal(getattr(ours, name), getattr(theirs, name)), name
        assert torch.equal(ours.ln1.weight, theirs.ln1.weight) and ours.ln1.eps == theirs.ln1.eps
    for ours, theirs in ((view.ln_post, real.ln_post), (view.ln_pre, real.ln_pre)):
        assert torch.equal(ours.weight, theirs.weight) and torch.equal(ours.bias, theirs.bias) and ours.eps == theirs.eps
    assert torch.equal(view.proj, real.proj) and view.pool == real.pool
    assert model.fingerprint == "random:clip-tiny@6"
    texts = model.encode_texts(["a red circle"])  # builds the network
    assert model._model is not None and texts.shape == (1, model.embed_dim)
    view.ln_post.weight.mul_(2)
    model.set_vision_weights(view)  # an edit reaches the real model, and the fingerprint follows it
    assert model.fingerprint.startswith("random:clip-tiny@6+")
    assert torch.equal(model.vision_weights().ln_post.weight, view.ln_post.weight)


def test_checkpoint_directory_loads_deferred_with_the_same_view(tmp_path):
    """A checkpoint directory loads deferred: its vision weight view is read from model.safetensors
    (equal to the built model's), and encoding builds the network, with the same embeddings."""
    from vlmkit.models import load_model
    from vlmkit.models.deferred import DeferredModel

    model = random_models.build("clip-tiny", seed=7)
    model.save(tmp_path / "ckpt")
    loaded = load_model(str(tmp_path / "ckpt"))
    assert isinstance(loaded, DeferredModel) and loaded._model is None
    view, real = loaded.vision_weights(), model.vision_weights()
    assert loaded._model is None
    for ours, theirs in zip(view.layers, real.layers, strict=True):
        assert all(torch.equal(getattr(ours, n), getattr(theirs, n)) for n in ("W_Q", "W_K", "W_V", "W_O", "b_V", "b_O"))
        assert ours.ln1.eps == theirs.ln1.eps
    assert torch.equal(view.proj, real.proj) and view.ln_post.eps == real.ln_post.eps
    assert loaded.preprocess == model.preprocess
    pixels = torch.rand(2, 3, 64, 64)
    assert torch.equal(loaded.encode_images(pixels), model.encode_images(pixels))
    assert loaded._model is not None
