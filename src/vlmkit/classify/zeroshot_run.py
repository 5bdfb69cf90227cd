"""The ``vlmkit zeroshot`` job: dataset in, accuracy, per-class accuracy and confusion matrix out."""

from __future__ import annotations

from pathlib import Path

import torch

from vlmkit.classify.zeroshot import check_classes, class_embeddings, zeroshot_classify
from vlmkit.data.datasets import load_dataset
from vlmkit.data.templates import resolve_classes, resolve_templates, validate
from vlmkit.embed import embed_images
from vlmkit.errors import UserError
from vlmkit.models import load_model
from vlmkit.report import html, plots
from vlmkit.runs.options import RunOptions
from vlmkit.runs.record import Run


class ZeroShotOptions(RunOptions):
    dataset: str
    classes: str | None = None
    templates: list[str] | None = None
    attribute: str | None = None
    skip_bad_images: bool = False


def run_zeroshot(opts: ZeroShotOptions) -> Path:
    """Classify every image of ``opts.dataset``; write result.json, report.html, run.json."""
    run = Run(opts.out, "zeroshot", opts.model_dump(mode="json"), seed=opts.seed)
    torch.manual_seed(opts.seed)
    dataset = load_dataset(opts.dataset)
    what = f"attribute {opts.attribute!r}" if opts.attribute else "label"
    if opts.attribute and opts.attribute not in dataset.attribute_names():
        known = ", ".join(dataset.attribute_names()) or "none"
        raise UserError(f"the dataset has no attribute {opts.attribute!r}; its attributes are: {known}")
    targets = dataset.targets(opts.attribute)
    classes = resolve_classes(opts.classes) or dataset.classes(opts.attribute)
    check_classes(classes, targets, what)
    dataset_prompts = dataset.prompts.get(opts.attribute or "label")
    templates = resolve_templates(opts.templates) if opts.templates or not dataset_prompts else validate(dataset_prompts)
    labelled = [i for i, t in enumerate(targets) if t is not None]

    with run.timer("load_model"):
        model = load_model(opts.model, device=opts.resolved_device())
    cache = opts.embedding_cache()
    with run.timer("embed_images"):
        images = embed_images(model, [dataset.samples[i].path for i in labelled], batch_size=opts.batch_size, cache=cache,
                              skip_bad=opts.skip_bad_images)
    with run.timer("embed_classes"):
        class_vectors = class_embeddings(model, classes, templates, cache=cache)
    kept = [labelled[i] for i in images.indices]
    result = zeroshot_classify(images.vectors, class_vectors, [targets[i] for i in kept], classes)
    summary = {
        "model": model.name, "dataset": str(opts.dataset), "target": opts.attribute or "label",
        **result.summary(), "templates": templates,
        "unlabelled": len(targets) - len(labelled),
        "skipped_images": [{"path": path, "reason": reason} for _, path, reason in images.failed],
    }
    run.info["model_fingerprint"] = model.fingerprint
    run.info["cache"] = {"cached_chunks": images.cached_chunks, "computed_chunks": images.computed_chunks}
    wrong = [(dataset.samples[i].path, f"{classes[t]} -> {classes[p]}")
             for i, t, p in zip(kept, result.y_true, result.y_pred, strict=True) if t != p]
    return run.finish(summary, _report(summary, wrong))


def _report(summary: dict, wrong: list[tuple] = ()) -> str:
    per_class = [(c, "-" if a is None else a) for c, a in summary["per_class_accuracy"].items()]
    skipped = summary["skipped_images"]
    measured = [(c, a) for c, a in summary["per_class_accuracy"].items() if a is not None]
    bars = plots.bars([c for c, _ in measured], [a for _, a in measured], xlabel="accuracy") if measured else ""
    mistakes = plots.thumbnails(list(wrong)[:16], caption="true class -> prediction") if wrong else "<p class='muted'>none</p>"
    return html.page(
        f"Zero-shot classification: {summary['model']}",
        html.key_values(
            {
                "model": summary["model"],
                "dataset": summary["dataset"],
                "target": summary["target"],
                "images": summary["n"],
                "accuracy": summary["accuracy"],
            }
        ),
        html.section("Per-class accuracy", html.table(["class", "accuracy"], per_class), bars),
        html.section(f"Misclassified images (first 16 of {len(wrong)})", mistakes),
        html.section(
            "Confusion matrix",
            html.heatmap(summary["confusion_matrix"], summary["classes"], summary["classes"], "rows: true class; columns: prediction"),
        ),
        html.section("Templates", html.table(["template"], [[t] for t in summary["templates"]])),
        html.section(f"Skipped images ({len(skipped)})", html.table(["path", "reason"], [(s["path"], s["reason"]) for s in skipped]))
        if skipped
        else "",
    )
