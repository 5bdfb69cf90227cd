"""``vlmkit r2p build`` and ``vlmkit r2p eval``: the concept database, then every method of the
ablation on a query set, in one pass (see :mod:`vlmkit.personalize.r2p`).

``result.json`` (eval)::

    {"table": {"<method>": {"accuracy", "weighted_accuracy", "positive_accuracy",
                            "negative_accuracy", "overall_accuracy", "recall_retrieval",
                            "recall_final", "n_positive", "n_negative", "decided_by": {...}}},
     "methods": [...], "n_queries", "reasoning_failures", "pairwise_queries", "database": {...}}

Methods: ``clip-retrieval`` (nearest concept by image-image similarity, rejection below the
database's leave-one-out threshold), ``retrieval`` (+ description retrieval), ``vlm-only`` (the
VLM's reasoning over *all* concepts, no retrieval), ``reasoning`` (+ attribute reasoning over
the top-k), ``verification`` (+ cross-modal verification), ``r2p`` (+ pairwise matching).
``traces.jsonl`` holds every query's evidence and each method's answer.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import Field

from vlmkit.classify.chat_options import ChatRunOptions
from vlmkit.errors import UserError
from vlmkit.models.registry import DEFAULT_MODEL

METHOD_ORDER = ("clip-retrieval", "retrieval", "vlm-only", "reasoning", "verification", "r2p")


class R2PBuildOptions(ChatRunOptions):
    concepts: Path
    clip: str = DEFAULT_MODEL
    fingerprint_mode: Literal["json", "questions"] = "json"
    retries: int = Field(2, ge=1)
    category: str = "object"


class R2PEvalOptions(ChatRunOptions):
    db: Path
    dataset: Path
    model: str | None = None  # default: the chat model that built the database
    clip: str | None = None
    k: int = Field(3, ge=1)
    reasoning_mode: Literal["json", "questions"] | None = None
    retries: int = Field(2, ge=1)
    pairwise_threshold: float = Field(0.5, ge=0, le=1)
    pairwise_prompt: str | None = None
    vlm_only: bool = True
    max_queries: int | None = Field(None, ge=1)
    report_queries: int = Field(40, ge=0)


def run_build(opts: R2PBuildOptions, chat=None) -> Path:
    """Fingerprint and embed the concepts of ``--concepts`` into the database folder ``--out``;
    ``chat``: a ChatModel object to use instead of loading ``opts.model`` (library use)."""
    from vlmkit.models import load_model
    from vlmkit.personalize.concepts import read_concepts
    from vlmkit.personalize.database import build_database

    if opts.out.exists() and any(opts.out.iterdir()):
        raise UserError(f"--out {opts.out} exists and is not empty; choose a new folder for the database")
    concepts, ignored = read_concepts(opts.concepts, opts.category)
    chat = chat or opts.load_chat(description="fingerprinting concepts")
    clip = load_model(opts.clip, device=opts.resolved_device())
    db, attempts = build_database(chat, clip, concepts, mode=opts.fingerprint_mode, retries=opts.retries, seed=opts.seed,
                                  cache=opts.embedding_cache(), batch_size=opts.batch_size)
    db.info["ignored_references"] = {k: v for k, v in ignored.items() if v}
    log = {"options": json.loads(opts.model_dump_json()), "attempts": dict(zip(db.ids, attempts, strict=True))}
    return db.save(opts.out, {"build_log.json": log})


def _methods_of(traces, db, base, vlm_only: bool) -> dict[str, list]:
    from vlmkit.personalize.r2p import decide, method_config

    out = {}
    for method in METHOD_ORDER:
        if method == "vlm-only":
            if vlm_only:
                out[method] = [(t.reasoning_all.choice if t.reasoning_all else None, "reasoning") for t in traces]
            continue
        out[method] = [decide(t, method_config(base, method), db) for t in traces]
    return out


def run_eval(opts: R2PEvalOptions, chat=None):
    """Every method on the query set; writes ``result.json``, ``traces.jsonl``, ``report.html``;
    ``chat``: a ChatModel object to use instead of loading one by name (library use)."""
    from collections import Counter

    from vlmkit.models import load_model
    from vlmkit.personalize.database import ConceptDatabase
    from vlmkit.personalize.evaluate import check_disjoint, read_queries, recognition_metrics
    from vlmkit.personalize.pipeline import R2P
    from vlmkit.personalize.r2p import R2PConfig
    from vlmkit.personalize.report import render_report
    from vlmkit.runs.files import atomic_write_text
    from vlmkit.runs.record import Run

    db = ConceptDatabase.load(opts.db)
    queries = read_queries(opts.dataset, db.ids)[: opts.max_queries]
    check_disjoint([p for c in db.concepts for p in c.references], queries)
    run = Run(opts.out, "r2p eval", json.loads(opts.model_dump_json()), opts.seed)
    chat = chat or opts.load_chat(opts.model or db.info.get("chat_model"), description="R2P reasoning")
    clip = load_model(opts.clip or db.info.get("clip_model", DEFAULT_MODEL), device=opts.resolved_device())
    if clip.name != db.info.get("clip_model", clip.name):
        raise UserError(f"--clip {clip.name} differs from the model that built the database ({db.info['clip_model']}); omit --clip")
    try:
        base = R2PConfig(k=opts.k, pairwise_threshold=opts.pairwise_threshold, **({"pairwise_prompt": opts.pairwise_prompt}
                                                                                   if opts.pairwise_prompt else {}))
    except ValueError as exc:
        raise UserError(f"invalid --pairwise-prompt: {exc}") from exc
    r2p = R2P(chat, clip, db, base, mode=opts.reasoning_mode, retries=opts.retries, seed=opts.seed,
              cache=opts.embedding_cache(), batch_size=opts.batch_size)
    with run.timer("traces"):
        traces = r2p.traces([q.path for q in queries], vlm_only=opts.vlm_only)
    decisions = _methods_of(traces, db, base, opts.vlm_only)
    truth = [q.concept for q in queries]
    table = {}
    for method, answers in decisions.items():
        if method in ("clip-retrieval", "retrieval"):
            scores = [t.scores_image if method == "clip-retrieval" else t.scores for t in traces]
            retrieved = [[db.ids[max(range(len(s)), key=s.__getitem__)]] for s in scores]
        else:
            retrieved = [db.ids if method == "vlm-only" else t.candidates for t in traces]
        table[method] = {**recognition_metrics(truth, [a for a, _ in answers], retrieved),
                         "decided_by": dict(Counter(stage for _, stage in answers))}
    result = {"table": table, "methods": list(table), "n_queries": len(queries), "k": opts.k, "reasoning_mode": r2p.mode,
              "reasoning_failures": sum(t.reasoning is None for t in traces),
              "pairwise_queries": sum(bool(t.pairwise) for t in traces), "database": {"path": str(opts.db), **db.info}}
    rows = [{**t.to_json(), "truth": q.concept, "answers": {m: a[i][0] for m, a in decisions.items()}}
            for i, (t, q) in enumerate(zip(traces, queries, strict=True))]
    opts.out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(opts.out / "traces.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    return run.finish(result, render_report(result, rows, db, opts.report_queries))


class R2PPrepareOptions(ChatRunOptions):
    data: Path
    format: Literal["yollava", "folders"] = "yollava"
    model: str = DEFAULT_MODEL  # the contrastive model that splits ``folders`` (unused for yollava)
    references: int = Field(5, ge=1, le=5)
    holdout: int = Field(0, ge=0)
    categories: Path | None = None


def run_prepare(opts: R2PPrepareOptions) -> Path:
    """Convert a benchmark folder into ``concepts/`` and a query ``manifest.jsonl`` under ``--out``."""
    from vlmkit.personalize.datasets import read_folders, read_yollava, write_prepared
    from vlmkit.runs.readers import need_dir, read_json

    if opts.out.exists() and any(opts.out.iterdir()):
        raise UserError(f"--out {opts.out} exists and is not empty; choose a new folder")
    root = need_dir(opts.data, "dataset folder", "pass the folder that holds the benchmark's images")
    categories = None
    if opts.categories:
        categories = read_json(opts.categories, "categories file", 'write {"<concept>": "<category>", ...}', dict[str, str])
    if opts.format == "yollava":
        concepts = read_yollava(root)
    else:
        from vlmkit.models import load_model

        concepts = read_folders(root, load_model(opts.model, device=opts.resolved_device()), opts.references, opts.embedding_cache())
    return write_prepared(concepts, opts.out, holdout=opts.holdout, seed=opts.seed, categories=categories)
