"""ProactiveBench scenarios drawn in the shapes world, with ground truth, so the benchmark runs offline.

Each scenario writes episode records in a published scenario's format and runs through that
scenario's environment class (:mod:`vlmkit.proactive.envs`), so the same transitions are
exercised; frames are rendered in memory (:class:`WorldSource`). The object is one large shape
near the centre; the question asks for its shape; the categories are four shape names (one right).

- ``occlusion`` (ROD format): a grey block covers the object in frame 0; moving it left or right
  slides it (8 frames, circular); after 4 moves either way it has left the view.
- ``corruption`` (ImageNet-C format): blur, noise, darkening or contrast loss at severity 5..1;
  one enhancement matches the corruption, three do not (choosing one ends the episode).
- ``camera`` (COCO format): a crop window shows a strip of the scene (moves) or its centre
  (zoom out); each valid move widens it by one step.
- ``drawing`` (QuickDraw format): 30% of the outline, then 60%, the full outline, then the
  filled shape.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter

from vlmkit.data import world as w
from vlmkit.data.world_chat import QUESTIONS
from vlmkit.proactive import envs

SIDE = 96
WORLD_SCENARIOS = ("occlusion", "corruption", "camera", "drawing")
ABSTAIN = "I cannot tell what the object is."
ENHANCEMENTS = {
    "blur": "Deblur the image.", "noise": "Denoise the image.", "brightness": "Increase the brightness.",
    "contrast": "Increase the contrast.", "saturate": "Increase the saturation.", "jpeg": "Reduce the compression.",
    "pixelate": "Increase the resolution.", "artifacts": "Remove the artifacts.",
}
CORRUPTIONS = ("blur", "noise", "brightness", "contrast")
SEVERITY = {  # level 1..5
    "blur": (1.5, 3.0, 5.0, 8.0, 12.0),
    "noise": (20.0, 45.0, 80.0, 120.0, 170.0),
    "brightness": (0.55, 0.35, 0.2, 0.1, 0.04),
    "contrast": (0.55, 0.35, 0.2, 0.1, 0.04),
}
CAMERA_OPTIONS = {"left": "Move the camera to the left.", "right": "Move the camera to the right.", "up": "Move the camera up.",
                  "down": "Move the camera down.", "zoom": "Move farther from the object."}
OCCLUDER_FRAMES = 8


class WorldSource:
    """Frames held in memory, keyed by the relative paths the records name."""

    def __init__(self):
        self.frames: dict[str, Image.Image] = {}

    def open(self, relative: str) -> Image.Image:
        return self.frames[relative]


class WorldOcclusion(envs.ROD):
    scenario = "occlusion"
    k_proactive = 2

    def oeg_answers(self):
        return ["Move the occluding object", "Move the camera", self.answer]


class WorldCorruption(envs.ImageNetC):
    scenario = "corruption"


class WorldCamera(envs.COCO):
    scenario = "camera"


class WorldDrawing(envs.QuickDraw):
    scenario = "drawing"


CLASSES = {"occlusion": WorldOcclusion, "corruption": WorldCorruption, "camera": WorldCamera, "drawing": WorldDrawing}


def _object(rng: np.random.Generator) -> tuple[w.WorldObject, str]:
    shape = str(rng.choice(w.SHAPES))
    color = str(rng.choice(list(w.COLOURS)))
    texture = str(rng.choice(w.TEXTURES))
    background = str(rng.choice(list(w.BACKGROUNDS)))
    centre = (0.5 + rng.uniform(-0.02, 0.02), 0.5 + rng.uniform(-0.02, 0.02))
    obj = w.WorldObject(shape, color, "large", "center", texture, w.jittered_rgb(color, rng), centre, float(rng.uniform(0, 2 * np.pi)))
    return obj, background


def _base(obj: w.WorldObject, background: str, rng: np.random.Generator) -> Image.Image:
    return Image.fromarray(w.render(w.WorldImage(0, [obj], background), SIDE, rng))


def _common(kind: str, index: int, obj: w.WorldObject, rng: np.random.Generator) -> dict:
    others = [s for s in w.SHAPES if s != obj.shape]
    categories = [obj.shape, *rng.choice(others, 3, replace=False).tolist()]
    rng.shuffle(categories)
    question = str(rng.choice(QUESTIONS["shape"]))
    return {"id": index, "prompt": question, "categories": categories, "answer": obj.shape, "world": {**obj.attributes(), "scenario": kind}}


def occluded(base: Image.Image, obj: w.WorldObject, shift: int) -> Image.Image:
    """``base`` with a grey block over the object, slid sideways by ``shift`` steps of 0.16 of the side."""
    image = base.copy()
    cx, cy = (obj.center[0] + 0.16 * shift) * SIDE, obj.center[1] * SIDE
    half_w, half_h = 0.28 * SIDE, 0.31 * SIDE
    ImageDraw.Draw(image).rectangle((cx - half_w, cy - half_h, cx + half_w, cy + half_h), fill=(110, 110, 110))
    return image


def corrupted(base: Image.Image, kind: str, level: int, rng: np.random.Generator) -> Image.Image:
    """``base`` under corruption ``kind`` at severity ``level`` (1 mild .. 5 severe)."""
    amount = SEVERITY[kind][level - 1]
    if kind == "blur":
        return base.filter(ImageFilter.GaussianBlur(amount))
    if kind == "noise":
        pixels = np.asarray(base, np.float32) + rng.normal(0, amount, (SIDE, SIDE, 3))
        return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    if kind == "brightness":
        return ImageEnhance.Brightness(base).enhance(amount)
    return ImageEnhance.Contrast(base).enhance(amount)


def outline(obj: w.WorldObject, fraction: float, start: float) -> Image.Image:
    """A white canvas with ``fraction`` of the object's contour drawn from ``start`` (of the perimeter)."""
    cx, cy, r = obj.center[0] * SIDE, obj.center[1] * SIDE, w.SIZE_FRACTION[obj.size] * SIDE / 2
    points = w._polygon(obj.shape, cx, cy, r, obj.angle)
    if points is None:
        points = [(cx + r * np.cos(t), cy + r * np.sin(t)) for t in np.linspace(0, 2 * np.pi, 48, endpoint=False)]
    ring = np.asarray([*points, points[0]], np.float64)
    seg = np.linalg.norm(np.diff(ring, axis=0), axis=1)
    cum = np.concatenate([[0], np.cumsum(seg)])
    ts = (start + np.linspace(0, fraction, 80)) % 1.0 * cum[-1]
    xs, ys = np.interp(ts, cum, ring[:, 0]), np.interp(ts, cum, ring[:, 1])
    image = Image.new("RGB", (SIDE, SIDE), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    for k in range(len(ts) - 1):
        if ts[k + 1] > ts[k]:  # skip the wrap-around jump
            draw.line((xs[k], ys[k], xs[k + 1], ys[k + 1]), fill=(30, 30, 30), width=2)
    return image


def _occlusion(index, obj, base, rng, source):
    rec = _common("occlusion", index, obj, rng)
    template = f"occlusion/{index}/{{image}}.png"
    for k in range(OCCLUDER_FRAMES):
        shift = k if k <= OCCLUDER_FRAMES // 2 else k - OCCLUDER_FRAMES
        # the fourth move either way takes the occluder out of view: the informative frame shows the
        # object alone (slid by one more step, the block's edge would stay in the frame, a second object)
        reference = k == OCCLUDER_FRAMES // 2
        source.frames[template.format(image=k)] = base.copy() if reference else occluded(base, obj, shift)
    options = ["Move the occluding object to the left.", "Move the occluding object to the right.", ABSTAIN]
    return {
        **rec,
        "image_template": template,
        "first_image": 0,
        "num_images": OCCLUDER_FRAMES,
        "reference_image": OCCLUDER_FRAMES // 2,
        "options": options,
    }


def _corruption(index, obj, base, rng, source):
    rec = _common("corruption", index, obj, rng)
    kind = str(rng.choice(CORRUPTIONS))
    template = f"corruption/{index}/{{level}}.png"
    for level in range(1, 6):
        source.frames[template.format(level=level)] = corrupted(base, kind, level, rng)
    source.frames[template.format(level=0)] = base
    wrong = rng.choice([k for k in ENHANCEMENTS if k != kind], 3, replace=False).tolist()
    enhancements = [ENHANCEMENTS[k] for k in [kind, *wrong]]
    rng.shuffle(enhancements)
    rec["world"]["corruption"] = kind
    return {**rec, "image_template": template, "first_image": 5, "num_images": 5, "reference_image": 0,
            "options": [*enhancements, ABSTAIN], "quality_answer": ENHANCEMENTS[kind]}


def _camera(index, obj, base, rng, source):
    rec = _common("camera", index, obj, rng)
    direction = str(rng.choice(list(CAMERA_OPTIONS)))
    template = f"camera/{index}.png"
    source.frames[template] = base
    if direction == "zoom":
        crop, h, v = {"left": 40, "top": 40, "width": 16, "height": 16}, 8, 8
    else:
        start = {"right": {"left": 0, "top": 0, "width": 22, "height": SIDE}, "left": {"left": 74, "top": 0, "width": SIDE, "height": SIDE},
                 "down": {"left": 0, "top": 0, "width": SIDE, "height": 22}, "up": {"left": 0, "top": 74, "width": SIDE, "height": SIDE}}
        crop, h, v = start[direction], 16, 16
    rec["world"]["direction"] = direction
    return {**rec, "image_template": template, "first_image": 0, "num_images": 1, "reference_image": 0,
            "options": [CAMERA_OPTIONS[direction], ABSTAIN], "direction": direction, "granularity": 3,
            "horizontal_step": h, "vertical_step": v, "crop": crop}


def _drawing(index, obj, base, rng, source):
    rec = _common("drawing", index, obj, rng)
    template = f"drawing/{index}/{{image}}.png"
    start = float(rng.uniform())
    for k, fraction in enumerate((0.3, 0.6, 1.0)):
        source.frames[template.format(image=str(k).zfill(4))] = outline(obj, fraction, start)
    source.frames[template.format(image=str(3).zfill(4))] = base
    return {**rec, "image_template": template, "first_image": 0, "num_images": 4, "reference_image": 3,
            "options": ["Add more details to the drawing.", "I cannot tell what the drawing shows."]}


BUILDERS = {"occlusion": _occlusion, "corruption": _corruption, "camera": _camera, "drawing": _drawing}


def world_environments(scenario: str, n: int, seed: int = 0) -> list[envs.Environment]:
    """``n`` fresh episodes of a world scenario, deterministic in ``seed``."""
    source = WorldSource()
    out = []
    for index in range(n):
        rng = np.random.default_rng([seed, WORLD_SCENARIOS.index(scenario), index])
        obj, background = _object(rng)
        base = _base(obj, background, rng)
        record = BUILDERS[scenario](index, obj, base, rng, source)
        out.append(CLASSES[scenario](record, source))
    return out
