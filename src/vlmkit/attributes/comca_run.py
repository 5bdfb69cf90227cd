"""``vlmkit comca build-cache`` and ``vlmkit comca eval``.

Attribute and object files list one term per line, ``name`` or ``name:syn1/syn2``
(``--attributes ovad:<folder>`` takes OVAD's 117 attributes from its annotation file). The evaluated
dataset is a manifest whose ``attributes`` map each attribute name to 1 (positive), 0 (negative)
or -1 (unknown); an attribute a row does not mention is unknown for it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field

from vlmkit.attributes.comca import (
    ComCaConfig,
    build_cache,
    comca_scores,
    load_cache,
    save_cache,
    sigmoid_scores,
    zero_shot_logits,
    zero_shot_text,
)
from vlmkit.attributes.prior import Term, compatibility_from_file, cooccurrence, parse_terms, prior
from vlmkit.data.datasets import load_dataset
from vlmkit.embed import embed_images
from vlmkit.errors import UserError
from vlmkit.metrics.attributes import attribute_map, label_matrix
from vlmkit.models import load_model
from vlmkit.report import html, plots
from vlmkit.retrieval.index import ImageIndex
from vlmkit.runs.options import RunOptions
from vlmkit.runs.readers import read_lines
from vlmkit.runs.record import Run


def read_terms(path: Path, what: str) -> list[Term]:
    """Terms from a file (one ``name`` or ``name:syn1/syn2`` per line), or OVAD's attribute list
    given as ``ovad:<folder>``."""
    if str(path).startswith("ovad:") and what == "attributes":
        from vlmkit.data.attribute_datasets import ovad_attributes

        return [Term(name, synonyms) for name, synonyms in ovad_attributes(Path(str(path)[5:]))]
    lines = read_lines(path, f"{what} file", f"write one {what[:-1]} per line as name or name:syn1/syn2")
    try:
        return parse_terms(lines)
    except UserError as exc:
        raise UserError(f"{path}: {exc}") from exc


class BuildCacheOptions(RunOptions):
    attributes: Path
    objects: Path | None = None
    index: Path
    compatibility: Path | None = None
    cooccurrence: bool = True
    k: int = Field(16, ge=1)
    overfetch: int | None = Field(None, ge=1)
    protocol: Literal["ovad", "vaw"] = "ovad"

    def comca_config(self) -> ComCaConfig:
        """The protocol's soft-label scaling and over-fetch (OVAD 117, VAW 256) unless --overfetch is given."""
        extra = {"overfetch": self.overfetch} if self.overfetch is not None else {}
        return ComCaConfig.for_protocol(self.protocol, k=self.k, seed=self.seed, **extra)


def run_build_cache(opts: BuildCacheOptions) -> Path:
    run = Run(opts.out, "comca build-cache", opts.model_dump(mode="json"), seed=opts.seed)
    attributes = read_terms(opts.attributes, "attributes")  # every user file is read before any model loads
    objects = read_terms(opts.objects, "objects") if opts.objects else None
    if objects is not None and not opts.cooccurrence and opts.compatibility is None:
        raise UserError("with --objects, use caption co-occurrence (the default) and/or --compatibility FILE")
    compat, missing = compatibility_from_file(opts.compatibility, attributes, objects) if objects and opts.compatibility else (None, [])
    index = ImageIndex.load(opts.index)
    if index.meta.get("model") is None:
        raise UserError(f"{opts.index}/index.json does not say which model built the index; rebuild it with vlmkit index build")
    model = load_model(opts.model, device=opts.resolved_device())
    same = model.fingerprint == index.meta.get("fingerprint")
    retrieval = model if same else load_model(index.meta["model"], device=opts.resolved_device())
    pi = None
    if objects is not None:
        cooc = cooccurrence([item.caption or "" for item in index.items], attributes, objects) if opts.cooccurrence else None
        pi = prior(cooc, compat)
    cfg = opts.comca_config()
    with run.timer("build"):
        cache = build_cache(index, retrieval, model, attributes, objects, pi, cfg, opts.embedding_cache())
    meta = {"model": opts.model, "fingerprint": model.fingerprint, "index": str(opts.index), "kind": "comca" if objects else "retrieval",
            "protocol": opts.protocol, "scalings": list(cfg.scalings), "overfetch": cfg.overfetch, "k": opts.k,
            "compatibility_log": missing[:200]}
    save_cache(cache, opts.out, attributes, meta)
    result = {k: v for k, v in meta.items() if k != "compatibility_log"}
    result |= {"keys": len(cache.keys), "attributes": len(attributes), "log": cache.log}
    pairs = list(zip(cache.paths, cache.queries, strict=True))
    return run.finish(
        result,
        html.page(
            "ComCa cache",
            html.key_values({k: v for k, v in result.items() if k != "log"}),
            html.section("Retrieved images (first 48)", plots.thumbnails(pairs[:48])),
            html.section("Queries (first 50)", html.table(["query", "image"], [(q, p) for p, q in pairs[:50]])),
        ),
    )


