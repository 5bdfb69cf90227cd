"""``vlmkit sae``: train and evaluate sparse autoencoders on a model's embeddings."""

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

TextsOpt = typer.Option(None, help="file with one text per line (their unnormalised text embeddings)")
DatasetOpt = typer.Option(None, help="manifest or image folder (unnormalised image embeddings)")


@app.command("train")
def train_cmd(
    out: Path = OutOpt,
    model: str = ModelOpt,
    texts: Path | None = TextsOpt,
    dataset: str | None = DatasetOpt,
    latents: int = typer.Option(16384, help="number of latents"),
    k: str = typer.Option("256,512", "--k", help="Matryoshka TopK levels, increasing"),
    weighting: str = typer.Option("reverse", help="reverse (smallest k weighs most) or uniform"),
    steps: int = typer.Option(2000, help="optimisation steps"),
    train_batch: int = typer.Option(1024, help="embeddings per training step"),
    lr: float = typer.Option(1e-3, help="peak learning rate (Adam, warm-up then cosine)"),
    batch_size: int = BatchOpt,
    cache: bool = CacheOpt,
    cache_dir: Path | None = CacheDirOpt,
    device: str = DeviceOpt,
    seed: int = SeedOpt,
) -> None:
    """Train a Matryoshka TopK SAE; rerun the same command to resume."""
    run_job("vlmkit.debias.sae_run", "SAETrainOptions", "run_sae_train", dict(locals()))


@app.command("eval")
def eval_cmd(
    sae: Path = typer.Option(..., help="an SAE directory, or an official SEM checkpoint file"),
    out: Path = OutOpt,
    model: str = ModelOpt,
    texts: Path | None = TextsOpt,
    dataset: str | None = DatasetOpt,
    batch_size: int = BatchOpt,
    cache: bool = CacheOpt,
    cache_dir: Path | None = CacheDirOpt,
    device: str = DeviceOpt,
    seed: int = SeedOpt,
) -> None:
    """Reconstruction quality of an SAE: FVU, cosine, L0, dead latents."""
    run_job("vlmkit.debias.sae_run", "SAEEvalOptions", "run_sae_eval", dict(locals()))
