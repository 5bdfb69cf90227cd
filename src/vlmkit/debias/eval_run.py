"""The ``vlmkit debias eval`` job: every debiasing method on one dataset, SEM's protocol (§4).

Zero-shot classification of ``--attribute`` (accuracy, worst-group and mean-group accuracy over
attribute x ``--sensitive`` groups) or text-to-image retrieval with one query per class
(KL@K, MaxSkew@K, NDKL over the ``--sensitive`` values, Precision@K for the queried class), on
the evaluated half of 10 random 50/50 splits; mean and 95% t-interval per method and metric.

Class prompts: the first of the dataset's templates for the attribute (``prompts.json``;
``"a photo of a {}."`` otherwise) is each class's query; the paraphrases the ``sem_i`` and
``sem_bi`` variants need are all the templates, unless ``--paraphrases`` gives them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydantic import Field, model_validator

from vlmkit.data.datasets import load_dataset
from vlmkit.debias.methods import METHODS, NEEDS_BIAS, NEEDS_SAE, TextDebiaser
from vlmkit.debias.prompt_sets import bias_prompts, neutral_prompts, paraphrases
from vlmkit.debias.sae import MatryoshkaSAE, check_width, find_sae
from vlmkit.embed import embed_images
from vlmkit.errors import UserError
from vlmkit.metrics.fairness import mean_ci, random_halves, retrieval_fairness, worst_group_accuracy
from vlmkit.models import load_model
from vlmkit.report import html
from vlmkit.runs.options import RunOptions
from vlmkit.runs.record import Run

DEFAULT_TEMPLATE = "a photo of a {}."


class DebiasEvalOptions(RunOptions):
    dataset: str
    attribute: str
    sensitive: str
    task: str = "zeroshot"
    methods: str = ",".join(METHODS)
    bias: str | None = None
    bias_prompts: Path | None = None
    paraphrases: Path | None = None
    sae: Path | None = None
    neutral: Path | None = None
    splits: int = Field(10, ge=1)
    k: int = Field(500, ge=1)

    @model_validator(mode="after")
    def _check(self):
        if self.task not in ("zeroshot", "retrieval"):
            raise ValueError("task must be zeroshot or retrieval")
        if not self.method_list or len(set(self.method_list)) < len(self.method_list):
            raise ValueError(f"name each method once, comma-separated, from {', '.join(METHODS)}")
        unknown = [m for m in self.method_list if m not in METHODS]
        if unknown:
            raise ValueError(f"unknown method {unknown[0]!r}; choose from {', '.join(METHODS)}")
        if any(m in NEEDS_BIAS for m in self.method_list) and not self.bias:
            raise ValueError("the projection and SEM_b/SEM_bi methods need --bias <attribute> (e.g. gender, world-background)")
        if any(m in NEEDS_SAE for m in self.method_list) and find_sae(self.sae, self.model) is None:
            raise ValueError("the SEM methods need --sae DIR (train one with vlmkit sae train); only the embedded models ship one")
        return self

    @property
    def method_list(self) -> list[str]:
        return [m.strip() for m in self.methods.split(",") if m.strip()]


def run_debias_eval(opts: DebiasEvalOptions) -> Path:
    run = Run(opts.out, "debias eval", opts.model_dump(mode="json"), seed=opts.seed)
    dataset = load_dataset(opts.dataset)
    for name in (opts.attribute, opts.sensitive):
        if name not in dataset.attribute_names():
            raise UserError(f"the dataset has no attribute {name!r}; its attributes are: {', '.join(dataset.attribute_names()) or 'none'}")
    targets, sensitive = dataset.targets(opts.attribute), dataset.targets(opts.sensitive)
    keep = [i for i, (t, s) in enumerate(zip(targets, sensitive, strict=True)) if t is not None and s is not None]
    classes = sorted({targets[i] for i in keep})
    if len(classes) < 2:
        raise UserError(f"attribute {opts.attribute!r} needs at least two classes")
    templates = dataset.prompts.get(opts.attribute) or [DEFAULT_TEMPLATE]
    queries = [templates[0].format(c) for c in classes]
    para = paraphrases(opts.paraphrases, queries) if opts.paraphrases else [[t.format(c) for t in templates] for c in classes]
    attributes = [a.strip() for a in (opts.bias or "").split(",") if a.strip()]
    bias = bias_prompts(attributes, opts.bias_prompts) if attributes else None
    neutral = neutral_prompts(opts.neutral)
    sae_path = find_sae(opts.sae, opts.model)
    sae = MatryoshkaSAE.load(sae_path) if sae_path else None
    model = load_model(opts.model, device=opts.resolved_device())
    debiaser = TextDebiaser(model, bias, check_width(sae, model, sae_path) if sae else None, neutral)
    with run.timer("embed_images"):
        images = embed_images(model, [dataset.samples[i].path for i in keep], batch_size=opts.batch_size, cache=opts.embedding_cache())
    kept = [keep[i] for i in images.indices]
    y = np.asarray([classes.index(targets[i]) for i in kept])
    s = np.asarray([str(sensitive[i]) for i in kept])
    vectors = images.vectors
    table = {}
    with run.timer("methods"):
        for method in opts.method_list:
            text = debiaser.encode(method, queries, para).numpy()
            per_split = [_evaluate(opts, vectors[idx], text, y[idx], s[idx]) for _, idx in random_halves(len(y), opts.splits, opts.seed)]
            table[method] = {metric: dict(zip(("mean", "ci95"), mean_ci([m[metric] for m in per_split]),
                                              strict=True)) for metric in per_split[0]}
    result = {
        "model": model.name, "dataset": str(opts.dataset), "task": opts.task, "attribute": opts.attribute, "sensitive": opts.sensitive,
        "bias_prompts": attributes, "sae": str(sae_path) if sae_path else None, "classes": classes, "queries": queries,
        "images": len(y), "splits": opts.splits, "k": opts.k, "table": table,
    }
    run.info["model_fingerprint"] = model.fingerprint
    return run.finish(result, _report(result))


def _evaluate(opts: DebiasEvalOptions, images: np.ndarray, text: np.ndarray, y: np.ndarray, sensitive: np.ndarray) -> dict[str, float]:
    if opts.task == "zeroshot":
        correct = (images @ text.T).argmax(1) == y
        worst, mean_group = worst_group_accuracy(correct, [f"{a}|{b}" for a, b in zip(y, sensitive, strict=True)])
        return {"accuracy": float(correct.mean()), "worst_group": worst, "mean_group": mean_group}
    k = min(opts.k, len(y))
    relevant = y[None, :] == np.arange(text.shape[0])[:, None]
    out = retrieval_fairness(text @ images.T, sensitive, k, relevant)
    return {"kl@k": out["kl"], "max_skew@k": out["max_skew"], "ndkl": out["ndkl"], "precision@k": out["precision"]}


def _report(result: dict) -> str:
    methods = list(result["table"])
    metrics = list(result["table"][methods[0]])
    rows = [[m, *(f"{result['table'][m][k]['mean']:.3f} ± {result['table'][m][k]['ci95']:.3f}" for k in metrics)] for m in methods]
    charts = [html.bars(methods, [result["table"][m][k]["mean"] for m in methods], [result["table"][m][k]["ci95"] for m in methods],
                        caption=k) for k in metrics]
    return html.page(
        f"Debiasing: {result['task']} of {result['attribute']} (sensitive: {result['sensitive']})",
        html.key_values({k: result[k] for k in ("model", "dataset", "images", "splits", "k", "sae") if result.get(k) is not None}
                        | {"bias prompts": ", ".join(result["bias_prompts"]) or "-", "queries": "; ".join(result["queries"])}),
        html.section(f"Methods (mean ± 95% interval over {result['splits']} random halves)", html.table(["method", *metrics], rows)),
        html.section("Plots", *charts),
    )
