"""The shapes world: determinism, ground truth of the pixels, captions, the spurious knob."""

import json

import numpy as np
import pytest
from PIL import Image

from vlmkit.data import world as w
from vlmkit.data.datasets import load_dataset
from vlmkit.data.world_sample import CaptionStyle, full_caption, generate, sample_image


def test_generation_is_deterministic_and_independent_of_n(tmp_path):
    a = generate(tmp_path / "a", 6, seed=3)
    b = generate(tmp_path / "b", 9, seed=3)
    rows_a = a.read_text().splitlines()
    rows_b = b.read_text().splitlines()
    assert rows_a == rows_b[:6]
    for i in range(6):
        name = f"images/{i:06d}.png"
        assert np.array_equal(np.asarray(Image.open(tmp_path / "a" / name)), np.asarray(Image.open(tmp_path / "b" / name)))
    other = generate(tmp_path / "c", 6, seed=4).read_text().splitlines()
    assert other != rows_a


def test_manifest_carries_every_attribute_and_prompts(tmp_path):
    dataset = load_dataset(generate(tmp_path, 5, seed=0))
    assert set(dataset.attribute_names()) == {"shape", "color", "size", "position", "texture", "background", "n_objects"}
    assert set(dataset.prompts) >= set(w.ATTRIBUTES) and all("{}" in t for t in dataset.prompts["color"])
    assert dataset.samples[0].label == dataset.samples[0].attributes["shape"]


@pytest.mark.parametrize("index", range(40))
def test_pixels_show_the_labelled_attributes(index):
    image, rng = sample_image(index, seed=11)
    obj = image.objects[0]
    side = 96
    pixels = w.render(image, side, rng, noise=0).astype(float)
    mask = w.object_mask(obj, side) > 0.99
    # colour: the pixels showing the object's own colour are nearest to its name
    pattern = w.texture_pattern(obj.texture, side, np.random.default_rng(0)) if obj.texture == "solid" else None
    inside = pixels[mask]
    darkest = inside[np.argsort(inside.sum(1))[: max(1, len(inside) // 3)]]  # the full-colour half of a texture
    assert w.nearest_colour(np.median(darkest, 0)) == obj.color
    if pattern is not None:
        assert np.allclose(inside, np.asarray(obj.rgb), atol=1)
    # background: the corners show it
    assert np.allclose(pixels[0, 0], w.BACKGROUNDS[image.background], atol=1)
    # position: the silhouette's centroid is nearest the named position
    ys, xs = np.nonzero(mask)
    centroid = np.array([xs.mean(), ys.mean()]) / side
    nearest = min(w.POSITIONS, key=lambda p: np.linalg.norm(centroid - np.asarray(w.POSITIONS[p])))
    assert nearest == obj.position
    # size: the same shape at the other size covers a clearly different area
    from dataclasses import replace

    other = replace(obj, size="large" if obj.size == "small" else "small")
    ratio = mask.mean() / (w.object_mask(other, side) > 0.99).mean()
    assert ratio > 2.5 if obj.size == "large" else ratio < 0.4


def test_texture_patterns_differ():
    rng = np.random.default_rng(0)
    assert w.texture_pattern("solid", 48, rng).min() == 1
    for texture in ("striped", "dotted", "checkered"):
        pattern = w.texture_pattern(texture, 48, rng)
        assert 0.2 < pattern.mean() < 0.9


def test_captions_name_only_true_attributes():
    for index in range(200):
        image, _ = sample_image(index, seed=2)
        truth = image.attributes()
        for name, value in image.extra["mentions"].items():
            assert truth[name] == value
            assert value in image.caption or name in ("size", "texture", "position", "shape")
    everything = CaptionStyle(1, 1, 1, 1, 1, 1)
    image, _ = sample_image(0, seed=2, style=everything)
    assert set(image.extra["mentions"]) == {"shape", "color", "size", "position", "texture", "background"}
    assert full_caption(image.attributes()).startswith(("a ", "an "))


@pytest.mark.parametrize("p", [0.95, 0.6])
def test_spurious_knob_hits_p_within_sampling_error(p):
    knob = w.Spurious(target="shape", nuisance="background", p=p)
    n = 3000
    paired = 0
    for index in range(n):
        image, _ = sample_image(index, seed=5, spurious=knob)
        attrs = image.attributes()
        paired += attrs["background"] == knob.paired(attrs["shape"])
        assert image.group == f"{attrs['shape']}|{attrs['background']}"
    sigma = np.sqrt(p * (1 - p) / n)
    assert abs(paired / n - p) < 4 * sigma


def test_second_object_sits_opposite(tmp_path):
    images = [sample_image(i, seed=1, second_object_p=1.0)[0] for i in range(30)]
    with_two = [im for im in images if len(im.objects) == 2]
    assert with_two and all(im.objects[1].size == "small" for im in with_two)
    pairs = {("left", "right"), ("right", "left"), ("top", "bottom"), ("bottom", "top")}
    assert all((im.objects[0].position, im.objects[1].position) in pairs for im in with_two)
    manifest = generate(tmp_path, 8, seed=1, second_object_p=1.0)
    rows = [json.loads(r) for r in manifest.read_text().splitlines()]
    assert any(len(r.get("objects", [])) == 2 for r in rows)


def test_spurious_parse_errors():
    assert w.Spurious.parse("target=shape,nuisance=background,p=0.9") == w.Spurious("shape", "background", 0.9)
    for bad in ("target=shape,nuisance=shape", "target=smell", "p=2", "nonsense"):
        with pytest.raises(ValueError):
            w.Spurious.parse(bad)


def test_hard_negative_changes_exactly_one_named_attribute():
    from vlmkit.data.world_sample import caption_with_negative

    for index in range(100):
        image, rng = sample_image(index, seed=9)
        (text, said), (negative, negative_said) = caption_with_negative(image, rng)
        assert said.keys() == negative_said.keys() and text != negative
        changed = [name for name in said if said[name] != negative_said[name]]
        assert len(changed) == 1
