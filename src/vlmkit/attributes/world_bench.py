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

Settings (:data:`SETTINGS`, ``vlmkit comca bench --setting``):

- ``default``: the world's own attribute words; retrieval is text-to-image through the inference
  model (its index of the pool's images).
- ``weak-zero-shot``: ComCa's premise (arXiv 2503.19145, §1): zero-shot attribute prompts are
  weak while a captioned web collection, searched through its alt-text, finds correct images.
  The attributes are named by words the model never saw in training (``data/world-rare-synonyms.txt``:
  crimson, lined, tiny, ...), so zero-shot has headroom; the pool's captions use those same words
  (:func:`rewrite_caption`: web alt-text knows "crimson" even where the model does not), and
  retrieval goes through the captions (:func:`caption_index`, text-to-text with the model's text
  tower), as search over alt-text does. Keys are still the inference model's image embeddings,
  so the cache adds image-to-image similarity, which is where the model is strong.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from PIL import Image

from vlmkit.attributes.prior import Term, parse_terms
from vlmkit.data import world as w
from vlmkit.data.datasets import Sample, write_manifest
from vlmkit.data.world_sample import SHAPE_WORDS, SIZE_WORDS, TEXTURE_ADJECTIVES, sample_image
from vlmkit.embed import embed_texts
from vlmkit.metrics.attributes import label_matrix
from vlmkit.retrieval.index import ImageIndex, Item, make_index

GROUPS = ("color", "texture", "size")
IMPOSSIBLE = {("star", "blue"), ("star", "green"), ("cross", "yellow"), ("circle", "striped"), ("hexagon", "dotted"), ("square", "pink"),
              ("triangle", "large")}
RARE = {("triangle", "red"), ("circle", "checkered"), ("square", "small"), ("hexagon", "purple"), ("cross", "dotted")}
RARE_KEEP = 0.1
SETTINGS = ("default", "weak-zero-shot")
RARE_SYNONYMS = Path(__file__).parent / "data" / "world-rare-synonyms.txt"


def attribute_terms() -> list[Term]:
    synonyms = {**{c: (c,) for c in w.COLOURS}, **TEXTURE_ADJECTIVES, **SIZE_WORDS}
    return [Term(value, tuple(synonyms[value])) for group in GROUPS for value in w.ATTRIBUTES[group]]


def rare_attribute_terms() -> list[Term]:
    """The 14 attributes under the shipped unseen synonyms (``data/world-rare-synonyms.txt``)."""
    by_name = {t.name: t for t in parse_terms(RARE_SYNONYMS.read_text(encoding="utf-8").splitlines())}
    return [by_name[t.name] for t in attribute_terms()]


def rewrite_caption(text: str, attributes: list[Term]) -> str:
    """``text`` with each attribute's world words (:func:`attribute_terms` synonyms, whole words)
    replaced by the first synonym of the same-named term in ``attributes``, and "a"/"an" fixed:
    "an orange star with dots" -> "a tangerine star with dots" for the rare synonyms."""
    by_name = {t.name: t.synonyms[0] for t in attributes}
    for term in attribute_terms():
        if by_name.get(term.name, term.synonyms[0]) not in term.synonyms:
            pattern = r"\b(" + "|".join(re.escape(s) for s in sorted(term.synonyms, key=len, reverse=True)) + r")\b"
            text = re.sub(pattern, by_name[term.name], text)
    return re.sub(r"\b([Aa]n?) (\w)", lambda m: f"{m[1][0]}{'n' if m[2][0] in 'aeiou' else ''} {m[2]}", text)


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


def write_split(out: Path, n: int, seed: int, labelled: bool, side: int = 96, words: list[Term] | None = None) -> Path:
    """Render a split; the pool keeps captions only, the evaluation split keeps attributes.
    ``words``: write the captions with these attribute synonyms (:func:`rewrite_caption`)."""
    from vlmkit.runs.progress import track

    (out / "images").mkdir(parents=True, exist_ok=True)
    samples = []
    for scene, rng in track(scenes(n, seed), f"rendering {out.name}", total=n):
        path = out / "images" / f"{scene.index:06d}.png"
        Image.fromarray(w.render(scene, side, rng)).save(path)
        obj = scene.objects[0]
        attributes = {"shape": obj.shape, **{g: getattr(obj, g) for g in GROUPS}} if labelled else {}
        text = rewrite_caption(scene.caption, words) if words is not None else scene.caption
        samples.append(Sample(path=path, caption=text, attributes=attributes))
    return write_manifest(samples, out / "manifest.jsonl")


def labels(dataset) -> np.ndarray:
    """``(n, A)`` labels in {0, 1} of the evaluation split, in :func:`attribute_terms` order."""
    names = [t.name for t in attribute_terms()]
    return label_matrix([{sample.attributes[group]: 1 for group in GROUPS} for sample in dataset.samples], names, missing=0)



class CaptionIndex(ImageIndex):
    """An :class:`ImageIndex` whose vectors are the items' caption embeddings: identical captions of
    different images are kept (near-duplicate removal compares vectors, which would merge them)."""

    def search(self, queries: np.ndarray, k: int = 10, dedup: bool = True, dedup_cosine: float = 0.99) -> list:
        return super().search(queries, k, dedup=dedup, dedup_cosine=float("inf"))


def caption_index(model, dataset, cache=None, batch_size: int = 256) -> CaptionIndex:
    """An index of ``dataset``'s images searched through their captions: each item's vector is the
    unit text embedding ``(d,)`` of its caption by ``model``'s text tower, so a text query finds
    the images whose alt-text says the same thing (text-to-text, as search over web alt-text)."""
    captions = [s.caption or "" for s in dataset.samples]
    vectors = embed_texts(model, captions, batch_size=batch_size, cache=cache).vectors
    items = [Item(str(Path(s.path).resolve()), str(s.path), s.caption) for s in dataset.samples]
    index, kind = make_index(vectors, "exact")
    return CaptionIndex(index, items,
                        {"model": model.name, "kind": kind, "items": len(items), "dim": int(vectors.shape[1]), "searched_by": "captions"})