class ComCaEvalOptions(RunOptions):
    comca_cache: Path
    dataset: str


def eval_labels(dataset, names: list[str]) -> np.ndarray:
    """``(n, A)`` labels from each sample's ``attributes`` (1, 0, or -1 where unmentioned)."""
    return label_matrix([s.attributes for s in dataset.samples], names)


def run_comca_eval(opts: ComCaEvalOptions) -> Path:
    run = Run(opts.out, "comca eval", opts.model_dump(mode="json"), seed=opts.seed)
    cache, attributes, record = load_cache(opts.comca_cache)
    dataset = load_dataset(opts.dataset)
    model = load_model(opts.model, device=opts.resolved_device())
    if model.fingerprint != record["fingerprint"]:
        raise UserError(f"the cache's keys come from {record['model']}; evaluate with --model {record['model']}")
    names = [a.name for a in attributes]
    y = eval_labels(dataset, names)
    if not (y >= 0).any():
        raise UserError(f"no row of {opts.dataset} labels any of the cache's attributes ({', '.join(names[:5])}, ...)")
    images = embed_images(model, dataset.paths, batch_size=opts.batch_size, cache=opts.embedding_cache()).vectors
    text = zero_shot_text(model, attributes)
    cfg = ComCaConfig()
    if "sigmoid_scores" in model.supports:
        def score(c):
            return sigmoid_scores(images, text, c, cfg, model.logit_scale, model.logit_bias)
    else:
        z = zero_shot_logits(images, text)

        def score(c):
            return comca_scores(images, z, c, cfg)
    scores = {"zero-shot": score(None), record.get("kind", "cache"): score(cache)}
    table = {m: attribute_map(s, y, names) for m, s in scores.items()}
    result = {"model": model.name, "dataset": str(opts.dataset), "cache": str(opts.comca_cache), "images": len(y),
              "table": {m: {k: r[k] for k in ("mAP", "head", "medium", "tail")} for m, r in table.items()},
              "ap": {m: r["ap"] for m, r in table.items()}, "bins": table["zero-shot"]["bins"]}
    curves = {m: plots.precision_recall(s, y) for m, s in scores.items()}
    return run.finish(result, eval_report(result, names, curves, cache.paths, cache.queries))


def eval_report(result: dict, names: list[str], curves: dict, paths: list[str], queries: list[str]) -> str:
    """mAP table, AP per attribute per method, micro precision-recall curves, and the cache's images."""
    methods = list(result["table"])
    columns = ("mAP", "head", "medium", "tail")
    rows = [[m, *("-" if result["table"][m][k] is None else result["table"][m][k] for k in columns)] for m in methods]
    ap = plots.grouped_bars(names, {m: [result["ap"][m][a] or 0.0 for a in names] for m in methods}, ylabel="AP",
                            caption="AP per attribute (unknown labels ignored)")
    pr = plots.pr_curves(curves, caption="precision-recall over every known (image, attribute) pair")
    cached = plots.thumbnails(list(zip(paths, queries, strict=True))[:24],
                              caption="the first cached images and the queries that found them")
    return html.page(
        f"ComCa evaluation: {result['model']}",
        html.section("mAP", html.table(["method", "mAP", "head", "medium", "tail"], rows)),
        html.section("Per attribute", ap, pr),
        html.section("Cache", cached),
    )
