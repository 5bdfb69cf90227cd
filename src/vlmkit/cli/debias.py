"""``vlmkit debias``: debiased text embeddings (SEM and projection baselines)."""

from __future__ import annotations

from pathlib import Path

import typer

from vlmkit.cli.common import (
    BatchOpt,
    CacheDirOpt,
    CacheOpt,
    DeviceOpt,
    ModelOpt,
    OutOpt,
    SeedOpt,
    run_job,
)

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False, no_args_is_help=True, help=__doc__.splitlines()[0])


@app.command("encode")
def encode_cmd(
    texts: Path = typer.Option(..., help="file with one query per line"),
    out: Path = OutOpt,
    model: str = ModelOpt,
    method: str = typer.Option("sem_bi", help="none, orth_proj, orth_cali, sem_i, sem_b or sem_bi"),
    bias: str | None = typer.Option(None, help="bias attributes, comma-separated: gender, race, age, world-background, ..."),
    bias_prompts: Path | None = typer.Option(None, help="JSON attribute -> class -> prompts (default: the shipped set)"),
    paraphrases: Path | None = typer.Option(None, help="JSON query -> list of paraphrases (sem_i, sem_bi)"),
    sae: Path | None = typer.Option(None, help="SAE directory or official SEM checkpoint (SEM variants)"),
    neutral: Path | None = typer.Option(None, help="neutral reference prompts, one per line (default: the shipped 310)"),
    cache: bool = CacheOpt,
    cache_dir: Path | None = CacheDirOpt,
    device: str = DeviceOpt,
    seed: int = SeedOpt,
) -> None:
    """Write debiased, unit-norm text embeddings of the queries to embeddings.npy."""
    run_job("vlmkit.debias.encode_run", "DebiasEncodeOptions", "run_debias_encode", dict(locals()))


@app.command("eval")
def eval_cmd(
    dataset: str = typer.Option(..., help="manifest .jsonl with attributes"),
    attribute: str = typer.Option(..., help="the class attribute (zero-shot target / retrieval query)"),
    sensitive: str = typer.Option(..., help="the bias attribute measured (groups / retrieval skew)"),
    out: Path = OutOpt,
    model: str = ModelOpt,
    task: str = typer.Option("zeroshot", help="zeroshot or retrieval"),
    methods: str = typer.Option("none,orth_proj,orth_cali,sem_i,sem_b,sem_bi", help="comma-separated methods"),
    bias: str | None = typer.Option(None, help="bias-prompt attributes, comma-separated (e.g. gender, world-background)"),
    bias_prompts: Path | None = typer.Option(None, help="JSON attribute -> class -> prompts (default: the shipped set)"),
    paraphrases: Path | None = typer.Option(None, help="JSON query -> paraphrases (default: the dataset's templates)"),
    sae: Path | None = typer.Option(None, help="SAE directory or official checkpoint (default: the one shipped beside an embedded model)"),
    neutral: Path | None = typer.Option(None, help="neutral reference prompts (default: the shipped 310)"),
    splits: int = typer.Option(10, help="random 50/50 splits"),
    k: int = typer.Option(500, "--k", help="retrieval depth K"),
    batch_size: int = BatchOpt,
    cache: bool = CacheOpt,
    cache_dir: Path | None = CacheDirOpt,
    device: str = DeviceOpt,
    seed: int = SeedOpt,
) -> None:
    """Compare debiasing methods: one table of methods x metrics (mean ± 95% interval)."""
    run_job("vlmkit.debias.eval_run", "DebiasEvalOptions", "run_debias_eval", dict(locals()))
