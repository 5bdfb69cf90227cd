"""The ``vlmkit embed`` job: images or texts to ``embeddings.npy`` plus ``index.jsonl``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from vlmkit.data.datasets import load_dataset
from vlmkit.embed import embed_images, embed_texts
from vlmkit.errors import UserError
from vlmkit.models import load_model
from vlmkit.report import html
from vlmkit.runs.files import atomic_save_npy, atomic_write_text
from vlmkit.runs.options import RunOptions
from vlmkit.runs.readers import read_texts
from vlmkit.runs.record import Run


class EmbedOptions(RunOptions):
    dataset: str | None = None
    texts: Path | None = None
    skip_bad_images: bool = False


def run_embed(opts: EmbedOptions) -> Path:
    """Embed a dataset's images or a file of texts; rows of ``index.jsonl`` match rows of the array."""
    if (opts.dataset is None) == (opts.texts is None):
        raise UserError("pass exactly one of --dataset (images) or --texts (a file with one text per line)")
    run = Run(opts.out, "embed", opts.model_dump(mode="json"), seed=opts.seed)
    torch.manual_seed(opts.seed)
    if opts.texts is not None:
        items = read_texts(opts.texts)
        rows = [{"text": t} for t in items]
    else:
        dataset = load_dataset(opts.dataset)
        items = dataset.paths
        rows = [s.to_row(dataset.root) | {"path": str(s.path)} for s in dataset.samples]
    with run.timer("load_model"):
        model = load_model(opts.model, device=opts.resolved_device())
    with run.timer("embed"):
        if opts.texts is not None:
            result = embed_texts(model, items, batch_size=opts.batch_size, cache=opts.embedding_cache())
        else:
            result = embed_images(model, items, batch_size=opts.batch_size, cache=opts.embedding_cache(), skip_bad=opts.skip_bad_images)
    index_rows = [{"row": k, "input": int(i), **rows[i]} for k, i in enumerate(result.indices)]
    summary = {
        "model": model.name, "kind": "texts" if opts.texts is not None else "images",
        "count": int(len(result.indices)), "dim": int(result.vectors.shape[1]) if result.vectors.size else model.embed_dim,
        "normalized": True, "embeddings_file": "embeddings.npy", "index_file": "index.jsonl",
        "skipped": [{"input": i, "item": str(item), "reason": reason} for i, item, reason in result.failed],
        "cache": {"cached_chunks": result.cached_chunks, "computed_chunks": result.computed_chunks},
    }
    opts.out.mkdir(parents=True, exist_ok=True)
    atomic_save_npy(opts.out / "embeddings.npy", result.vectors.astype(np.float32))
    atomic_write_text(opts.out / "index.jsonl", "".join(json.dumps(r) + "\n" for r in index_rows))
    run.info["model_fingerprint"] = model.fingerprint
    report = html.page(
        f"Embeddings: {model.name}",
        html.key_values({k: summary[k] for k in ("model", "kind", "count", "dim")}),
        html.section("First rows", html.table(["row", "item"], [(r["row"], r.get("text") or r.get("path")) for r in index_rows[:20]])),
    )
    return run.finish(summary, report)
