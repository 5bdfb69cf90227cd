"""The ``vlmkit icl run`` job: closed-world in-context classification against CLIP zero-shot,
k-NN and Tip-Adapter on the same shots.

The pool holds ``shots`` labelled images per class from the train split (seeded); each query
sees ``shots`` context images from it, retrieved by the contrastive ``--retriever`` (or random),
and a multiple-choice question over all class names (``--question`` replaces it; ``{classes}``
in it is filled with the class list). ``result.json`` keys: ``icl``
(``accuracy``: the parsed answer is the label; ``ti``: the label is in the raw answer;
``unparsed``: share of answers naming no class), ``baselines.clip_zeroshot``, ``baselines.knn``
(vote over the retrieved shots), ``baselines.tip_adapter`` (cache = the whole pool), each with
``accuracy`` (= TI for a classifier that outputs a class name); plus ``shots``, ``selection``,
``n``, ``n_classes``, ``pool_size``, ``question``. ``predictions.jsonl`` has one row per query.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field

from vlmkit.classify.cache_adapters import TIP_ALPHA, TIP_BETA, knn_vote, tip_adapter_logits
from vlmkit.classify.chat_options import ChatRunOptions
from vlmkit.classify.icl import (
    closed_question,
    context_conversation,
    parse_choice,
    sample_pool,
    select_shots,
)
from vlmkit.classify.openworld_metrics import text_inclusion
from vlmkit.classify.openworld_run import subset
from vlmkit.data.benchmarks import load_classification, parse_spec
from vlmkit.errors import UserError
from vlmkit.models.registry import DEFAULT_MODEL
from vlmkit.runs.files import atomic_write_text, to_jsonable
from vlmkit.runs.record import Run


class ICLOptions(ChatRunOptions):
    dataset: str
    pool: str | None = None
    shots: int = Field(4, ge=0)
    selection: Literal["clip", "random"] = "clip"
    retriever: str = DEFAULT_MODEL
    templates: list[str] | None = None
    limit: int | None = Field(None, ge=1)
    tip_alpha: float = TIP_ALPHA
    tip_beta: float = TIP_BETA
    question: str | None = None


def default_pool(spec: str) -> str:
    """The train split of a benchmark or of the world; other datasets need ``--pool``."""
    parsed = parse_spec(spec)
    if parsed is None:
        raise UserError(f"{spec} has no train split vlmkit knows; pass --pool with labelled images of the same classes")
    name, where, _ = parsed
    return "world:2000@train" if name == "world" else f"{name}:{where}@train"


class Features:
    """Image and class-name features from a contrastive model (embedding cache on disk)."""

    def __init__(self, opts: ChatRunOptions, name: str, templates: list[str] | None):
        from vlmkit.data.templates import resolve_templates
        from vlmkit.models import load_model

        self.model = load_model(name, device=opts.resolved_device())
        self.cache = opts.embedding_cache()
        self.templates = resolve_templates(templates)

    def images(self, paths) -> np.ndarray:
        from vlmkit.embed import embed_images

        return embed_images(self.model, [str(p) for p in paths], cache=self.cache).vectors

    def classes(self, names: list[str]) -> np.ndarray:
        from vlmkit.classify.zeroshot import class_embeddings

        return class_embeddings(self.model, names, self.templates, cache=self.cache)


def load_split_pair(dataset: str, pool: str, cache_dir):
    """Test and pool data; pool labels must be classes of the test set and no image may be in both."""
    data = load_classification(dataset, cache_dir)
    pool_data = load_classification(pool, cache_dir)
    unknown = sorted({s.label for s in pool_data.dataset.samples} - set(data.classes))
    if unknown:
        raise UserError(
            f"pool {pool} has labels that are not classes of {dataset}: {', '.join(unknown[:5])}; use a pool of the same classes"
        )
    overlap = {s.path.resolve() for s in data.dataset.samples} & {s.path.resolve() for s in pool_data.dataset.samples}
    if overlap:
        raise UserError(f"{len(overlap)} images are both queries and pool items (e.g. {sorted(overlap)[0]}); use the train split as --pool")
    return data, pool_data


def run_icl(opts: ICLOptions) -> Path:
    pool_spec = opts.pool or default_pool(opts.dataset)
    data, pool_data = load_split_pair(opts.dataset, pool_spec, opts.cache_dir)
    classes = data.classes
    index = {c: i for i, c in enumerate(classes)}
    run = Run(opts.out, "icl run", {**opts.model_dump(mode="json"), "pool": pool_spec}, seed=opts.seed)
    queries = [data.dataset.samples[i] for i in subset(data.dataset.samples, opts.limit, opts.seed)]
    pool = [pool_data.dataset.samples[i] for i in sample_pool([s.label for s in pool_data.dataset.samples], opts.shots, opts.seed)]
    if opts.shots > len(pool):
        raise UserError(f"--shots {opts.shots} asks for more context images than the pool holds ({len(pool)} over {len(classes)} classes); "
                        "lower --shots or give a larger --pool")
    y = np.asarray([index[s.label] for s in queries])
    pool_y = np.asarray([index[s.label] for s in pool], dtype=np.int64)
    with run.timer("features"):
        features = Features(opts, opts.retriever, opts.templates)
        qv, pv, wc = features.images([s.path for s in queries]), features.images([s.path for s in pool]), features.classes(classes)
    retrieved = select_shots(qv, pv, opts.shots, "clip")
    shots = retrieved if opts.selection == "clip" else select_shots(qv, pv, opts.shots, "random", np.random.default_rng(opts.seed))
    question = closed_question(classes, opts.question)
    conversations = [
        context_conversation([(pool[j].path, pool[j].label) for j in row], q.path, question) for row, q in zip(shots, queries, strict=True)
    ]
    with run.timer("load_model"):
        model = opts.load_chat(description="in-context classification")
    from vlmkit.models.chat import require

    require(model, "images", *(("multi_image",) if opts.shots else ()))
    with run.timer("generate"):
        answers = model.generate(conversations, max_new_tokens=64, temperature=0.0, seed=opts.seed)
    parsed = np.asarray([parse_choice(a, classes) for a in answers])
    zeroshot = (qv @ wc.T).argmax(1)
    knn = knn_vote(pool_y[retrieved], np.take_along_axis(qv @ pv.T, retrieved, 1), len(classes)) if opts.shots else zeroshot
    tip = tip_adapter_logits(qv, wc, pv, pool_y, len(classes), alpha=opts.tip_alpha, beta=opts.tip_beta).argmax(1)
    result = {
        "model": model.name,
        "retriever": features.model.name,
        "dataset": opts.dataset,
        "pool": pool_spec,
        "shots": opts.shots,
        "selection": opts.selection,
        "n": len(queries),
        "n_classes": len(classes),
        "pool_size": len(pool),
        "question": question,
        "icl": {
            "accuracy": float((parsed == y).mean()),
            "ti": float(text_inclusion(answers, [q.label for q in queries]).mean()),
            "unparsed": float((parsed < 0).mean()),
        },
        "baselines": {
            name: {"accuracy": float((pred == y).mean())}
            for name, pred in (("clip_zeroshot", zeroshot), ("knn", knn), ("tip_adapter", tip))
        },
        "tip_adapter": {"alpha": opts.tip_alpha, "beta": opts.tip_beta},
        "templates": features.templates,
    }
    run.info.update(model_fingerprint=model.fingerprint, cache=model.stats())
    rows = [
        {
            "path": str(q.path),
            "label": q.label,
            "answer": a,
            "parsed": classes[p] if p >= 0 else None,
            "shots": [str(pool[j].path) for j in row],
            "clip_zeroshot": classes[z],
            "knn": classes[k],
            "tip_adapter": classes[t],
        }
        for q, a, p, row, z, k, t in zip(queries, answers, parsed, shots, zeroshot, knn, tip, strict=True)
    ]
    opts.out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(opts.out / "predictions.jsonl", "".join(json.dumps(to_jsonable(r)) + "\n" for r in rows))
    return run.finish(result, _report(result, rows))


def _report(result: dict, rows: list[dict]) -> str:
    from vlmkit.classify.openworld_report import thumbnail
    from vlmkit.report import html

    methods = [("LMM in-context", result["icl"]["accuracy"]), *((k, v["accuracy"]) for k, v in result["baselines"].items())]
    examples = [(thumbnail(r["path"]), r["label"], r["answer"], r["parsed"] or "-", r["knn"], r["tip_adapter"]) for r in rows[:30]]
    table = html.table(["image", "label", "LMM answer", "parsed", "k-NN", "Tip-Adapter"], [])
    body = "".join("<tr>" + f"<td>{e[0]}</td>" + "".join(f"<td>{html.fmt(v)}</td>" for v in e[1:]) + "</tr>" for e in examples)
    return html.page(
        f"In-context classification: {result['model']} on {result['dataset']}",
        html.key_values(
            {k: result[k] for k in ("model", "retriever", "dataset", "pool", "shots", "selection", "n", "n_classes", "pool_size")}
        ),
        html.section(
            "Accuracy (TI of the class name)",
            html.bars([m for m, _ in methods], [v for _, v in methods]),
            html.key_values({"LMM TI of the raw answer": result["icl"]["ti"], "LMM answers naming no class": result["icl"]["unparsed"]}),
        ),
        html.section("Examples", table.replace("</tbody>", body + "</tbody>")),
    )
