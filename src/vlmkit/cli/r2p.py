"""``vlmkit r2p``: recognise a user's personal concepts without training (R2P, arXiv 2503.18623)."""

from __future__ import annotations

from pathlib import Path

import typer

from vlmkit.cli.common import BatchOpt, CacheDirOpt, CacheOpt, DeviceOpt, OutOpt, SeedOpt, run_job
from vlmkit.models.chat_registry import DEFAULT_CHAT_MODEL
from vlmkit.models.registry import DEFAULT_MODEL

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False, no_args_is_help=True, help=__doc__.splitlines()[0])


@app.command("build")
def build_cmd(
    concepts: Path = typer.Option(..., help="folder with one sub-folder of reference images (and concept.json) per concept"),
    out: Path = OutOpt,
    model: str = typer.Option(DEFAULT_CHAT_MODEL, "--model", "-m", help="chat model that writes the fingerprints (vlmkit models)"),
    clip: str = typer.Option(DEFAULT_MODEL, help="contrastive model for the image and description embeddings"),
    fingerprint_mode: str = typer.Option("json", help="json (the paper's JSON prompt) or questions (a short question per attribute)"),
    retries: int = typer.Option(2, help="tries per concept when the fingerprint reply is not valid JSON"),
    category: str = typer.Option("object", help="category of concepts whose concept.json names none"),
    batch_size: int = BatchOpt,
    cache: bool = CacheOpt,
    cache_dir: Path | None = CacheDirOpt,
    device: str = DeviceOpt,
    seed: int = SeedOpt,
) -> None:
    """Fingerprint and embed the concepts into a database folder."""
    values = dict(locals())
    from importlib import import_module

    from vlmkit.runs.options import build_options

    job = import_module("vlmkit.personalize.r2p_run")
    typer.echo(f"wrote the concept database {job.run_build(build_options(job.R2PBuildOptions, **values))}")


@app.command("eval")
def eval_cmd(
    db: Path = typer.Option(..., help="a database from vlmkit r2p build"),
    dataset: Path = typer.Option(..., help="query manifest.jsonl (path, concept or null), or a folder holding one"),
    out: Path = OutOpt,
    model: str | None = typer.Option(None, "--model", "-m", help="chat model (default: the one that built the database)"),
    clip: str | None = typer.Option(None, help="contrastive model (default and only choice: the one that built the database)"),
    k: int = typer.Option(3, "-k", "--k", help="candidates kept by retrieval"),
    reasoning_mode: str | None = typer.Option(None, help="json or questions (default: the database's fingerprint mode)"),
    retries: int = typer.Option(2, help="tries per query when the reasoning reply is not valid JSON"),
    pairwise_threshold: float = typer.Option(0.5, help="answer 'none' when every candidate's pairwise p(yes) is below this"),
    pairwise_prompt: str | None = typer.Option(None, help="pairwise question with {id}, {description}, {category} (default: the spec's)"),
    vlm_only: bool = typer.Option(True, "--vlm-only/--no-vlm-only", help="also run the VLM-only baseline (reasoning over all concepts)"),
    max_queries: int | None = typer.Option(None, help="evaluate only the first N queries"),
    report_queries: int = typer.Option(40, help="queries shown in report.html (errors first)"),
    batch_size: int = typer.Option(8, help="conversations per generation call"),
    cache: bool = CacheOpt,
    cache_dir: Path | None = CacheDirOpt,
    device: str = DeviceOpt,
    seed: int = SeedOpt,
) -> None:
    """Every method of the ablation on a query set: result.json, traces.jsonl and report.html."""
    run_job("vlmkit.personalize.r2p_run", "R2PEvalOptions", "run_eval", dict(locals()))


@app.command("prepare")
def prepare_cmd(
    data: Path = typer.Option(..., help="the benchmark folder (yollava: DIR/train/<name>, DIR/test/<name>; folders: DIR/<name>)"),
    out: Path = OutOpt,
    format: str = typer.Option("yollava", help="yollava or folders"),
    model: str = typer.Option(DEFAULT_MODEL, "--model", "-m", help="folders: contrastive model that picks the references"),
    references: int = typer.Option(5, help="folders: references per concept (closest to the concept's mean embedding)"),
    holdout: int = typer.Option(0, help="concepts left out of the database; their test images become negative queries"),
    categories: Path | None = typer.Option(None, help='JSON {"<concept>": "<category>"} (default category: object)'),
    cache: bool = CacheOpt,
    cache_dir: Path | None = CacheDirOpt,
    device: str = DeviceOpt,
    seed: int = SeedOpt,
) -> None:
    """Convert a benchmark folder into concepts/ and a query manifest.jsonl for build and eval."""
    values = dict(locals())
    from importlib import import_module

    from vlmkit.runs.options import build_options

    job = import_module("vlmkit.personalize.r2p_run")
    manifest = job.run_prepare(build_options(job.R2PPrepareOptions, **values))
    typer.echo(f"wrote {manifest.parent / 'concepts'} and {manifest}")
