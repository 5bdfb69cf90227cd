"""``vlmkit comca``: training-free open-vocabulary attribute detection with a compositional cache."""

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
    done,
)

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False, no_args_is_help=True, help=__doc__.splitlines()[0])


@app.command("bench")
def bench_cmd(
    out: Path = OutOpt,
    model: str = ModelOpt,
    pool: int = typer.Option(3000, help="captioned, unlabelled images in the retrieval pool"),
    n: int = typer.Option(1000, help="labelled images evaluated"),
    k: int = typer.Option(16, "--k", help="cache images per attribute"),
    batch_size: int = BatchOpt,
    cache: bool = CacheOpt,
    cache_dir: Path | None = CacheDirOpt,
    device: str = DeviceOpt,
    seed: int = SeedOpt,
) -> None:
    """The shapes-world attribute benchmark: pool, index, caches, every method, mAP table."""
    values = dict(locals())
    from vlmkit.attributes.bench_run import ComCaBenchOptions, run_comca_bench
    from vlmkit.runs.options import build_options

    done(run_comca_bench(build_options(ComCaBenchOptions, **values)))
