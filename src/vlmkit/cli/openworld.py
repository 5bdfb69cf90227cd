"""``vlmkit openworld``: LMMs as open-world classifiers (run a model, score prediction files)."""

from __future__ import annotations

from pathlib import Path

import typer

from vlmkit.cli.chat import ApiKeyOpt, BaseUrlOpt, ChatModelOpt, ConcurrencyOpt, DtypeOpt
from vlmkit.cli.common import CacheDirOpt, CacheOpt, DeviceOpt, OutOpt, SeedOpt, run_job

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False, no_args_is_help=True, help=__doc__.splitlines()[0])

DatasetOpt = typer.Option(
    ...,
    help=(
        "<benchmark>:<folder>[@split] (caltech101, dtd, ... see docs/openworld.md), world[:N][@split], "
        "a manifest or a class-per-folder tree"
    ),
)
ChatBatchOpt = typer.Option(8, help="conversations per model call (1 reproduces papers exactly: padding can change answers)")
JudgeOpt = typer.Option(
    None, help="chat model that judges LI (and Elo games), e.g. smollm2-135m or openai:<model>; no judge: no LI, Elo by SS"
)
JudgeModeOpt = typer.Option(
    "generate", help="LI rule: generate (official: the reply must be exactly 1) or score (log p('1') > log p('0'); for weak judges)"
)


@app.command("run")
def run_cmd(
    dataset: str = DatasetOpt,
    out: Path = OutOpt,
    model: str = ChatModelOpt,
    prompt: str = typer.Option("base", help="base, generic, specific, cot, caption, describe, list, domain, llava_cot, llamav_o1"),
    judge: str | None = JudgeOpt,
    judge_mode: str = JudgeModeOpt,
    limit: int | None = typer.Option(None, help="score a seeded random subset of this many images"),
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
    """Ask a chat model what each image shows (no class list); write predictions.jsonl and TI/SS/CS (LI with --judge)."""
    run_job("vlmkit.classify.openworld_run", "OpenWorldOptions", "run_openworld", dict(locals()))


@app.command("score")
def score_cmd(
    predictions: list[Path] = typer.Option(
        ..., help="JSONL with prediction and label per line (optional dataset, group, model, id); repeat for several models (Elo)"
    ),
    out: Path = OutOpt,
    judge: str | None = JudgeOpt,
    judge_mode: str = JudgeModeOpt,
    question: str = typer.Option("What type of object is in this photo?", help="the question the LI judge prompt quotes"),
    li_wrap: bool = typer.Option(
        False, "--li-wrap/--no-li-wrap", help="wrap each answer in CIRCLE's sentence (a list of candidate labels) before judging"
    ),
    elo_games: int = typer.Option(10_000, help="Elo games sampled per dataset"),
    elo_rounds: int = typer.Option(100, help="Elo bootstrap rounds"),
    elo_bootstrap: str = typer.Option("resample", help="resample (games drawn with replacement) or shards (the official script)"),
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
    """Score prediction files: TI, SS, bCS, mCS (LI with --judge) per dataset and group; Elo across models."""
    run_job("vlmkit.classify.openworld_score", "ScoreOptions", "run_score", dict(locals()))
