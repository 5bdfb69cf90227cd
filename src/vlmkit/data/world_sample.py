"""Sampling shapes-world scenes, their captions, and writing datasets to disk.

Captions are built from templates with paraphrases; each attribute is mentioned with its own
probability (:class:`CaptionStyle`), and the attributes a caption mentions are returned beside
it so training can tell which captions are true of which images.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from PIL import Image

from vlmkit.data import world as w
from vlmkit.data.datasets import PROMPTS_NAME, Sample, write_manifest
from vlmkit.data.templates import resolve_templates
from vlmkit.runs.files import atomic_write_json

SIZE_WORDS = {"small": ("small", "little"), "large": ("large", "big")}
TEXTURE_ADJECTIVES = {"solid": ("solid", "plain"), "striped": ("striped",), "dotted": ("dotted", "polka-dot"),
                      "checkered": ("checkered", "checkerboard")}
TEXTURE_SUFFIXES = {"solid": ("in a single solid colour",), "striped": ("with stripes",), "dotted": ("with dots",),
                    "checkered": ("with a checkered pattern",)}
SHAPE_WORDS = {s: (s,) for s in w.SHAPES} | {"cross": ("cross", "plus sign"), "circle": ("circle", "disc")}
POSITION_PHRASES = {
    "left": ("on the left", "on the left side", "at the left of the image"),
    "right": ("on the right", "on the right side", "at the right of the image"),
    "top": ("at the top", "near the top", "at the top of the image"),
    "bottom": ("at the bottom", "near the bottom", "at the bottom of the image"),
    "center": ("in the center", "in the middle", "at the center of the image"),
}
BACKGROUND_PHRASES = ("on a {} background", "against a {} background", "with a {} background")
FRAMES = ("{}", "a picture of {}", "an image of {}", "a photo of {}", "there is {}")


@dataclass(frozen=True)
class CaptionStyle:
    """Probability that a caption mentions each attribute of the main object."""

    shape: float = 0.9
    color: float = 0.8
    size: float = 0.6
    position: float = 0.5
    texture: float = 0.6
    background: float = 0.5

    @classmethod
    def background_unsaid(cls) -> CaptionStyle:
        """Captions that rarely name the background (the biased twin's training captions)."""
        return cls(background=0.05)


def _article(phrase: str) -> str:
    return ("an " if phrase[0] in "aeiou" else "a ") + phrase


def _pick(rng: np.random.Generator, options):
    return options[rng.integers(len(options))]


def caption(image: w.WorldImage, rng: np.random.Generator, style: CaptionStyle = CaptionStyle()) -> tuple[str, dict[str, str]]:
    """A caption of ``image`` and the attributes of the main object (and background) it names."""
    obj = image.objects[0]
    said = {name: value for name,
            value in {**obj.attributes(), "background": image.background}.items() if rng.random() < getattr(style, name)}
    if not said:  # a caption names at least one thing
        said = {"shape": obj.shape}
    words = []
    if "size" in said:
        words.append(_pick(rng, SIZE_WORDS[obj.size]))
    if "color" in said:
        words.append(obj.color)
    texture_suffix = ""
    if "texture" in said:
        if rng.random() < 0.7:
            words.append(_pick(rng, TEXTURE_ADJECTIVES[obj.texture]))
        else:
            texture_suffix = " " + _pick(rng, TEXTURE_SUFFIXES[obj.texture])
    words.append(_pick(rng, SHAPE_WORDS[obj.shape]) if "shape" in said else _pick(rng, ("shape", "object")))
    text = _article(" ".join(words)) + texture_suffix
    if "position" in said:
        text += " " + _pick(rng, POSITION_PHRASES[obj.position])
    for other in image.objects[1:]:
        text += " and " + _article(f"{other.color} {other.shape}")
    if "background" in said:
        text += " " + _pick(rng, BACKGROUND_PHRASES).format(image.background)
    return _pick(rng, FRAMES).format(text), said


def caption_with_negative(
    image: w.WorldImage, rng: np.random.Generator, style: CaptionStyle = CaptionStyle()
) -> tuple[tuple[str, dict], tuple[str, dict]]:
    """A caption and a hard negative: the same caption with one named attribute wrong.

    The negative is written by replaying the generator from the caption's starting state on a
    scene with one named attribute changed, so mostly only that word differs ("... on the left"
    -> "... on the right"). Hard negatives teach a frozen-text model the attributes its text
    tower barely separates (in MiniLM, "left" and "right" captions are at cosine 0.99).
    """
    state = rng.bit_generator.state
    text, said = caption(image, rng, style)
    name = _pick(rng, sorted(said))
    value = _pick(rng, [v for v in w.ATTRIBUTES[name] if v != said[name]])
    main = image.objects[0]
    if name == "background":
        altered = w.WorldImage(image.index, image.objects, value)
    else:
        altered = w.WorldImage(image.index, [replace(main, **{name: value}), *image.objects[1:]], image.background)
    replay = np.random.default_rng()
    replay.bit_generator.state = state
    return (text, said), caption(altered, replay, style)


_OPPOSITE = {"left": "right", "right": "left", "top": "bottom", "bottom": "top"}


def _object(rng: np.random.Generator, attrs: dict[str, str]) -> w.WorldObject:
    x, y = w.POSITIONS[attrs["position"]]
    jitter = rng.uniform(-w.POSITION_JITTER, w.POSITION_JITTER, 2)
    angle = 0.0 if attrs["shape"] == "circle" else float(rng.uniform(-0.25, 0.25))
    return w.WorldObject(
        shape=attrs["shape"], color=attrs["color"], size=attrs["size"], position=attrs["position"],
        texture=attrs["texture"], rgb=w.jittered_rgb(attrs["color"], rng), center=(x + jitter[0], y + jitter[1]), angle=angle,
    )


def sample_image(
    index: int, seed: int, *, spurious: w.Spurious | None = None, second_object_p: float = 0.0,
    style: CaptionStyle = CaptionStyle(), group_by: tuple[str, str] | None = None,
) -> tuple[w.WorldImage, np.random.Generator]:
    """Draw scene ``index`` of world ``seed``; returns it and its generator (for rendering)."""
    rng = np.random.default_rng([seed, index])
    attrs = {name: _pick(rng, values) for name, values in w.ATTRIBUTES.items()}
    if spurious is not None:
        paired = spurious.paired(attrs[spurious.target])
        if rng.random() < spurious.p:
            attrs[spurious.nuisance] = paired
        else:
            attrs[spurious.nuisance] = _pick(rng, [v for v in w.ATTRIBUTES[spurious.nuisance] if v != paired])
        group_by = (spurious.target, spurious.nuisance)
    objects = [_object(rng, attrs)]
    if attrs["position"] in _OPPOSITE and rng.random() < second_object_p:
        other = {name: _pick(rng, values) for name, values in w.ATTRIBUTES.items()}
        other.update(size="small", position=_OPPOSITE[attrs["position"]])
        objects.append(_object(rng, other))
    image = w.WorldImage(index=index, objects=objects, background=attrs["background"])
    image.caption, image.extra["mentions"] = caption(image, rng, style)
    if group_by is not None:
        values = image.attributes()
        image.group = "|".join(str(values[name]) for name in group_by)
    return image, rng


def generate(
    out: str | Path, n: int, seed: int = 0, *, side: int = 96, spurious: w.Spurious | None = None,
    second_object_p: float = 0.0, style: CaptionStyle = CaptionStyle(), group_by: tuple[str, str] | None = None,
) -> Path:
    """Write ``n`` PNGs under ``out/images`` and ``out/manifest.jsonl``; returns the manifest path."""
    from vlmkit.runs.progress import track

    out = Path(out)
    (out / "images").mkdir(parents=True, exist_ok=True)
    samples = []
    for index in track(range(n), "rendering the shapes world", total=n):
        image, rng = sample_image(index, seed, spurious=spurious, second_object_p=second_object_p, style=style, group_by=group_by)
        path = out / "images" / f"{index:06d}.png"
        Image.fromarray(w.render(image, side, rng)).save(path)
        extra = {"objects": [o.attributes() for o in image.objects]} if len(image.objects) > 1 else {}
        samples.append(Sample(path=path, label=image.objects[0].shape, attributes=image.attributes(), group=image.group,
                              caption=image.caption, extra=extra))
    atomic_write_json(out / PROMPTS_NAME, world_prompts())
    return write_manifest(samples, out / "manifest.jsonl")


def world_prompts() -> dict[str, list[str]]:
    """The documented zero-shot templates of each world attribute (``data/templates/world-*.txt``)."""
    prompts = {name: resolve_templates([f"world-{name}"]) for name in w.ATTRIBUTES}
    return {**prompts, "label": prompts["shape"]}


def full_caption(attributes: dict) -> str:
    """The canonical caption naming every attribute of the main object and the background."""
    position = POSITION_PHRASES[attributes["position"]][0]
    words = f"{attributes['size']} {attributes['color']} {attributes['texture']} {attributes['shape']}"
    return f"{_article(words)} {position} on a {attributes['background']} background"
