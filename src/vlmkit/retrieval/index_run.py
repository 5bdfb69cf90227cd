"""``vlmkit index build`` and ``vlmkit index search``."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np

from vlmkit.data.datasets import load_dataset
from vlmkit.errors import UserError
from vlmkit.models import load_model
from vlmkit.report import html, plots
from vlmkit.retrieval.index import ImageIndex, build_index
from vlmkit.runs.options import RunOptions
from vlmkit.runs.record import Run


class IndexBuildOptions(RunOptions):
    dataset: str
    kind: Literal["auto", "exact", "ivf"] = "auto"
    skip_bad_images: bool = False


def run_index_build(opts: IndexBuildOptions) -> Path:
    run = Run(opts.out, "index build", opts.model_dump(mode="json"), seed=opts.seed)
    dataset = load_dataset(opts.dataset)
    with run.timer("load_model"):
        model = load_model(opts.model, device=opts.resolved_device())
    with run.timer("embed_and_index"):
        index = build_index(model, dataset, model_spec=opts.model, kind=opts.kind, cache=opts.embedding_cache(),
                            batch_size=opts.batch_size, skip_bad=opts.skip_bad_images)
    index.save(opts.out)
    result = {**index.meta, "dataset": str(opts.dataset), "timings_s": dict(run.timings)}
    sample = [(item.path, item.caption or Path(item.path).name) for item in index.items[:24]]
    return run.finish(
        result,
        html.page(
            f"Image index: {index.meta['items']} images",
            html.key_values({k: v for k, v in result.items() if k != "skipped"}),
            html.section("The first images", plots.thumbnails(sample)),
        ),
    )


def search_index(index_dir: Path, texts: list[str], images: list[Path], k: int, model_spec: str | None = None, dedup: bool = True) -> dict:
    """Text-to-image and image-to-image search; returns ``{query: [hits]}`` as plain data."""
    index = ImageIndex.load(index_dir)
    if not (model_spec or index.meta.get("model")):
        raise UserError(f"{index_dir}/index.json does not say which model built the index; pass --model")
    model = load_model(model_spec or index.meta["model"])
    if index.meta.get("fingerprint") not in (None, model.fingerprint):
        raise UserError(f"{model.name} is not the model that built this index ({index.meta['model_name']}); pass --model "
                        f"{index.meta['model']}")
    queries, labels = [], []
    if texts:
        queries.append(model.encode_texts(texts).numpy())
        labels += texts
    if images:
        from vlmkit.data.images import load_image

        queries.append(model.encode_images(model.preprocess.batch([load_image(p) for p in images])).numpy())
        labels += [str(p) for p in images]
    if not queries:
        raise UserError("give --text and/or --image to search with")
    hits = index.search(np.concatenate(queries), k=k, dedup=dedup)
    return {label: [vars(h) for h in row] for label, row in zip(labels, hits, strict=True)}
