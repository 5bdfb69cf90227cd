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
    run_job,
)

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False, no_args_is_help=True, help=__doc__.splitlines()[0])


@app.command("bench")
def bench_cmd(
    out: Path = OutOpt,
    model: str = ModelOpt,
    pool: int = typer.Option(3000, help="captioned, unlabelled images in the retrieval pool"),
    n: int = typer.Option(1000, help="labelled images evaluated"),
    k: int = typer.Option(16, "--k", help="cache images per attribute"),
    attributes: Path | None = typer.Option(None, help="other synonyms for the 14 world attributes, e.g. red:crimson (names unchanged)"),
    setting: str = typer.Option(
        "default", help="default, or weak-zero-shot: unseen attribute words, a pool whose captions use them, retrieval through the captions"
    ),
    batch_size: int = BatchOpt,
    cache: bool = CacheOpt,
    cache_dir: Path | None = CacheDirOpt,
    device: str = DeviceOpt,
    seed: int = SeedOpt,
) -> None:
    """The shapes-world attribute benchmark: pool, index, caches, every method, mAP table."""
    run_job("vlmkit.attributes.bench_run", "ComCaBenchOptions", "run_comca_bench", dict(locals()))


@app.command("build-cache")
def build_cache_cmd(
    attributes: Path = typer.Option(..., help="one attribute per line (name or name:syn1/syn2), or ovad:<folder>"),
    index: Path = typer.Option(..., help="image index to retrieve from (vlmkit index build)"),
    out: Path = OutOpt,
    model: str = ModelOpt,
    objects: Path | None = typer.Option(None, help="one object per line; without it the cache is plain retrieval (no prior)"),
    compatibility: Path | None = typer.Option(None, help="attribute-object compatibility scores (CSV attribute,object,score or JSON)"),
    cooccurrence: bool = typer.Option(
        True, "--cooccurrence/--no-cooccurrence", help="weigh objects by co-occurrence in the index's captions"
    ),
    k: int = typer.Option(16, "--k", help="images per attribute"),
    overfetch: int | None = typer.Option(
        None, help="neighbours fetched per query to find an unseen image (default: 117 for ovad, 256 for vaw)"
    ),
    protocol: str = typer.Option(
        "ovad", help="soft-label scaling of the official code: ovad (standardised rows) or vaw (then a row softmax)"
    ),
    batch_size: int = BatchOpt,
    cache: bool = CacheOpt,
    cache_dir: Path | None = CacheDirOpt,
    device: str = DeviceOpt,
    seed: int = SeedOpt,
) -> None:
    """Build a compositional cache: prior-sampled objects, retrieved images, soft labels."""
    run_job("vlmkit.attributes.comca_run", "BuildCacheOptions", "run_build_cache", dict(locals()))


@app.command("eval")
def eval_cmd(
    comca_cache: Path = typer.Option(..., "--cache", help="a cache from vlmkit comca build-cache"),
    dataset: str = typer.Option(..., help="manifest whose attributes map attribute names to 1, 0 or -1"),
    out: Path = OutOpt,
    model: str = ModelOpt,
    batch_size: int = BatchOpt,
    cache_dir: Path | None = CacheDirOpt,
    device: str = DeviceOpt,
    seed: int = SeedOpt,
) -> None:
    """Zero-shot vs cache: mAP overall and per head/medium/tail, AP per attribute."""
    run_job("vlmkit.attributes.comca_run", "ComCaEvalOptions", "run_comca_eval", dict(locals()))
