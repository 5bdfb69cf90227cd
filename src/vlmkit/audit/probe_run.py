"""The ``vlmkit c2b train-probe`` job: a linear probe on a contrastive model's image embeddings,
saved as ``OUT/probe.safetensors`` for ``--classifier probe:OUT/probe.safetensors``.

``result.json`` keys: ``model``, ``dataset``, ``target``, ``classes``, ``n``, ``train_accuracy``,
``probe`` (the file's path), ``l2``.
"""

from __future__ import annotations

from pathlib import Path

import torch

from vlmkit.errors import UserError
from vlmkit.report import html
from vlmkit.runs.options import RunOptions
from vlmkit.runs.record import Run


class ProbeOptions(RunOptions):
    dataset: str
    attribute: str | None = None
    l2: float = 1e-3


def run_train_probe(opts: ProbeOptions) -> Path:
    from vlmkit.audit.probe import fit_probe
    from vlmkit.data.datasets import load_dataset
    from vlmkit.embed import embed_images
    from vlmkit.models import load_model

    if opts.l2 < 0:
        raise UserError("--l2 must be at least 0")
    run = Run(opts.out, "c2b train-probe", opts.model_dump(mode="json"), seed=opts.seed)
    torch.manual_seed(opts.seed)
    dataset = load_dataset(opts.dataset)
    targets = dataset.targets(opts.attribute)
    keep = [i for i, t in enumerate(targets) if t is not None]
    if opts.attribute and opts.attribute not in dataset.attribute_names():
        names = ", ".join(dataset.attribute_names()) or "none"
        raise UserError(f"{opts.dataset} has no attribute {opts.attribute!r}; its images have: {names}")
    if len({targets[i] for i in keep}) < 2:
        raise UserError(f"{opts.dataset} needs at least two classes of {opts.attribute or 'label'} to train a probe; pass --attribute")
    with run.timer("embed"):
        model = load_model(opts.model, device=opts.resolved_device())
        embedded = embed_images(model, [dataset.samples[i].path for i in keep], batch_size=opts.batch_size, cache=opts.embedding_cache())
    labels = [targets[keep[i]] for i in embedded.indices]
    with run.timer("fit"):
        probe = fit_probe(embedded.vectors, labels, opts.model, l2=opts.l2, seed=opts.seed)
    accuracy = float(sum(p == t for p, t in zip(probe.predict(embedded.vectors), labels, strict=True)) / len(labels))
    opts.out.mkdir(parents=True, exist_ok=True)
    path = probe.save(opts.out / "probe.safetensors")
    result = {"model": opts.model, "dataset": str(opts.dataset), "target": opts.attribute or "label", "classes": probe.classes,
              "n": len(labels), "train_accuracy": accuracy, "probe": str(path), "l2": opts.l2}
    return run.finish(result, html.page(f"Linear probe on {opts.model}", html.key_values(result)))
