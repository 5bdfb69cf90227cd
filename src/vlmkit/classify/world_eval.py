"""``vlmkit world eval-model``: how well a model sees the shapes world.

On a fresh world split it measures zero-shot accuracy of every attribute with the documented
templates (``data/templates/world-*.txt``), worst-group accuracy of shape over shape x background
groups, and image-to-caption retrieval recall@1/5 against canonical captions that name every
attribute (a hit is a caption identical to the image's own, so duplicates count).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from pydantic import Field, field_validator

from vlmkit.classify.zeroshot import class_embeddings, zeroshot_classify
from vlmkit.data import world as w
from vlmkit.data.datasets import load_dataset
from vlmkit.data.world_sample import full_caption, generate
from vlmkit.embed import embed_images, embed_texts
from vlmkit.metrics.classification import group_summary
from vlmkit.metrics.retrieval import recall_at_k
from vlmkit.models import load_model
from vlmkit.report import html
from vlmkit.runs.options import RunOptions
from vlmkit.runs.record import Run
from vlmkit.runs.stamps import build_once

EVAL_ATTRIBUTES = ("color", "shape", "size", "position", "texture", "background")


class WorldEvalOptions(RunOptions):
    n: int = Field(1000, ge=1)
    world_seed: int = Field(1000, ge=0)
    spurious: str | None = None

    @field_validator("spurious")
    @classmethod
    def _knob(cls, value: str | None) -> str | None:
        if value:
            w.Spurious.parse(value)  # its ValueError says what is wrong
        return value


def world_split(out: Path, n: int, seed: int, spurious: str | None) -> Path:
    """Generate (or reuse, when its parameters match) the evaluation split under ``out``."""
    params = {"n": n, "seed": seed, "spurious": spurious}
    knob = w.Spurious.parse(spurious) if spurious else None
    build_once(out / "world.json", params, lambda: generate(out, n, seed, spurious=knob, group_by=("shape", "background")),
               out / "manifest.jsonl")
    return out / "manifest.jsonl"


def evaluate_world(model, dataset, cache=None, batch_size: int = 64) -> dict:
    """Per-attribute zero-shot accuracy, shape worst-group accuracy and caption retrieval."""
    images = embed_images(model, dataset.paths, batch_size=batch_size, cache=cache)
    samples = [dataset.samples[i] for i in images.indices]
    attributes = {}
    for name in EVAL_ATTRIBUTES:
        classes = list(w.ATTRIBUTES[name])
        result = zeroshot_classify(images.vectors, class_embeddings(model, classes, dataset.prompts[name], cache),
                                   [s.target(name) for s in samples], classes)
        attributes[name] = {**result.summary(), "templates": dataset.prompts[name]}
        if name == "shape":
            shape_groups = group_summary(result.y_true == result.y_pred, [s.group for s in samples])
    captions = [full_caption(s.attributes) for s in samples]
    unique = sorted(set(captions))
    text = embed_texts(model, unique, cache=cache).vectors
    relevant = np.asarray([[c == u for u in unique] for c in captions])
    recall = recall_at_k(images.vectors @ text.T, relevant, ks=(1, 5))
    return {
        "model": model.name, "n": len(samples),
        "accuracy": {name: attributes[name]["accuracy"] for name in EVAL_ATTRIBUTES},
        "shape_groups": shape_groups,
        "retrieval": {"recall@1": recall[1], "recall@5": recall[5], "gallery": len(unique), "caption_example": captions[0]},
        "attributes": attributes,
    }


def run_world_eval(opts: WorldEvalOptions) -> Path:
    run = Run(opts.out, "world eval-model", opts.model_dump(mode="json"), seed=opts.seed)
    torch.manual_seed(opts.seed)
    with run.timer("generate"):
        dataset = load_dataset(world_split(opts.out / "data", opts.n, opts.world_seed, opts.spurious))
    with run.timer("load_model"):
        model = load_model(opts.model, device=opts.resolved_device())
    with run.timer("evaluate"):
        summary = evaluate_world(model, dataset, opts.embedding_cache(), opts.batch_size)
    run.info["model_fingerprint"] = model.fingerprint
    return run.finish(summary, _report(summary))


def _report(summary: dict) -> str:
    rows = [(name, acc) for name, acc in summary["accuracy"].items()]
    groups = summary["shape_groups"]
    blocks = [
        html.section("Zero-shot accuracy per attribute", html.table(["attribute", "accuracy"], rows)),
        html.section(
            "Shape over shape x background groups",
            html.key_values({"worst-group accuracy": groups["worst_group_accuracy"], "mean group accuracy": groups["mean_group_accuracy"]}),
        ),
        html.section("Image-to-caption retrieval", html.key_values({k: v for k, v in summary["retrieval"].items()})),
    ]
    for name, result in summary["attributes"].items():
        blocks.append(html.section(f"Confusion matrix: {name}",
                                   html.heatmap(result["confusion_matrix"], result["classes"], result["classes"],
                                                "rows: true; columns: predicted")))
    return html.page(f"Shapes-world evaluation: {summary['model']} ({summary['n']} images)", *blocks)
