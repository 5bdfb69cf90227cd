"""How ComCa's object sampling shapes its cache in the ``weak-zero-shot`` world setting.

    python benchmarks/comca_weak_objects.py RUN_DIR [--draws 30] [--out FILE.json]

RUN_DIR is a finished ``vlmkit comca bench --model embedded --setting weak-zero-shot --seed S
--out RUN_DIR``. The official sampler (arXiv 2503.19145 §3, "top-0.8_weighted") draws the 16
objects of an attribute independently, with replacement, from a near-uniform distribution over
the nucleus. Image similarity in the world is dominated by size and shape, so the number of
cached images of each shape decides much of every attribute's score. Two sections, all scored
with the official constants:

1. ``random_positives``: caches of *correct* images drawn at random from the pool (mean and
   standard deviation over ``--draws`` draws), the objects allocated five ways: the attribute's
   own shape mix in the pool, by independent draws or by stratified counts (largest remainder
   of ``k p(shape | attribute)``); every shape the world allows with the attribute (compatibility
   > 0), stratified; ComCa's sampler, by independent draws (a fresh sampler seed per draw) or by
   stratified counts of its distribution (:func:`vlmkit.attributes.prior.sampling_probabilities`).
   Where the pool runs out of a rare (shape, attribute) pair, another positive of the attribute
   stands in (``images_off_shape``, over all draws).
2. ``retrieved``: the real caches (caption retrieval, one image per object query), with the
   official draws and with stratified counts of the same distribution, at nucleus 0.8 (official)
   and 1.0, for the co-occurrence x compatibility and compatibility-only priors; and the plain
   retrieval cache.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from comca_weak_ablate import Setup, evaluate, labelled, load_setup, precision, retrieve, summary

from vlmkit.attributes.comca import ComCaConfig, build_cache
from vlmkit.attributes.prior import prior, sample_all, sampling_probabilities
from vlmkit.attributes.world_bench import compatibility, object_terms, rare_attribute_terms


def stratified(p: np.ndarray, k: int) -> np.ndarray:
    """``(k,)`` object indices with counts ``floor(k p)`` plus one for the largest remainders."""
    counts = np.floor(k * p).astype(int)
    counts[np.argsort(-(k * p - counts), kind="stable")[: k - counts.sum()]] += 1
    return np.repeat(np.arange(len(p)), counts)


def draw_cache(setup: Setup, rng: np.random.Generator, shapes_per_attribute: list[np.ndarray],
               shortfalls: list[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """For each attribute and each listed shape name, an unused pool image with both; where the
    pool has no unused image of a (rare) pair, an unused image of the attribute with any shape,
    counted in ``shortfalls``."""
    taken: set[int] = set()
    positions, source = [], []
    for a, shapes in enumerate(shapes_per_attribute):
        for shape in shapes:
            candidates = [i for i in np.flatnonzero(setup.pool_has[:, a] & (setup.pool_shape == shape)) if i not in taken]
            if not candidates:
                candidates = [i for i in np.flatnonzero(setup.pool_has[:, a]) if i not in taken]
                if shortfalls is not None:
                    shortfalls.append(1)
            pick = int(rng.choice(candidates))
            taken.add(pick)
            positions.append(pick)
            source.append(a)
    return np.asarray(positions), np.asarray(source)


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
    k, names = cfg.k, np.asarray([o.name for o in object_terms()])
    compat = compatibility()
    pi = prior(setup.cooc, compat)
    mix = np.asarray([[np.mean(setup.pool_shape[setup.pool_has[:, a]] == s) for s in names] for a in range(len(setup.names))])
    allowed = (compat > 0) / (compat > 0).sum(1, keepdims=True)
    official = np.asarray([sampling_probabilities(row, cfg.nucleus) for row in pi])
    allocations = {
        "attribute's shape mix, independent draws": lambda rng: [names[rng.choice(len(names), k, p=row)] for row in mix],
        "attribute's shape mix, stratified": lambda rng: [names[stratified(row, k)] for row in mix],
        "every allowed shape, stratified": lambda rng: [names[stratified(row, k)] for row in allowed],
        "ComCa's sampler, independent draws": lambda rng: list(names[sample_all(pi, k, cfg.nucleus, int(rng.integers(2**31)))]),
        "ComCa's sampler, stratified": lambda rng: [names[stratified(row, k)] for row in official],
    }
    report: dict = {"run": str(args.run), "seed": setup.seed, "random_positives": {}, "retrieved": {}}
    for offset, (name, allocate) in enumerate(allocations.items()):
        rng = np.random.default_rng([setup.seed, 100 + offset])
        shortfalls: list[int] = []
        caches = (labelled(setup, *draw_cache(setup, rng, allocate(rng), shortfalls), cfg) for _ in range(args.draws))
        report["random_positives"][name] = {**summary([evaluate(setup, cache, cfg)["mAP"] for cache in caches]),
                                            "images_off_shape": len(shortfalls)}
    plain = retrieve(setup, None, cfg)
    report["retrieved"]["plain retrieval cache"] = {"mAP": evaluate(setup, labelled(setup, *plain, cfg), cfg)["mAP"],
                                                    "label_precision": precision(setup, *plain)}
    for prior_name, p in (("co-occurrence x compatibility", pi), ("compatibility only", prior(None, compat))):
        for nucleus in (0.8, 1.0):
            c = replace(cfg, nucleus=nucleus)
            for how in ("official draws", "stratified"):
                sampled = None if how == "official draws" else np.stack([stratified(sampling_probabilities(row, nucleus), k) for row in p])
                built = build_cache(setup.index, setup.model, setup.model, rare_attribute_terms(), object_terms(), p, c, setup.cache,
                                    sampled=sampled)
                positions = np.asarray([setup.position[str(Path(q).resolve())] for q in built.paths])
                report["retrieved"][f"ComCa ({prior_name}), nucleus {nucleus}, {how}"] = {
                    "mAP": evaluate(setup, labelled(setup, positions, built.source, c), c)["mAP"],
                    "label_precision": precision(setup, positions, built.source)}
    text = json.dumps(report, indent=1)
    if args.out:
        args.out.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
