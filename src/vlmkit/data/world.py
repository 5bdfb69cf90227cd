"""The shapes world: procedural images whose every attribute is known.

Each image shows one object (optionally a second, smaller one) with a shape, a colour (small
hue jitter), a size, a position (with jitter) and a texture, on a plain background colour. Every
value is recorded, so each method can be checked against ground truth no paper had. A
spurious-correlation knob ties each value of a target attribute to a value of a nuisance
attribute with probability ``p`` (the Waterbirds situation), and each image records its
``group`` (target value | nuisance value) for worst-group accuracy.

Everything is drawn from ``numpy.random.default_rng`` seeded per image, so image ``i`` of seed
``s`` is the same whatever ``n`` is and whichever process renders it.
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageDraw

SHAPES = ("circle", "square", "triangle", "star", "hexagon", "cross")
#: name -> (hue in [0, 1), saturation, value)
COLOURS = {
    "red": (0.0, 0.85, 0.9), "orange": (0.075, 0.9, 0.95), "yellow": (0.155, 0.9, 0.95), "green": (0.33, 0.8, 0.7),
    "cyan": (0.5, 0.8, 0.85), "blue": (0.62, 0.85, 0.9), "purple": (0.78, 0.7, 0.75), "pink": (0.92, 0.45, 0.98),
}
BACKGROUNDS = {
    "white": (242, 242, 242), "black": (18, 18, 18), "gray": (120, 120, 120),
    "beige": (222, 205, 165), "navy": (20, 28, 78), "maroon": (88, 20, 32),
}
SIZES = ("small", "large")
POSITIONS = {"left": (0.27, 0.5), "right": (0.73, 0.5), "top": (0.5, 0.27), "bottom": (0.5, 0.73), "center": (0.5, 0.5)}
TEXTURES = ("solid", "striped", "dotted", "checkered")

#: attribute name -> its values, in the order used by the spurious pairing
ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "shape": SHAPES, "color": tuple(COLOURS), "size": SIZES, "position": tuple(POSITIONS),
    "texture": TEXTURES, "background": tuple(BACKGROUNDS),
}
#: fraction of the image side taken by an object of each size
SIZE_FRACTION = {"small": 0.24, "large": 0.44}
HUE_JITTER = 0.015
POSITION_JITTER = 0.04


@dataclass(frozen=True)
class Spurious:
    """Tie ``target`` to ``nuisance``: value ``i`` of the target gets nuisance value
    ``i mod n_nuisance`` with probability ``p``, any other nuisance value otherwise (uniformly)."""

    target: str = "shape"
    nuisance: str = "background"
    p: float = 0.95

    def __post_init__(self):
        for name in (self.target, self.nuisance):
            if name not in ATTRIBUTES:
                raise ValueError(f"unknown attribute {name!r}; choose from {', '.join(ATTRIBUTES)}")
        if self.target == self.nuisance:
            raise ValueError("target and nuisance must be different attributes")
        if not 0 <= self.p <= 1:
            raise ValueError(f"p must lie in [0, 1], got {self.p}")

    def paired(self, target_value: str) -> str:
        values = ATTRIBUTES[self.nuisance]
        return values[ATTRIBUTES[self.target].index(target_value) % len(values)]

    @classmethod
    def parse(cls, text: str) -> Spurious:
        """``"target=shape,nuisance=background,p=0.95"`` -> :class:`Spurious`."""
        fields = dict(part.split("=", 1) for part in text.split(",") if "=" in part)
        unknown = set(fields) - {"target", "nuisance", "p"}
        if unknown or not fields:
            raise ValueError("write the knob as target=<attribute>,nuisance=<attribute>,p=<probability>")
        return cls(fields.get("target", "shape"), fields.get("nuisance", "background"), float(fields.get("p", 0.95)))


@dataclass
class WorldObject:
    """One drawn object and its ground truth."""

    shape: str
    color: str
    size: str
    position: str
    texture: str
    rgb: tuple[int, int, int]
    center: tuple[float, float]  # (x, y) as fractions of the image side
    angle: float = 0.0

    def attributes(self) -> dict[str, str]:
        return {k: getattr(self, k) for k in ("shape", "color", "size", "position", "texture")}


@dataclass
class WorldImage:
    """An image's ground truth: its objects (the first is the main one) and background."""

    index: int
    objects: list[WorldObject]
    background: str
    caption: str = ""
    group: str | None = None
    extra: dict = field(default_factory=dict)

    def attributes(self) -> dict:
        return {**self.objects[0].attributes(), "background": self.background, "n_objects": len(self.objects)}


