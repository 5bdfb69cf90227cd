"""``vlmkit comca bench``: the shapes-world attribute benchmark end to end (pool, index, caches,
every method, mAP table), in one of the settings of :mod:`vlmkit.attributes.world_bench`
(``default``, or ``weak-zero-shot``: unseen attribute words, alt-text that uses them, retrieval
through the captions)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydantic import Field, field_validator, model_validator

from vlmkit.attributes.comca import (
    ComCaConfig,
    build_cache,
    cache_logits,
    comca_scores,
    zero_shot_logits,
    zero_shot_text,
)
from vlmkit.attributes.prior import cooccurrence, prior
from vlmkit.attributes.world_bench import (
    SETTINGS,
    attribute_terms,
    caption_index,
    compatibility,
    labels,
    object_terms,
    rare_attribute_terms,
    write_split,
)
from vlmkit.data.datasets import load_dataset
from vlmkit.embed import embed_images
from vlmkit.errors import UserError
from vlmkit.metrics.attributes import attribute_map
from vlmkit.models import load_model
from vlmkit.report import html
from vlmkit.retrieval.index import build_index
from vlmkit.runs.options import RunOptions
from vlmkit.runs.record import Run
from vlmkit.runs.stamps import build_once

METHODS = ("zero-shot", "retrieval cache", "ComCa", "ComCa (co-occurrence only)", "ComCa (compatibility only)")


class ComCaBenchOptions(RunOptions):
    pool: int = Field(3000, ge=50)
    n: int = Field(1000, ge=20)
    k: int = Field(16, ge=1)
    attributes: Path | None = None  # other synonyms for the 14 world attributes (names must stay)
    setting: str = "default"

    @field_validator("setting")
    @classmethod
    def _known_setting(cls, value: str) -> str:
        if value not in SETTINGS:
            raise ValueError(f"unknown setting {value!r}; choose from {', '.join(SETTINGS)}")
        return value

    @model_validator(mode="after")
    def _k_within_pool(self):
        if self.k > self.pool:
            raise ValueError(f"--k {self.k} retrieves more images per attribute than the pool holds (--pool {self.pool}); lower --k")
        return self


def _split(out: Path, n: int, seed: int, labelled: bool, words=None) -> Path:
    """Render a split under ``out`` once; reuse it while its parameters match."""
    params = {"n": n, "seed": seed, "labelled": labelled, "version": 1}
    if words is not None:
        params["caption_words"] = [f"{t.name}:{t.synonyms[0]}" for t in words]
    build_once(out / "split.json", params, lambda: write_split(out, n, seed, labelled, words=words), out / "manifest.jsonl")
    return out / "manifest.jsonl"


def pool_truth(n: int, seed: int) -> dict[str, set[str]]:
    """The attributes of each pool image's object, by file stem (the pool itself is unlabelled)."""
    from vlmkit.attributes.world_bench import GROUPS, scenes

    return {f"{scene.index:06d}": {getattr(scene.objects[0], g) for g in GROUPS} for scene, _ in scenes(n, seed)}


