"""Why ComCa does or does not beat the plain retrieval cache in the ``weak-zero-shot`` world setting.

    python benchmarks/comca_weak_diag.py RUN_DIR [--model embedded]

RUN_DIR is a finished ``vlmkit comca bench --setting weak-zero-shot --seed S --out RUN_DIR`` (its
pool and evaluation split are reused; embeddings come from the cache). It measures:

1. **What image-to-image similarity sees**: the mean cosine between evaluation images that share
   only their shape, only their colour, only their texture, only their size, or nothing of these;
   the cache votes through this similarity.
2. **The object mix of each cache**: for each attribute, the total-variation distance between the
   shapes of its cached images and the shapes of its positives in the evaluation split (0: the
   cache covers objects as the test does), averaged over attributes; and the share of positives
   whose shape has no cached image for that attribute.
3. **The same caches rebuilt** with the nucleus at 1.0 (every object the prior allows), to tell
   the sampler's nucleus apart from the object-conditioned queries themselves.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from vlmkit.attributes.comca import (
    ComCaConfig,
    build_cache,
    comca_scores,
    zero_shot_logits,
    zero_shot_text,
)
from vlmkit.attributes.prior import cooccurrence, prior
from vlmkit.attributes.world_bench import (
    GROUPS,
    caption_index,
    compatibility,
    labels,
    object_terms,
    rare_attribute_terms,
    scenes,
)
from vlmkit.data.datasets import load_dataset
from vlmkit.embed import embed_images
from vlmkit.metrics.attributes import attribute_map
from vlmkit.models import load_model
from vlmkit.runs.cache import EmbeddingCache


def similarity_structure(images: np.ndarray, attrs: list[dict], pairs: int = 20000, seed: int = 0) -> dict[str, float]:
    """Mean cosine of random image pairs, grouped by which of shape/colour/texture/size they share."""
    rng = np.random.default_rng(seed)
    i, j = rng.integers(len(images), size=(2, pairs))
    keep = i != j
    i, j = i[keep], j[keep]
    cos = np.einsum("nd,nd->n", images[i], images[j])
    names = ("shape", *GROUPS)
    same = {n: np.asarray([attrs[a][n] == attrs[b][n] for a, b in zip(i, j, strict=True)]) for n in names}
    out = {}
    for n in names:
        only = same[n] & ~np.any([same[m] for m in names if m != n], axis=0)
        out[f"only {n}"] = round(float(cos[only].mean()), 4) if only.any() else None
    none = ~np.any([same[m] for m in names], axis=0)
    out["none of these"] = round(float(cos[none].mean()), 4)
    return out


def object_mix(built, truth: dict, attributes, shapes_pos: list[np.ndarray], shape_names: list[str]) -> dict[str, float]:
    tv, uncovered = [], []
    for a in range(len(attributes)):
        cached = [truth[Path(p).stem] for p, s in zip(built.paths, built.source, strict=True) if s == a]
        c = np.asarray([cached.count(s) for s in shape_names], float)
        t = np.asarray([(shapes_pos[a] == s).sum() for s in shape_names], float)
        if t.sum() == 0 or c.sum() == 0:
            continue
        tv.append(0.5 * np.abs(c / c.sum() - t / t.sum()).sum())
        uncovered.append(float(np.isin(shapes_pos[a], [s for s, n in zip(shape_names, c, strict=True) if n == 0]).mean()))
    return {"shape_tv_distance": round(float(np.mean(tv)), 3), "positives_with_uncached_shape": round(float(np.mean(uncovered)), 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--model", default="embedded")
    args = parser.parse_args()
    torch.set_num_threads(1)
    result = json.loads((args.run / "result.json").read_text())
    seed, k = result["seed"], result["k"]
    model, cache = load_model(args.model), EmbeddingCache()
    pool, evaluation = load_dataset(args.run / "pool" / "manifest.jsonl"), load_dataset(args.run / "eval" / "manifest.jsonl")
    attributes, objects = rare_attribute_terms(), object_terms()
    index = caption_index(model, pool, cache=cache)
    truth = {f"{scene.index:06d}": scene.objects[0].shape for scene, _ in scenes(len(pool), seed)}
    pi = prior(cooccurrence([s.caption or "" for s in pool.samples], attributes, objects), compatibility())
    images = embed_images(model, evaluation.paths, cache=cache).vectors
    y = labels(evaluation)
    shapes = np.asarray([s.attributes["shape"] for s in evaluation.samples])
    shapes_pos = [shapes[y[:, a] == 1] for a in range(len(attributes))]
    shape_names = [o.name for o in objects]
    z = zero_shot_logits(images, zero_shot_text(model, attributes))
    names = [a.name for a in attributes]
    report = {"run": str(args.run), "seed": seed, "similarity": similarity_structure(images, [s.attributes for s in evaluation.samples])}
    caches = {
        "retrieval cache": (None, None, ComCaConfig(k=k, seed=seed)),
        "ComCa": (objects, pi, ComCaConfig(k=k, seed=seed)),
        "ComCa, nucleus 1.0": (objects, pi, ComCaConfig(k=k, seed=seed, nucleus=1.0)),
    }
    for name, (objs, p, cfg) in caches.items():
        built = build_cache(index, model, model, attributes, objs, p, cfg, cache)
        report[name] = {"mAP": round(attribute_map(comca_scores(images, z, built, cfg), y, names)["mAP"], 4),
                        **object_mix(built, truth, attributes, shapes_pos, shape_names)}
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
