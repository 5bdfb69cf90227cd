"""``vlmkit sith``: explain the attention heads of a vision tower from its weights; ``vlmkit sith compare``."""

from __future__ import annotations

from pathlib import Path

import typer

from vlmkit.cli.common import BatchOpt, CacheDirOpt, CacheOpt, DeviceOpt, ModelOpt, SeedOpt, run_job
from vlmkit.errors import UserError
from vlmkit.runs.memory import reuse_freed_memory

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False, invoke_without_command=True)

LayersOpt = typer.Option("last4", help="all, last<N>, or a list like 0,3,20-23 (negatives count from the end)")
VocabOpt = typer.Option("default", help="concept vocabulary: default, world, or a file with one concept per line")
KOpt = typer.Option(5, "--k", help="concepts per singular vector")
LamOpt = typer.Option(0.3, "--lam", help="COMP's coherence weight")
MethodOpt = typer.Option("comp", help="comp, omp (non-negative OMP), mp (non-negative MP) or topk")
SideOpt = typer.Option("right", help="right (write directions) or left (read directions) singular vectors")
ImageMeanOpt = typer.Option("auto", help="image-embedding mean to subtract: auto, synthetic (dead leaves), world, none, or a dataset")


@app.callback()
def sith_cmd(
    ctx: typer.Context,
    out: Path | None = typer.Option(None, "--out", "-o", help="output directory"),
    model: str = ModelOpt,
    layers: str = LayersOpt,
    vocab: str = VocabOpt,
    k: int = KOpt,
    lam: float = LamOpt,
    method: str = MethodOpt,
    side: str = SideOpt,
    fold_ln: bool = typer.Option(True, "--fold-ln/--no-fold-ln", help="fold the pre-attention LayerNorm gain into W_V"),
    center: bool = typer.Option(True, "--center/--no-center", help="centre the value-output matrices"),
    ln_post: str = typer.Option("affine", help="map directions through the full final LayerNorm (affine) or its gain only (centred)"),
    image_mean: str = ImageMeanOpt,
    coherence: bool = typer.Option(True, "--coherence/--no-coherence", help="score coherence with the MiniLM sentence encoder"),
    batch_size: int = BatchOpt,
    cache: bool = CacheOpt,
    cache_dir: Path | None = CacheDirOpt,
    device: str = DeviceOpt,
    seed: int = SeedOpt,
) -> None:
    """Explain each attention head's singular vectors with sparse concept codes (SITH + COMP)."""
    if ctx.invoked_subcommand is not None:
        return
    if out is None:
        raise UserError("give --out DIR for the result (or a subcommand: vlmkit sith compare --help)")
    values = {name: value for name, value in locals().items() if name != "ctx"}
    reuse_freed_memory()  # a score matrix per batch: reuse its pages instead of mapping fresh ones
    run_job("vlmkit.interpret.sith_run", "SithOptions", "run_sith", values)


@app.command("compare")
def compare_cmd(
    base: str = typer.Option(..., help="the base model"),
    tuned: str = typer.Option(..., help="the fine-tuned model (same vision architecture)"),
    out: Path = typer.Option(..., "--out", "-o", help="output directory"),
    layers: str = LayersOpt,
    vocab: str = VocabOpt,
    k: int = KOpt,
    lam: float = LamOpt,
    method: str = MethodOpt,
    side: str = SideOpt,
    image_mean: str = ImageMeanOpt,
    batch_size: int = BatchOpt,
    cache: bool = CacheOpt,
    cache_dir: Path | None = CacheDirOpt,
    device: str = DeviceOpt,
    seed: int = SeedOpt,
) -> None:
    """Match each head's singular vectors between a base and a fine-tuned model (Hungarian on |cos|)."""
    values = dict(locals())
    values["model"] = values.pop("base")
    reuse_freed_memory()  # SITH on both models: as above
    run_job("vlmkit.interpret.compare_run", "CompareOptions", "run_compare", values)
