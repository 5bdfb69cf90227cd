"""``vlmkit index``: build and search an image index (FAISS)."""

from __future__ import annotations

import json
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
    SkipBadOpt,
    run_job,
)

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False, no_args_is_help=True, help=__doc__.splitlines()[0])


@app.command("build")
def build_cmd(
    dataset: str = typer.Option(..., help="manifest .jsonl or image folder"),
    out: Path = OutOpt,
    model: str = ModelOpt,
    kind: str = typer.Option("auto", help="auto (exact up to 200,000 images, IVF-SQ8 above), exact or ivf"),
    batch_size: int = BatchOpt,
    skip_bad_images: bool = SkipBadOpt,
    cache: bool = CacheOpt,
    cache_dir: Path | None = CacheDirOpt,
    device: str = DeviceOpt,
    seed: int = SeedOpt,
) -> None:
    """Embed a collection's images and write a searchable index to --out."""
    run_job("vlmkit.retrieval.index_run", "IndexBuildOptions", "run_index_build", dict(locals()))


@app.command("search")
def search_cmd(
    index: Path = typer.Option(..., help="an index directory from vlmkit index build"),
    text: list[str] | None = typer.Option(None, help="text query; repeatable"),
    image: list[Path] | None = typer.Option(None, help="image query; repeatable"),
    k: int = typer.Option(10, "-k", "--k", help="results per query"),
    model: str | None = typer.Option(None, "--model", "-m", help="the model that built the index (default: the one it records)"),
    dedup: bool = typer.Option(True, "--dedup/--no-dedup", help="drop repeated files and near-duplicate embeddings"),
    as_json: bool = typer.Option(False, "--json", help="print JSON instead of a table"),
) -> None:
    """Nearest images to text or image queries."""
    from vlmkit.retrieval.index_run import search_index

    if k < 1:
        from vlmkit.errors import UserError

        raise UserError("-k must be at least 1")
    results = search_index(index, list(text or []), list(image or []), k, model, dedup)
    if as_json:
        typer.echo(json.dumps(results, indent=2))
        return
    for query, hits in results.items():
        typer.echo(f"{query}")
        for rank, hit in enumerate(hits, 1):
            caption = f"  {hit['caption']}" if hit["caption"] else ""
            typer.echo(f"  {rank:>3}  {hit['score']:.4f}  {hit['path']}{caption}")
