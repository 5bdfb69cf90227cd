"""Where ComCa loses to the plain retrieval cache in the ``weak-zero-shot`` world setting.

    python benchmarks/comca_weak_ablate.py RUN_DIR [--draws 30] [--out FILE.json]

RUN_DIR is a finished ``vlmkit comca bench --model embedded --setting weak-zero-shot --seed S
--out RUN_DIR``; its pool, evaluation split and cached embeddings are reused. Every number is
mAP on the run's evaluation split (AP per attribute, arXiv 2503.19145 §4). Sections:

1. ``caches``: the plain cache and ComCa under each prior (co-occurrence x compatibility,
   co-occurrence only, compatibility only, uniform, the whole prior at nucleus 1.0), with
   head / medium / tail, mAP per attribute group (colour, texture, size) and label precision.
2. ``k``: images per attribute, 8 / 16 / 32 / 64, for both caches.
3. ``scoring``: both caches under a grid of the soft-label mix ``alpha``, kernel sharpness
   ``beta`` and cache weight ``lambda`` (official 0.6 / 1 / 1.17), and how many grid points
   put ComCa above the plain cache.
4. ``labels``: the official one-hot ``Y`` against the oracle multi-hot ``Y`` (all three true
   attributes of each cached image, which no method can know), at ``alpha`` 0.6 and 0.
5. ``image_sets``: which images. Caches of *correct* images drawn at random from the pool
   (``--draws`` draws, mean and standard deviation), all scored with the official constants:
   16 random positives per attribute; the plain cache's shapes with random positives of each
   (shape, attribute); ComCa's sampled objects with random positives of each (object,
   attribute); ComCa with its wrong-label images replaced by random positives of the same
   object. The differences split the gap between the two caches into the object mix, the
   particular images retrieval picks, and label errors.
"""

from __future__ import annotations

