"""``vlmkit debias``: debiased text embeddings (SEM and projection baselines)."""

from __future__ import annotations

from pathlib import Path

import typer

from vlmkit.cli.common import CacheDirOpt, CacheOpt, DeviceOpt, ModelOpt, OutOpt, SeedOpt, done

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
    values = dict(locals())
    from vlmkit.debias.encode_run import DebiasEncodeOptions, run_debias_encode
    from vlmkit.runs.options import build_options

    done(run_debias_encode(build_options(DebiasEncodeOptions, **values)))