def jittered_rgb(color: str, rng: np.random.Generator) -> tuple[int, int, int]:
    """The named colour with a small hue, saturation and value jitter."""
    h, s, v = COLOURS[color]
    h = (h + rng.uniform(-HUE_JITTER, HUE_JITTER)) % 1.0
    s = float(np.clip(s + rng.uniform(-0.05, 0.05), 0, 1))
    v = float(np.clip(v + rng.uniform(-0.05, 0.05), 0, 1))
    return tuple(int(round(255 * c)) for c in colorsys.hsv_to_rgb(h, s, v))


def nearest_colour(rgb) -> str:
    """The named colour whose hue is closest to ``rgb`` (used to check ground truth)."""
    h, _, _ = colorsys.rgb_to_hsv(*(c / 255 for c in rgb))
    return min(COLOURS, key=lambda name: min(abs(h - COLOURS[name][0]), 1 - abs(h - COLOURS[name][0])))


def _polygon(shape: str, cx: float, cy: float, r: float, angle: float) -> list[tuple[float, float]] | None:
    def ring(n: int, radius_fn, offset: float) -> list[tuple[float, float]]:
        return [
            (cx + radius_fn(k) * np.cos(offset + angle + 2 * np.pi * k / n), cy + radius_fn(k) * np.sin(offset + angle + 2 * np.pi * k / n))
            for k in range(n)
        ]

    if shape == "square":
        return ring(4, lambda k: r * 0.92, np.pi / 4)
    if shape == "triangle":
        return ring(3, lambda k: r, -np.pi / 2)
    if shape == "hexagon":
        return ring(6, lambda k: r, 0.0)
    if shape == "star":
        return ring(10, lambda k: r if k % 2 == 0 else r * 0.45, -np.pi / 2)
    if shape == "cross":
        a, b = r * 0.95, r * 0.34
        points = [(-b, -a), (b, -a), (b, -b), (a, -b), (a, b), (b, b), (b, a), (-b, a), (-b, b), (-a, b), (-a, -b), (-b, -b)]
        c, s = np.cos(angle), np.sin(angle)
        return [(cx + x * c - y * s, cy + x * s + y * c) for x, y in points]
    return None  # circle


def object_mask(obj: WorldObject, side: int, supersample: int = 4) -> np.ndarray:
    """Anti-aliased coverage ``(side, side)`` in [0, 1] of the object's silhouette."""
    big = side * supersample
    canvas = Image.new("L", (big, big), 0)
    draw = ImageDraw.Draw(canvas)
    cx, cy = obj.center[0] * big, obj.center[1] * big
    r = SIZE_FRACTION[obj.size] * big / 2
    polygon = _polygon(obj.shape, cx, cy, r, obj.angle)
    if polygon is None:
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=255)
    else:
        draw.polygon(polygon, fill=255)
    return np.asarray(canvas.resize((side, side), Image.Resampling.BOX), dtype=np.float32) / 255.0


def texture_pattern(texture: str, side: int, rng: np.random.Generator) -> np.ndarray:
    """``(side, side)`` in {0, 1}: 1 where the object shows its colour, 0 its lighter shade."""
    period = max(4, side // 14)
    y, x = np.mgrid[0:side, 0:side]
    phase = rng.integers(0, period)
    if texture == "striped":
        direction = rng.integers(0, 3)
        coord = (x, y, x + y)[direction]
        return (((coord + phase) // (period // 2)) % 2 == 0).astype(np.float32)
    if texture == "dotted":
        dx = (x + phase) % period - period / 2 + 0.5
        dy = (y + phase) % period - period / 2 + 0.5
        return (dx**2 + dy**2 > (period * 0.3) ** 2).astype(np.float32)
    if texture == "checkered":
        cell = period // 2
        return ((((x + phase) // cell) + ((y + phase) // cell)) % 2 == 0).astype(np.float32)
    return np.ones((side, side), np.float32)


def render(image: WorldImage, side: int, rng: np.random.Generator, noise: float = 3.0) -> np.ndarray:
    """Draw ``image`` as a ``(side, side, 3)`` uint8 array."""
    canvas = np.empty((side, side, 3), np.float32)
    canvas[:] = BACKGROUNDS[image.background]
    for obj in image.objects:
        mask = object_mask(obj, side)[..., None]
        colour = np.asarray(obj.rgb, np.float32)
        shade = colour + 0.6 * (255 - colour)  # the lighter half of a texture
        pattern = texture_pattern(obj.texture, side, rng)[..., None]
        fill = pattern * colour + (1 - pattern) * shade
        canvas = mask * fill + (1 - mask) * canvas
    canvas += rng.normal(0, noise, canvas.shape)
    return np.clip(np.round(canvas), 0, 255).astype(np.uint8)
