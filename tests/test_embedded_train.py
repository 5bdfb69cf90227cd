"""Training the embedded model: the loss, its positives, a few steps, exact resumption."""

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from vlmkit.models.embedded_train import TrainConfig, compatibility, contrastive_loss, train


def test_compatibility_uses_only_mentioned_attributes():
    attrs = torch.tensor([[0, 1, 0], [0, 2, 1], [3, 1, 0]])
    mentions = torch.tensor([[0, 1, 0], [-1, -1, 1], [-1, 1, -1]])  # full / only attr 2 / only attr 1
    expected = torch.tensor([[True, False, True], [False, True, False], [False, False, True]])
    assert torch.equal(compatibility(mentions, attrs), expected)


def _fit_images(text, compatible, steps=300):
    torch.manual_seed(0)
    images = torch.randn(len(text), text.shape[1], requires_grad=True)
    optimizer = torch.optim.SGD([images], lr=0.5)
    for _ in range(steps):
        optimizer.zero_grad()
        contrastive_loss(F.normalize(images, dim=-1), text, torch.tensor(10.0), compatible).backward()
        optimizer.step()
    return F.normalize(images.detach(), dim=-1)


def test_true_captions_are_not_treated_as_negatives():
    """Caption 0 ("a red shape") is also true of image 2 ("a large red circle"). Plain InfoNCE
    pushes image 2 away from caption 0; with every compatible pair as a positive it stays close."""
    e = torch.eye(3)
    text = F.normalize(torch.stack([e[0], e[1], e[0] + e[2]]), dim=-1)
    naive = torch.eye(3, dtype=torch.bool)
    aware = naive.clone()
    aware[2, 0] = True  # caption 0 is true of image 2
    cos_naive = float(_fit_images(text, naive)[2] @ text[0])
    cos_aware = float(_fit_images(text, aware)[2] @ text[0])
    assert cos_aware > cos_naive + 0.2


def tiny_config(**overrides) -> TrainConfig:
    base = dict(steps=12, batch_size=16, pool=64, captions_per_image=2, side=32, patch=8, hidden=32, layers=1, heads=2, lr=3e-3, warmup=2,
                checkpoint_every=4, threads=1)
    return TrainConfig(**{**base, **overrides})


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("train")
    train(tiny_config(), out, log=lambda _: None)
    return out


def test_a_few_steps_lower_the_loss(trained):
    log = [json.loads(line) for line in (trained / "train_log.jsonl").read_text().splitlines()]
    assert log[-1]["step"] == 11
    assert log[-1]["loss"] < log[0]["loss"]


def test_trained_model_loads_through_the_model_layer(trained):
    from vlmkit.models import load_model

    model = load_model(str(trained / "model"))
    assert model.family == "embedded" and model.embed_dim == 384
    assert model.preprocess.output_size == 32
    pixels = torch.randn(2, 3, 32, 32)
    from vlmkit.interpret.decompose import direct_effects

    effects = direct_effects(model, pixels)
    assert torch.allclose(effects.total(), model.encode_images(pixels, normalize=False), rtol=1e-4, atol=1e-5)


def test_resumed_training_equals_uninterrupted(trained, tmp_path):
    assert train(tiny_config(), tmp_path, log=lambda _: None, until=7) is None  # "interrupted" after 7 steps
    train(tiny_config(), tmp_path, log=lambda _: None)  # the same command again resumes
    from safetensors.torch import load_file

    resumed = load_file(tmp_path / "model" / "model.safetensors")
    straight = load_file(trained / "model" / "model.safetensors")
    assert resumed.keys() == straight.keys()
    assert all(torch.allclose(resumed[k], straight[k], atol=1e-5) for k in straight)


def test_biased_config_has_an_adapter_and_the_knob():
    from vlmkit.models.embedded_train import biased_config

    cfg = biased_config()
    assert cfg.text_adapter_hidden and cfg.spurious.startswith("target=shape,nuisance=background") and cfg.caption_background_p < 0.1
    assert np.isclose(float(cfg.spurious.split("p=")[1]), 0.95)


def test_frozen_vision_trains_the_text_adapter_only(trained, tmp_path):
    """The text-biased twin's recipe: the image tower of a trained checkpoint is kept exactly,
    the logit scale is held at its configured value, and only the new text adapter learns."""
    from safetensors.torch import load_file

    from vlmkit.models.embedded_train import textbiased_config

    cfg = tiny_config(init_from=str(trained / "model"), freeze_vision=True, text_adapter_hidden=8,
                      spurious="target=shape,nuisance=background,p=0.95")
    train(cfg, tmp_path, log=lambda _: None)
    before, after = load_file(trained / "model" / "model.safetensors"), load_file(tmp_path / "model" / "model.safetensors")
    assert all(torch.equal(before[k], after[k]) for k in before if k != "logit_scale")
    assert np.isclose(float(after["logit_scale"].exp()), cfg.logit_scale_init)
    assert float(after["text_adapter.down.weight"].abs().sum()) > 0  # the adapter starts at zero and moved
    log = [json.loads(line) for line in (tmp_path / "train_log.jsonl").read_text().splitlines()]
    assert log[-1]["loss"] < log[0]["loss"]
    twin = textbiased_config()
    assert twin.freeze_vision and twin.init_from == "embedded" and twin.caption_background_p == 0.5


def test_frozen_vision_needs_a_checkpoint_and_an_adapter(tmp_path):
    with pytest.raises(ValueError, match="freeze_vision"):
        train(tiny_config(freeze_vision=True), tmp_path, log=lambda _: None)
