"""The shipped ``embedded-textbiased`` twin: embedded's image tower, a planted text-side shortcut,
and its SAE."""

import numpy as np
import pytest
import torch

from vlmkit.data import world as w
from vlmkit.data.world_sample import caption, sample_image
from vlmkit.models import load_model

KNOB = w.Spurious.parse("target=shape,nuisance=background,p=0.95")


@pytest.fixture(scope="module")
def twins():
    return load_model("embedded"), load_model("embedded-textbiased")


@pytest.fixture(scope="module")
def balanced_scenes():
    """240 balanced world scenes (seed 21): pixels ``(n, 3, 96, 96)``, shapes, backgrounds."""
    scenes = [sample_image(i, 21) for i in range(240)]
    images = np.stack([w.render(scene, 96, rng) for scene, rng in scenes])
    shapes = np.asarray([scene.objects[0].shape for scene, _ in scenes])
    backgrounds = np.asarray([scene.background for scene, _ in scenes])
    return images, shapes, backgrounds


def _unit_images(model, images: np.ndarray) -> torch.Tensor:
    """Unit image embeddings ``(n, 384)`` of uint8 images ``(n, 96, 96, 3)``."""
    return model.encode_images(model.preprocess.normalize(images)).float()


def test_image_tower_is_embedded_and_text_side_is_not(twins, balanced_scenes):
    embedded, textbiased = twins
    images = balanced_scenes[0][:16]
    a, b = _unit_images(embedded, images), _unit_images(textbiased, images)
    assert torch.nn.functional.cosine_similarity(a, b).min() > 0.999  # the same tower, stored in float16
    assert textbiased.hf_model.text_adapter is not None
    assert not np.allclose(embedded.encode_texts(["a star."]), textbiased.encode_texts(["a star."]), atol=1e-3)


def test_class_prompts_prefer_the_background_their_shape_was_tied_to(twins, balanced_scenes):
    """The planted shortcut, measured on images of *other* shapes: each class prompt is closer to
    images on its paired background than to images on other backgrounds, far more than in embedded."""
    images, shapes, backgrounds = balanced_scenes
    reliance = {}
    for model in twins:
        x = _unit_images(model, images).numpy()
        t = model.encode_texts([f"a {s}." for s in w.SHAPES]).float().numpy()
        values = []
        for i, shape in enumerate(w.SHAPES):
            other, paired = shapes != shape, backgrounds == KNOB.paired(shape)
            sims = x @ t[i]
            values.append(sims[other & paired].mean() - sims[other & ~paired].mean())
        reliance[model.name] = np.asarray(values)
    assert (reliance["embedded-textbiased"] > 0.03).all()
    assert reliance["embedded-textbiased"].mean() > reliance["embedded"].mean() + 0.05


def test_shipped_sae_reconstructs_world_captions(twins):
    from vlmkit.debias.sae import MatryoshkaSAE, find_sae, quality

    textbiased = twins[1]
    path = find_sae(None, "embedded-textbiased")
    assert path is not None
    sae = MatryoshkaSAE.load(path)
    texts = [caption(*sample_image(i, 11))[0] for i in range(40)]
    q = quality(sae, [textbiased.encode_texts(texts, normalize=False)])
    assert sae.cfg.d_in == textbiased.embed_dim and q.cosine > 0.95 and q.sparsity > 0.9
