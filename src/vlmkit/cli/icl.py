"""``vlmkit icl``: closed-world in-context classification with an LMM, against cache adapters."""

from __future__ import annotations

from pathlib import Path

import typer

from vlmkit.cli.chat import ApiKeyOpt, BaseUrlOpt, ChatModelOpt, ConcurrencyOpt, DtypeOpt
from vlmkit.cli.common import CacheDirOpt, CacheOpt, DeviceOpt, OutOpt, SeedOpt, run_job
from vlmkit.cli.openworld import ChatBatchOpt, DatasetOpt

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False, no_args_is_help=True, help=__doc__.splitlines()[0])

PoolOpt = typer.Option(None, help="labelled images the shots come from (default: the dataset's train split)")
RetrieverOpt = typer.Option("embedded", help="contrastive model that retrieves shots and runs the CLIP baselines")


@app.command("run")
def run_cmd(
    dataset: str = DatasetOpt,
    out: Path = OutOpt,
    model: str = ChatModelOpt,
    shots: int = typer.Option(4, help="k: labelled images per class in the pool, and in-context shots per query"),
    selection: str = typer.Option("clip", help="clip (the k most similar pool images) or random (the control)"),
    pool: str | None = PoolOpt,
    retriever: str = RetrieverOpt,
    templates: list[str] | None = typer.Option(None, help="CLIP zero-shot templates (simple, ensemble, a file, or a template with {})"),
    limit: int | None = typer.Option(None, help="classify a seeded random subset of this many queries"),
    question: str | None = typer.Option(None, help="the query question instead of the multiple choice ({classes}: all class names)"),
    tip_alpha: float = typer.Option(1.17, help="Tip-Adapter residual ratio alpha (official ImageNet default)"),
    tip_beta: float = typer.Option(1.0, help="Tip-Adapter sharpness beta (official ImageNet default)"),
    batch_size: int = ChatBatchOpt,
    cache: bool = CacheOpt,
    cache_dir: Path | None = CacheDirOpt,
    device: str = DeviceOpt,
    dtype: str = DtypeOpt,
    base_url: str | None = BaseUrlOpt,
    api_key: str | None = ApiKeyOpt,
    concurrency: int = ConcurrencyOpt,
    seed: int = SeedOpt,
) -> None:
    """Multiple choice over all class names with k retrieved labelled shots; CLIP zero-shot, k-NN and Tip-Adapter on the same pool."""
    run_job("vlmkit.classify.icl_run", "ICLOptions", "run_icl", dict(locals()))
