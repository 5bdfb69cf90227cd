"""A personalisation set in the shapes world (``vlmkit world personal``), for R2P.

Each *personal concept* is one specific object: a category (its shape) plus identity details —
a colour with a particular shade (a hue offset inside the named colour), a texture, a size and
optionally a second small *mark* (a small shape of another colour beside it). Views of it vary
what a personal photo varies: position, background, rotation, pixel noise, a small hue jitter.
Distractors share the category and differ by identity details:

- ``ambiguity="low"``: a distractor differs from its concept in colour *and* texture;
- ``ambiguity="high"``: it differs in exactly one detail (the shade, the texture, the mark, or
  the size), and concepts come in pairs of the same category, so concepts are look-alikes too.

Written: ``concepts/<id>/concept.json`` and ``ref_<k>.png`` (the layout ``vlmkit r2p build``
reads), ``queries/*.png`` and ``manifest.jsonl`` (one row per query: ``path``, ``concept`` = the
true id or ``null``, ``distractor_of``, ``details``), and ``world.json`` (every identity).
Views of references and queries come from disjoint random streams, so no image is both.
"""

from __future__ import annotations

import colorsys
import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
from PIL import Image

from vlmkit.data import world as w
from vlmkit.errors import UserError

DRAWS_PER_DISTRACTOR = 200  # random changes tried per look-alike asked for before giving up

VIEW_POSITIONS = ("left", "right", "top", "bottom")
OPPOSITE = {"left": "right", "right": "left", "top": "bottom", "bottom": "top"}
SHADE = 0.045  # hue offset of a concept's particular shade (the world's hue jitter is 0.015)
HIGH_CHANGES = ("shade", "texture", "mark", "size")


@dataclass(frozen=True)
class Identity:
    """What makes a personal object itself: ``shade`` in {-1, 0, 1} (times :data:`SHADE`),
    ``mark`` = ``(shape, colour)`` of a small second shape, or ``None``."""

    shape: str
    color: str
    shade: int
    texture: str
    size: str
    mark: tuple[str, str] | None

    def details(self) -> dict:
        return {**asdict(self), "mark": list(self.mark) if self.mark else None}


def _pick(rng, values):
    return values[int(rng.integers(len(values)))]


def _random_identity(rng, shape: str) -> Identity:
    mark = (_pick(rng, w.SHAPES), _pick(rng, tuple(w.COLOURS))) if rng.random() < 0.5 else None
    return Identity(shape, _pick(rng, tuple(w.COLOURS)), int(rng.integers(-1, 2)), _pick(rng, w.TEXTURES), _pick(rng, w.SIZES), mark)


def _other(rng, values, current):
    return _pick(rng, [v for v in values if v != current])


def change_one(rng, identity: Identity, what: str) -> Identity:
    """``identity`` with one detail changed (``shade``, ``texture``, ``mark``, ``size``, ``color``)."""
    if what == "shade":
        return replace(identity, shade=_other(rng, (-1, 0, 1), identity.shade))
    if what == "texture":
        return replace(identity, texture=_other(rng, w.TEXTURES, identity.texture))
    if what == "size":
        return replace(identity, size=_other(rng, w.SIZES, identity.size))
    if what == "color":
        return replace(identity, color=_other(rng, tuple(w.COLOURS), identity.color))
    if identity.mark is None:
        return replace(identity, mark=(_pick(rng, w.SHAPES), _pick(rng, tuple(w.COLOURS))))
    if rng.random() < 0.5:
        return replace(identity, mark=None)
    return replace(identity, mark=(identity.mark[0], _other(rng, tuple(w.COLOURS), identity.mark[1])))


def shaded_rgb(color: str, shade: int, rng) -> tuple[int, int, int]:
    h, s, v = w.COLOURS[color]
    h = (h + shade * SHADE + rng.uniform(-w.HUE_JITTER, w.HUE_JITTER) / 2) % 1.0
    return tuple(int(round(255 * c)) for c in colorsys.hsv_to_rgb(h, float(np.clip(s + rng.uniform(-0.03, 0.03), 0, 1)),
                                                                     float(np.clip(v + rng.uniform(-0.03, 0.03), 0, 1))))


def render_view(identity: Identity, rng, side: int = 96) -> np.ndarray:
    """One photo of ``identity``: random position, background, rotation and noise."""
    position = _pick(rng, VIEW_POSITIONS)
    background = _pick(rng, tuple(w.BACKGROUNDS))

    def place(shape, color, size, where, rgb, texture):
        x, y = w.POSITIONS[where]
        jitter = rng.uniform(-w.POSITION_JITTER, w.POSITION_JITTER, 2)
        angle = 0.0 if shape == "circle" else float(rng.uniform(-0.25, 0.25))
        return w.WorldObject(shape, color, size, where, texture, rgb, (x + jitter[0], y + jitter[1]), angle)

    objects = [place(identity.shape, identity.color, identity.size, position, shaded_rgb(identity.color, identity.shade, rng),
                     identity.texture)]
    if identity.mark:
        objects.append(place(identity.mark[0], identity.mark[1], "small", OPPOSITE[position], w.jittered_rgb(identity.mark[1], rng),
                             "solid"))
    return w.render(w.WorldImage(0, objects, background), side, rng)


