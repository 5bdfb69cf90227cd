"""``vlmkit circle``: open-world in-context classification from unlabelled context images."""

from __future__ import annotations

from pathlib import Path

import typer

from vlmkit.cli.chat import ApiKeyOpt, BaseUrlOpt, ChatModelOpt, ConcurrencyOpt, DtypeOpt
from vlmkit.cli.common import CacheDirOpt, CacheOpt, DeviceOpt, OutOpt, SeedOpt, run_job
from vlmkit.cli.icl import RetrieverOpt
from vlmkit.cli.openworld import ChatBatchOpt, DatasetOpt, JudgeModeOpt, JudgeOpt

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False, no_args_is_help=True, help=__doc__.splitlines()[0])


@app.command("run")
def run_cmd(
    dataset: str = DatasetOpt,
    out: Path = OutOpt,
    model: str = ChatModelOpt,
    context: str | None = typer.Option(
        None, help="where the m unlabelled context images are drawn from (default: the dataset's train split)"
    ),
    m: int = typer.Option(16, "--m", help="context images"),
    rounds: int = typer.Option(2, help="T: leave-one-out refinement rounds of the context labels"),
    prompt: str = typer.Option("base", help="the open-world question (see vlmkit openworld run --prompt)"),
    judge: str | None = JudgeOpt,
    judge_mode: str = JudgeModeOpt,
    li_wrap: bool = typer.Option(True, "--li-wrap/--no-li-wrap", help="wrap answers in CIRCLE's list sentence before the LI judge"),
    baselines: bool = typer.Option(
        True, "--baselines/--no-baselines", help="also run zero-shot, pseudo-ICL, random context and CLIP retrieval"
    ),
    retriever: str = RetrieverOpt,
    limit: int | None = typer.Option(None, help="answer a seeded random subset of this many queries"),
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
    """Pseudo-label m unlabelled context images, refine the labels for T leave-one-out rounds, then answer each query with them."""
    run_job("vlmkit.classify.circle_run", "CircleOptions", "run_circle", dict(locals()))