import argparse
import itertools
import json
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from vlmkit.attributes.comca import (
    Cache,
    ComCaConfig,
    build_cache,
    comca_scores,
    soft_labels,
    value_text,
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

GROUP_OF = {"color": range(0, 8), "texture": range(8, 12), "size": range(12, 14)}  # rare_attribute_terms order
ALPHAS, BETAS, LAMBDAS = (0.6, 0.3, 0.0), (0.5, 1.0, 2.0, 3.0), (0.3, 1.17, 3.0, 10.0, 100.0)


@dataclass
class Setup:
    """One bench run's data: evaluation embeddings ``(n, d)``, labels ``(n, A)``, zero-shot logits
    ``(n, A)``, value text ``T_A`` ``(A, d)``; the pool's keys ``(P, d)``, which attributes each pool
    image has ``(P, A)`` and its shape ``(P,)``; the index, the model and the prior."""

    seed: int
    names: list[str]
    images: np.ndarray
    y: np.ndarray
    z: np.ndarray
    t_a: np.ndarray
    pool_keys: np.ndarray
    pool_has: np.ndarray
    pool_shape: np.ndarray
    position: dict[str, int]
    index: object
    model: object
    cache: EmbeddingCache
    cooc: np.ndarray


def load_setup(run: Path, model_name: str) -> Setup:
    result = json.loads((run / "result.json").read_text())
    seed = result["seed"]
    model, cache = load_model(model_name), EmbeddingCache()
    pool, evaluation = load_dataset(run / "pool" / "manifest.jsonl"), load_dataset(run / "eval" / "manifest.jsonl")
    attributes, objects = rare_attribute_terms(), object_terms()
    names = [a.name for a in attributes]
    truth = {f"{scene.index:06d}": scene.objects[0] for scene, _ in scenes(len(pool), seed)}
    main = [truth[Path(p).stem] for p in pool.paths]
    images = embed_images(model, evaluation.paths, cache=cache).vectors.astype(np.float64)
    return Setup(
        seed=seed, names=names, images=images, y=labels(evaluation),
        z=zero_shot_logits(images, zero_shot_text(model, attributes)).astype(np.float64),
        t_a=value_text(model, attributes).numpy().astype(np.float64),
        pool_keys=embed_images(model, pool.paths, cache=cache).vectors.astype(np.float64),
        pool_has=np.asarray([[name in {getattr(o, g) for g in GROUPS} for name in names] for o in main]),
        pool_shape=np.asarray([o.shape for o in main]),
        position={str(Path(p).resolve()): i for i, p in enumerate(pool.paths)},
        index=caption_index(model, pool, cache=cache), model=model, cache=cache,
        cooc=cooccurrence([s.caption or "" for s in pool.samples], attributes, objects),
    )


def retrieve(setup: Setup, pi: np.ndarray | None, cfg: ComCaConfig) -> tuple[np.ndarray, np.ndarray]:
    """Pool positions and source attributes of a cache: ComCa with prior ``pi``, plain with ``None``."""
    objects = object_terms() if pi is not None else None
    built = build_cache(setup.index, setup.model, setup.model, rare_attribute_terms(), objects, pi, cfg, setup.cache)
    return np.asarray([setup.position[str(Path(p).resolve())] for p in built.paths]), built.source


def labelled(setup: Setup, positions: np.ndarray, source: np.ndarray, cfg: ComCaConfig, multi_hot: bool = False) -> Cache:
    """A cache of pool images with the official soft labels, or with the oracle multi-hot ``Y``."""
    keys = setup.pool_keys[positions]
    if not multi_hot:
        return Cache(keys, soft_labels(keys, source, setup.t_a, cfg), source)
    values = cfg.alpha * keys @ setup.t_a.T + (1 - cfg.alpha) * setup.pool_has[positions].astype(float)
    values = (values - values.mean(1, keepdims=True)) / values.std(1, keepdims=True) * cfg.row_std + cfg.row_mean
    return Cache(keys, values, source)


def evaluate(setup: Setup, cache: Cache, cfg: ComCaConfig) -> dict[str, float]:
    """mAP, head / medium / tail, and mAP per attribute group."""
    r = attribute_map(comca_scores(setup.images, setup.z, cache, cfg), setup.y, setup.names)
    out = {k: round(r[k], 4) for k in ("mAP", "head", "medium", "tail")}
    aps = list(r["ap"].values())
    out.update({g: round(float(np.mean([aps[i] for i in idx])), 4) for g, idx in GROUP_OF.items()})
    return out


def precision(setup: Setup, positions: np.ndarray, source: np.ndarray) -> float:
    return round(float(setup.pool_has[positions, source].mean()), 4)


def draw(setup: Setup, rng: np.random.Generator, spec: list[tuple[int, str | None]]) -> tuple[np.ndarray, np.ndarray]:
    """One random cache: for each ``(attribute, shape or None)`` entry, an unused pool image that has
    the attribute (and the shape)."""
    taken: set[int] = set()
    positions = []
    for a, shape in spec:
        mask = setup.pool_has[:, a] & ((setup.pool_shape == shape) if shape is not None else True)
        candidates = [i for i in np.flatnonzero(mask) if i not in taken]
        pick = int(rng.choice(candidates))
        taken.add(pick)
        positions.append(pick)
    return np.asarray(positions), np.asarray([a for a, _ in spec])


def summary(values: list[float]) -> dict[str, float]:
    return {"mean": round(float(np.mean(values)), 4), "sd": round(float(np.std(values, ddof=1)), 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--model", default="embedded")
    parser.add_argument("--draws", type=int, default=30)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(1)
    setup = load_setup(args.run, args.model)
    cfg = ComCaConfig(seed=setup.seed)
    compat = compatibility()
    priors = {"ComCa (co-occurrence x compatibility)": prior(setup.cooc, compat), "ComCa (co-occurrence only)": prior(setup.cooc, None),
              "ComCa (compatibility only)": prior(None, compat), "ComCa (uniform prior)": np.ones_like(compat)}
    report: dict = {"run": str(args.run), "seed": setup.seed, "caches": {}, "k": {}, "scoring": {}, "labels": {}, "image_sets": {}}

    built = {"plain retrieval cache": retrieve(setup, None, cfg), **{m: retrieve(setup, pi, cfg) for m, pi in priors.items()},
             "ComCa, nucleus 1.0": retrieve(setup, priors["ComCa (co-occurrence x compatibility)"], replace(cfg, nucleus=1.0))}
    for method, (positions, source) in built.items():
        report["caches"][method] = {**evaluate(setup, labelled(setup, positions, source, cfg), cfg),
                                    "label_precision": precision(setup, positions, source)}
    plain, comca = built["plain retrieval cache"], built["ComCa (co-occurrence x compatibility)"]

    for k in (8, 16, 32, 64):
        kcfg = replace(cfg, k=k)
        report["k"][k] = {m: evaluate(setup, labelled(setup, *retrieve(setup, pi, kcfg), kcfg), kcfg)["mAP"]
                          for m, pi in (("plain", None), ("ComCa", priors["ComCa (co-occurrence x compatibility)"]))}

    wins = 0
    for alpha, beta, lam in itertools.product(ALPHAS, BETAS, LAMBDAS):
        c = replace(cfg, alpha=alpha, beta=beta, lam=lam)
        row = {m: evaluate(setup, labelled(setup, *cache, c), c)["mAP"] for m, cache in (("plain", plain), ("ComCa", comca))}
        report["scoring"][f"alpha={alpha} beta={beta} lambda={lam}"] = row
        wins += row["ComCa"] > row["plain"]
    report["scoring_comca_wins"] = f"{wins} of {len(ALPHAS) * len(BETAS) * len(LAMBDAS)}"

    for alpha in (0.6, 0.0):
        c = replace(cfg, alpha=alpha)
        for multi_hot in (False, True):
            report["labels"][f"alpha={alpha} {'multi-hot (oracle)' if multi_hot else 'one-hot'}"] = {
                m: evaluate(setup, labelled(setup, *cache, c, multi_hot), c)["mAP"] for m, cache in (("plain", plain), ("ComCa", comca))}

    shapes = setup.pool_shape
    specs = {
        "random positives": [(a, None) for a in range(len(setup.names)) for _ in range(cfg.k)],
        "plain's shapes, random positives": [(int(a), shapes[p]) for p, a in zip(*plain, strict=True)],
        "ComCa's objects, random positives": [(int(a), shapes[p]) for p, a in zip(*comca, strict=True)],
    }
    for offset, (name, spec) in enumerate(specs.items()):
        rng = np.random.default_rng([setup.seed, offset])
        report["image_sets"][name] = summary([evaluate(setup, labelled(setup, *draw(setup, rng, spec), cfg), cfg)["mAP"]
                                              for _ in range(args.draws)])
    positions, source = comca
    wrong = ~setup.pool_has[positions, source]
    rng, values = np.random.default_rng([setup.seed, len(specs)]), []
    for _ in range(args.draws):
        taken, fixed = set(positions[~wrong].tolist()), positions.copy()
        for j in np.flatnonzero(wrong):
            candidates = [i for i in np.flatnonzero(setup.pool_has[:, source[j]] & (shapes == shapes[positions[j]])) if i not in taken]
            fixed[j] = int(rng.choice(candidates))
            taken.add(int(fixed[j]))
        values.append(evaluate(setup, labelled(setup, fixed, source, cfg), cfg)["mAP"])
    report["image_sets"][f"ComCa, its {int(wrong.sum())} wrong-label images replaced"] = summary(values)
    text = json.dumps(report, indent=1)
    if args.out:
        args.out.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