def make_identities(n_concepts: int, ambiguity: str, seed: int, distractors: int) -> tuple[list[Identity], list[list[Identity]]]:
    """The concepts' identities and, per concept, its distractors' (all distinct)."""
    rng = np.random.default_rng([seed, 7001])
    shapes = list(rng.permutation(w.SHAPES))
    concepts: list[Identity] = []
    while len(concepts) < n_concepts:
        if ambiguity == "high" and len(concepts) % 2 == 1:  # a look-alike of the previous concept
            candidate = change_one(rng, concepts[-1], _pick(rng, HIGH_CHANGES))
        else:
            candidate = _random_identity(rng, shapes[(len(concepts) // (2 if ambiguity == "high" else 1)) % len(shapes)])
        if candidate not in concepts:
            concepts.append(candidate)
    taken = set(concepts)
    out = []
    for concept in concepts:
        mine = []
        for _ in range(DRAWS_PER_DISTRACTOR * distractors):  # a concept has only so many distinct look-alikes
            if len(mine) == distractors:
                break
            if ambiguity == "high":
                candidate = change_one(rng, concept, _pick(rng, HIGH_CHANGES))
            else:
                candidate = change_one(rng, change_one(rng, concept, "color"), "texture")
            if candidate not in taken:
                taken.add(candidate)
                mine.append(candidate)
        if len(mine) < distractors:
            raise UserError(f"--distractors {distractors}: only {len(mine)} distinct look-alikes of a concept were found at "
                            f"{ambiguity} ambiguity; lower --distractors (or --concepts, which share them)")
        out.append(mine)
    return concepts, out


def generate_personal(out: str | Path, *, n_concepts: int = 6, ambiguity: str = "high", seed: int = 0, references: int = 3,
                      queries: int = 4, distractors: int = 2, side: int = 96) -> Path:
    """Write the set under ``out`` (which must not exist or be empty); returns the manifest path.

    Per concept: ``references`` reference views and ``queries`` positive queries; the same number
    of negative queries, spread over its ``distractors`` look-alikes.
    """
    from vlmkit.data.world_chat import nonce_split
    from vlmkit.runs.files import atomic_directory, atomic_write_json, atomic_write_text

    if ambiguity not in ("low", "high"):
        raise UserError(f"--ambiguity must be low or high, not {ambiguity!r}")
    held_out = nonce_split()[1]
    if not 1 <= n_concepts <= len(held_out) or references < 1 or queries < 1 or distractors < 1 or side < 32:
        raise UserError(f"need 1 <= --concepts <= {len(held_out)}, --references, --queries, --distractors >= 1 and --side >= 32")
    if Path(out).exists() and (not Path(out).is_dir() or any(Path(out).iterdir())):
        raise UserError(f"--out {out} exists and is not an empty folder; choose a new folder")
    ids = list(np.random.default_rng([seed, 7002]).permutation(held_out)[:n_concepts])
    concepts, lookalikes = make_identities(n_concepts, ambiguity, seed, distractors)
    rows, world = [], {"ambiguity": ambiguity, "seed": seed, "concepts": {}, "distractors": []}
    with atomic_directory(out) as root:
        for c, (cid, identity) in enumerate(zip(ids, concepts, strict=True)):
            folder = root / "concepts" / cid
            folder.mkdir(parents=True)
            atomic_write_json(folder / "concept.json", {"id": cid, "category": identity.shape})
            for k in range(references):
                Image.fromarray(render_view(identity, np.random.default_rng([seed, 1, c, k]), side)).save(folder / f"ref_{k}.png")
            world["concepts"][cid] = identity.details()
            world["distractors"] += [{"of": cid, **d.details()} for d in lookalikes[c]]
            for k in range(queries):
                name = f"queries/{cid}_{k}.png"
                _save(root / name, render_view(identity, np.random.default_rng([seed, 2, c, k]), side))
                rows.append({"path": name, "concept": cid, "distractor_of": None, "details": identity.details()})
            for k in range(queries):
                d = k % len(lookalikes[c])
                name = f"queries/not_{cid}_{d}_{k}.png"
                _save(root / name, render_view(lookalikes[c][d], np.random.default_rng([seed, 3, c, k]), side))
                rows.append({"path": name, "concept": None, "distractor_of": cid, "details": lookalikes[c][d].details()})
        atomic_write_text(root / "manifest.jsonl", "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))
        atomic_write_json(root / "world.json", world)
    return Path(out) / "manifest.jsonl"


def _save(path: Path, pixels: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
