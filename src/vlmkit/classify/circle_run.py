"""The ``vlmkit circle run`` job: CIRCLE against its baselines on one dataset.

Methods, all answering the same queries with the same open-world question:

- ``zero_shot``: no context;
- ``pseudo_icl``: the m context images with their t = 0 labels (T = 0);
- ``circle``: the same images with their labels after T leave-one-out refinement rounds;
- ``random_context``: the same m images with their *true* labels (a random labelled context);
- ``clip_retrieval``: per query, the m images of the context split most similar to it under
  the contrastive ``--retriever``, with their true labels.

The m context images are a seeded random draw from ``--context`` (the train split by default;
never a query). ``result.json``: ``methods.<name>`` with ``metrics``/``per_dataset``/``per_group``
(TI, SS, bCS, mCS; LI with ``--judge``, each answer wrapped in CIRCLE's list sentence),
``context`` (its images, true labels, labels per round, and TI/SS of each round's labels against
the truth), ``m``, ``rounds``, ``question``, ``n``. ``predictions.jsonl``: one row per query and
method (the input of ``vlmkit openworld score``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field

from vlmkit.classify.chat_options import ChatRunOptions
from vlmkit.classify.circle import answer_with_context, answer_with_own_context, refine_context
from vlmkit.classify.icl_run import Features, default_pool, load_split_pair
from vlmkit.classify.openworld_metrics import SentenceSpace, semantic_similarity, text_inclusion
from vlmkit.classify.openworld_run import subset
from vlmkit.classify.openworld_score import evaluate_rows
from vlmkit.classify.prompts import openworld_prompt
from vlmkit.models.registry import DEFAULT_MODEL
from vlmkit.runs.files import atomic_write_text, to_jsonable
from vlmkit.runs.record import Run

METHODS = ("zero_shot", "pseudo_icl", "circle", "random_context", "clip_retrieval")


class CircleOptions(ChatRunOptions):
    dataset: str
    context: str | None = None
    m: int = Field(16, ge=1)
    rounds: int = Field(2, ge=0)
    prompt: str = "base"
    judge: str | None = None
    judge_mode: Literal["generate", "score"] = "generate"
    li_wrap: bool = True
    retriever: str = DEFAULT_MODEL
    baselines: bool = True
    limit: int | None = Field(None, ge=1)


def run_circle(opts: CircleOptions) -> Path:
    context_spec = opts.context or default_pool(opts.dataset)
    data, pool = load_split_pair(opts.dataset, context_spec, opts.cache_dir)
    prompt = openworld_prompt(opts.prompt, data.domain)
    question, tokens = prompt.question, prompt.max_new_tokens
    run = Run(opts.out, "circle run", {**opts.model_dump(mode="json"), "context": context_spec, "question": question}, seed=opts.seed)
    queries = [data.dataset.samples[i] for i in subset(data.dataset.samples, opts.limit, opts.seed)]
    if opts.m > len(pool.dataset):
        from vlmkit.errors import UserError

        raise UserError(f"--m {opts.m} is larger than the context split {context_spec} ({len(pool.dataset)} images); lower --m")
    drawn = sorted(np.random.default_rng(opts.seed).choice(len(pool.dataset), opts.m, replace=False).tolist())
    context = [pool.dataset.samples[i] for i in drawn]
    with run.timer("load_model"):
        model = opts.load_chat(description="CIRCLE")
        judge = opts.load_chat(opts.judge, "judging") if opts.judge else None
    from vlmkit.models.chat import require

    require(model, "images", "multi_image")
    settings = {"max_new_tokens": tokens, "batch_size": opts.batch_size, "seed": opts.seed}
    images, q_images = [s.path for s in context], [s.path for s in queries]
    answers: dict[str, list[str]] = {}
    with run.timer("context_rounds"):
        history = refine_context(model, images, question, opts.rounds, **settings)
    with run.timer("queries"):
        answers["circle"] = answer_with_context(model, q_images, list(zip(images, history[-1], strict=True)), question, **settings)
        if opts.baselines:
            answers["zero_shot"] = answer_with_context(model, q_images, [], question, **settings)
            answers["pseudo_icl"] = answer_with_context(model, q_images, list(zip(images, history[0], strict=True)), question, **settings)
            answers["random_context"] = answer_with_context(model, q_images, [(s.path, s.label) for s in context], question, **settings)
            features = Features(opts, opts.retriever, None)
            everything = pool.dataset.samples
            sims = features.images(q_images) @ features.images([s.path for s in everything]).T
            top = np.argsort(-sims, axis=1, kind="stable")[:, : opts.m][:, ::-1]
            retrieved = [[(everything[j].path, everything[j].label) for j in row] for row in top]
            answers["clip_retrieval"] = answer_with_own_context(model, q_images, retrieved, question, **settings)
    space = SentenceSpace()
    truth = [s.label for s in context]
    methods, rows = {}, []
    with run.timer("score"):
        for name in [m for m in METHODS if m in answers]:
            method_rows = [
                {
                    "id": i,
                    "path": str(q.path),
                    "dataset": data.name,
                    "group": data.group,
                    "label": q.label,
                    "prediction": a,
                    "model": f"{model.name}|{name}",
                }
                for i, (q, a) in enumerate(zip(queries, answers[name], strict=True))
            ]
            _, methods[name] = evaluate_rows(
                method_rows, space=space, judge=judge, li_wrap=opts.li_wrap, judge_batch=opts.batch_size, judge_mode=opts.judge_mode
            )
            rows += method_rows
    per_round = [{"ti": float(text_inclusion(h, truth).mean()), "ss": float(semantic_similarity(h, truth, space).mean())} for h in history]
    result = {
        "model": model.name,
        "dataset": opts.dataset,
        "context_split": context_spec,
        "m": opts.m,
        "rounds": opts.rounds,
        "question": question,
        "n": len(queries),
        "judge": opts.judge,
        "methods": methods,
        "context": {
            "images": [str(p) for p in images],
            "true_labels": truth,
            "labels_per_round": history,
            "label_quality_per_round": per_round,
        },
        "calls": {"context": opts.m * (opts.rounds + 1), "per_query_per_method": 1},
    }
    run.info.update(model_fingerprint=model.fingerprint, cache=model.stats())
    opts.out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(opts.out / "predictions.jsonl", "".join(json.dumps(to_jsonable(r)) + "\n" for r in rows))
    return run.finish(result, _report(result))


def _report(result: dict) -> str:
    from vlmkit.classify.openworld_report import LABELS
    from vlmkit.report import html

    names = [k for k in ("ti", "li", "ss", "cs_max", "cs_median") if k in next(iter(result["methods"].values()))["metrics"]]
    table = html.table(
        ["method", *[LABELS[k] for k in names]], [(m, *[v["metrics"][k] for k in names]) for m, v in result["methods"].items()]
    )
    ctx = result["context"]
    rounds = html.table(
        ["round", "TI vs truth", "SS vs truth"], [(t, r["ti"], r["ss"]) for t, r in enumerate(ctx["label_quality_per_round"])]
    )
    labels = html.table(
        ["true label", *[f"t={t}" for t in range(len(ctx["labels_per_round"]))]],
        [(y, *[h[j] for h in ctx["labels_per_round"]]) for j, y in enumerate(ctx["true_labels"])],
    )
    return html.page(
        f"CIRCLE: {result['model']} on {result['dataset']}",
        html.key_values({k: result[k] for k in ("model", "dataset", "context_split", "m", "rounds", "question", "n", "judge")}),
        html.section("Methods", table), html.section("Context labels against the truth, per round", rounds),
        html.section("Context labels", labels),
    )