def run_comca_bench(opts: ComCaBenchOptions) -> Path:
    run = Run(opts.out, "comca bench", opts.model_dump(mode="json"), seed=opts.seed)
    out = Path(opts.out)
    weak = opts.setting == "weak-zero-shot"
    attributes, objects = (rare_attribute_terms() if weak else attribute_terms()), object_terms()
    if opts.attributes is not None:
        from vlmkit.attributes.comca_run import read_terms

        custom = read_terms(opts.attributes, "attributes")
        if sorted(t.name for t in custom) != sorted(t.name for t in attributes):
            raise UserError(f"--attributes must name the 14 world attributes ({', '.join(t.name for t in attributes)}), with any synonyms")
        by_name = {t.name: t for t in custom}
        attributes = [by_name[t.name] for t in attributes]
    with run.timer("render"):
        pool = load_dataset(_split(out / "pool", opts.pool, opts.seed, labelled=False, words=attributes if weak else None))
        evaluation = load_dataset(_split(out / "eval", opts.n, opts.seed + 1, labelled=True))
    model = load_model(opts.model, device=opts.resolved_device())
    cache = opts.embedding_cache()
    with run.timer("index"):
        if weak:
            index = caption_index(model, pool, cache=cache)
        else:
            index = build_index(model, pool, model_spec=opts.model, cache=cache, batch_size=opts.batch_size)
    cooc = cooccurrence([s.caption or "" for s in pool.samples], attributes, objects)
    compat = compatibility()
    priors = {"ComCa": prior(cooc, compat), "ComCa (co-occurrence only)": prior(cooc, None),
              "ComCa (compatibility only)": prior(None, compat)}
    images = embed_images(model, evaluation.paths, batch_size=opts.batch_size, cache=cache).vectors
    y = labels(evaluation)
    z = zero_shot_logits(images, zero_shot_text(model, attributes))
    cfg = ComCaConfig(k=opts.k, seed=opts.seed)
    names = [a.name for a in attributes]
    truth = pool_truth(opts.pool, opts.seed)
    table, logs, diagnostics = {}, {}, {"zero_shot_logit_spread": round(float(z.std(1).mean()), 4)}
    with run.timer("methods"):
        for method in METHODS:
            if method == "zero-shot":
                built = None
            elif method == "retrieval cache":
                built = build_cache(index, model, model, attributes, None, None, cfg, cache)
            else:
                built = build_cache(index, model, model, attributes, objects, priors[method], cfg, cache)
            scores = comca_scores(images, z, built, cfg)
            table[method] = attribute_map(scores, y, names)
            logs[method] = built.log if built is not None else []
            if built is not None:
                logits = cache_logits(images, built, cfg)
                diagnostics[method] = {
                    "label_precision": round(
                        float(np.mean([names[a] in truth[Path(p).stem] for p, a in zip(built.paths, built.source, strict=True)])), 4
                    ),
                    "cache_logit_mean": round(float(logits.mean()), 3),
                    "cache_logit_spread": round(float(logits.std(1).mean()), 4),
                }
    result = {
        "model": model.name, "setting": opts.setting, "retrieval": "captions (text-to-text)" if weak else "images (text-to-image)",
        "pool": len(pool), "images": len(y), "k": opts.k, "seed": opts.seed,
        "attributes": [f"{a.name}:{'/'.join(a.synonyms)}" for a in attributes],
        "table": {m: {k: v for k, v in r.items() if k in ("mAP", "head", "medium", "tail")} for m, r in table.items()},
        "ap": {m: r["ap"] for m, r in table.items()}, "bins": table["zero-shot"]["bins"],
        "cooccurrence": {a: dict(zip([o.name for o in objects], map(int, row), strict=True)) for a, row in zip(names, cooc, strict=True)},
        "cache_log": logs, "diagnostics": diagnostics,
    }
    run.info["model_fingerprint"] = model.fingerprint
    return run.finish(result, _report(result))


def _report(result: dict) -> str:
    methods = list(result["table"])
    columns = ("mAP", "head", "medium", "tail")
    rows = [[m, *(result["table"][m][k] if result["table"][m][k] is not None else "-" for k in columns)] for m in methods]
    names = list(result["ap"][methods[0]])
    per_attribute = [html.bars(names, [result["ap"][m][a] or 0.0 for a in names], caption=f"AP per attribute: {m}") for m in methods]
    return html.page(
        f"ComCa shapes-world benchmark: {result['model']}",
        html.key_values({k: result[k] for k in ("model", "setting", "retrieval", "pool", "images", "k", "seed") if k in result}),
        html.section("mAP", html.table(["method", "mAP", "head", "medium", "tail"], rows)),
        html.section("Per attribute", *per_attribute),
    )
