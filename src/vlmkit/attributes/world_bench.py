"""A shapes-world attribute benchmark for ComCa with exact ground truth.

Each image's object carries three attributes at once: a colour (8), a texture (4) and a size (2),
14 attributes in all; the objects are the 6 shapes. The world follows rules that make the
attribute-object prior matter: some combinations never occur (``IMPOSSIBLE``) and some are rare
(``RARE``, kept with probability 0.1), in the retrieval pool and in the evaluation split alike.

- the pool: captioned scenes (seed ``s``) with no attribute labels, indexed for retrieval;
- the evaluation split: labelled scenes (seed ``s + 1``); for each image an attribute is
  positive when the object has it and negative otherwise (no unknowns);
- compatibility scores that state the rules (0 impossible, 2 rare, 10 otherwise), the stand-in
  for the paper's LLM scores, and co-occurrence counts from the pool's captions.

Methods: zero-shot, a plain retrieval cache (queries without objects), and ComCa with the prior
from co-occurrence x compatibility, co-occurrence only, and compatibility only.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from vlmkit.attributes.prior import Term
from vlmkit.data import world as w
from vlmkit.data.datasets import Sample, write_manifest
from vlmkit.data.world_sample import SHAPE_WORDS, SIZE_WORDS, TEXTURE_ADJECTIVES, sample_image

GROUPS = ("color", "texture", "size")
IMPOSSIBLE = {("star", "blue"), ("star", "green"), ("cross", "yellow"), ("circle", "striped"), ("hexagon", "dotted"), ("square", "pink"), ("triangle", "large")}
RARE = {("triangle", "red"), ("circle", "checkered"), ("square", "small"), ("hexagon", "purple"), ("cross", "dotted")}
RARE_KEEP = 0.1


def attribute_terms() -> list[Term]:
    synonyms = {**{c: (c,) for c in w.COLOURS}, **TEXTURE_ADJECTIVES, **SIZE_WORDS}
    return [Term(value, tuple(synonyms[value])) for group in GROUPS for value in w.ATTRIBUTES[group]]


def object_terms() -> list[Term]:
    return [Term(shape, tuple(SHAPE_WORDS[shape])) for shape in w.SHAPES]


def compatibility() -> np.ndarray:
    """``(A, O)`` rule scores: 0 impossible, 2 rare, 10 otherwise."""
    attribute = {t.name: i for i, t in enumerate(attribute_terms())}
    shape = {t.name: j for j, t in enumerate(object_terms())}
    scores = np.full((len(attribute), len(shape)), 10.0)
    for pairs, score in ((IMPOSSIBLE, 0.0), (RARE, 2.0)):
        for name, value in pairs:
            scores[attribute[value], shape[name]] = score
    return scores


def scenes(n: int, seed: int) -> list[tuple]:
    """``n`` scenes of world ``seed`` that obey the rules (rejection sampling, deterministic)."""
    keep_rng = np.random.default_rng([seed, 999])
    out, index = [], 0
    while len(out) < n:
        scene, rng = sample_image(index, seed)
        index += 1
        obj = scene.objects[0]
        combos = {(obj.shape, getattr(obj, group)) for group in GROUPS}
        if combos & IMPOSSIBLE:
            continue
        if combos & RARE and keep_rng.random() > RARE_KEEP:
            continue
        out.append((scene, rng))
    return out


def write_split(out: Path, n: int, seed: int, labelled: bool, side: int = 96) -> Path:
    """Render a split; the pool keeps captions only, the evaluation split keeps attributes."""
    from vlmkit.runs.progress import track

    (out / "images").mkdir(parents=True, exist_ok=True)
    samples = []
    for scene, rng in track(scenes(n, seed), f"rendering {out.name}", total=n):
        path = out / "images" / f"{scene.index:06d}.png"
        Image.fromarray(w.render(scene, side, rng)).save(path)
        obj = scene.objects[0]
        attributes = {"shape": obj.shape, **{g: getattr(obj, g) for g in GROUPS}} if labelled else {}
        samples.append(Sample(path=path, caption=scene.caption, attributes=attributes))
    return write_manifest(samples, out / "manifest.jsonl")


def labels(dataset) -> np.ndarray:
    """``(n, A)`` labels in {0, 1} of the evaluation split, in :func:`attribute_terms` order."""
    names = [t.name for t in attribute_terms()]
    out = np.zeros((len(dataset.samples), len(names)), np.int64)
    for i, sample in enumerate(dataset.samples):
        for group in GROUPS:
            out[i, names.index(sample.attributes[group])] = 1
    return out
