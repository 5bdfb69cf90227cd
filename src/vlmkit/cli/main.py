"""``vlmkit``: one typer app; each verb only parses arguments and dispatches to the library.

User mistakes (:class:`vlmkit.errors.UserError`) print one line on stderr and exit with code 2.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import typer

from vlmkit.cli import chat as chat_cli
from vlmkit.cli import compress as compress_cli
from vlmkit.cli import sith as sith_cli
from vlmkit.cli.c2b import app as c2b_app
from vlmkit.cli.circle import app as circle_app
from vlmkit.cli.comca import app as comca_app
from vlmkit.cli.common import (
    BatchOpt,
    CacheDirOpt,
    CacheOpt,
    DeviceOpt,
    ModelOpt,
    OutOpt,
    SeedOpt,
    SkipBadOpt,
    done,
    run_job,
)
from vlmkit.cli.debias import app as debias_app
from vlmkit.cli.icl import app as icl_app
from vlmkit.cli.index import app as index_app
from vlmkit.cli.openworld import app as openworld_app
from vlmkit.cli.proactive import app as proactive_app
from vlmkit.cli.r2p import app as r2p_app
from vlmkit.cli.sae import app as sae_app
from vlmkit.cli.world import app as world_app
from vlmkit.errors import UserError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False, help=__doc__.splitlines()[0])

app.add_typer(world_app, name="world")
app.add_typer(sith_cli.app, name="sith")
app.add_typer(sae_app, name="sae")
app.add_typer(debias_app, name="debias")
app.add_typer(index_app, name="index")
app.add_typer(comca_app, name="comca")
app.add_typer(c2b_app, name="c2b")
app.add_typer(openworld_app, name="openworld")
app.add_typer(icl_app, name="icl")
app.add_typer(circle_app, name="circle")
app.add_typer(proactive_app, name="proactive")
app.add_typer(r2p_app, name="r2p")
app.command("chat")(chat_cli.chat_cmd)
app.command("export")(chat_cli.export_cmd)
app.command("merge")(compress_cli.merge_cmd)
app.command("sft")(compress_cli.sft_cmd)
app.add_typer(compress_cli.dmo_app, name="dmo")
app.command("prune")(compress_cli.prune_cmd)
app.command("recover")(compress_cli.recover_cmd)


@app.command("models")
def models_cmd() -> None:
    """List model names, their families and what each supports (contrastive, then chat models)."""
    from vlmkit.models import list_models
    from vlmkit.models.chat_registry import list_chat_models

    table = [(r.name, r.family, ",".join(r.supports), r.description) for r in list_models()]
    table += [(r.name, f"chat/{r.backend}", ",".join(r.capabilities) or "text", r.description) for r in list_chat_models()]
    widths = [max(len(row[i]) for row in table) for i in range(3)]
    for row in table:
        typer.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths + [0], strict=True)).rstrip())


@app.command("embed")
def embed_cmd(
    out: Path = OutOpt,
    model: str = ModelOpt,
    dataset: str | None = typer.Option(None, help="manifest .jsonl or image folder to embed"),
    texts: Path | None = typer.Option(None, help="file with one text per line to embed"),
    batch_size: int = BatchOpt,
    skip_bad_images: bool = SkipBadOpt,
    cache: bool = CacheOpt,
    cache_dir: Path | None = CacheDirOpt,
    device: str = DeviceOpt,
    seed: int = SeedOpt,
) -> None:
    """Embed images or texts into embeddings.npy plus index.jsonl."""
    run_job("vlmkit.embed_run", "EmbedOptions", "run_embed", dict(locals()))


@app.command("zeroshot")
def zeroshot_cmd(
    dataset: str = typer.Option(..., help="manifest .jsonl or class-per-folder image tree"),
    out: Path = OutOpt,
    model: str = ModelOpt,
    classes: str | None = typer.Option(None, help="comma-separated class names or a file (default: the dataset's labels)"),
    templates: list[str] | None = typer.Option(
        None, help="template set (simple, ensemble, bare), a file, or a template with {}; repeatable"
    ),
    attribute: str | None = typer.Option(None, help="classify this manifest attribute instead of the label"),
    batch_size: int = BatchOpt,
    skip_bad_images: bool = SkipBadOpt,
    cache: bool = CacheOpt,
    cache_dir: Path | None = CacheDirOpt,
    device: str = DeviceOpt,
    seed: int = SeedOpt,
) -> None:
    """Zero-shot classification: accuracy, per-class accuracy and confusion matrix."""
    run_job("vlmkit.classify.zeroshot_run", "ZeroShotOptions", "run_zeroshot", dict(locals()))


@app.command("edit")
def edit_cmd(
    out: Path = OutOpt,
    model: str = ModelOpt,
    suppress: str | None = typer.Option(None, help="comma-separated concepts whose directions to scale down (factor 0 by default)"),
    amplify: str | None = typer.Option(None, help="comma-separated concepts whose directions to scale up (factor 1.5 by default)"),
    factor: float | None = typer.Option(None, help="multiply the matching singular values by this"),
    threshold: float = typer.Option(0.5, help="edit vectors whose explanation's relevance to the concepts is at least this (-1..1)"),
    layers: str = sith_cli.LayersOpt,
    vocab: str = sith_cli.VocabOpt,
    k: int = sith_cli.KOpt,
    lam: float = sith_cli.LamOpt,
    method: str = sith_cli.MethodOpt,
    side: str = sith_cli.SideOpt,
    image_mean: str = sith_cli.ImageMeanOpt,
    batch_size: int = BatchOpt,
    cache: bool = CacheOpt,
    cache_dir: Path | None = CacheDirOpt,
    device: str = DeviceOpt,
    seed: int = SeedOpt,
) -> None:
    """Edit a model by rescaling the singular values of heads whose SITH explanations match concepts."""
    run_job("vlmkit.interpret.edit_run", "EditOptions", "run_edit", dict(locals()))
    typer.echo(f"load the edited model with --model {out}")


@app.command("demo")
def demo_cmd(out: Path = typer.Option(Path("runs/demo"), "--out", "-o"), model: str = ModelOpt) -> None:
    """The main job, offline: SITH explains every attention head of the model from its weights."""
    from vlmkit.demo import run_demo

    done(run_demo(out, model))


#: options an empty value would silently turn into something else (typer reads "" as the path ".",
#: and an empty model name as the default model): an unset shell variable in ``--out $OUT``
NO_EMPTY_VALUE = ("--out", "-o", "--cache-dir", "--model", "-m", "--data", "--dataset")
#: options naming the folder a command writes its results in: checked before anything loads, for every command
OUTPUT_FOLDERS = ("--out", "-o")


def check_arguments(args: list[str]) -> None:
    """A one-line :class:`UserError` for ``--out ""`` (or ``--out=``) and the like, and for an
    output folder that cannot be written (an existing file, a read-only place), before anything
    runs (commands whose options are a :class:`~vlmkit.runs.options.RunOptions` check it again)."""
    from vlmkit.runs.options import check_out

    for index, arg in enumerate(args):
        name, equals, value = arg.partition("=")
        given = value if equals else (args[index + 1] if index + 1 < len(args) else None)
        if given is None or name not in NO_EMPTY_VALUE:
            continue
        if not given.strip():
            raise UserError(f"{name} was given an empty value; give a real one (an unset shell variable?)")
        if name in OUTPUT_FOLDERS:
            try:
                check_out(given)
            except ValueError as exc:
                raise UserError(f"invalid {name}: {exc}") from exc


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the app, turning user errors into one line and exit code 2."""
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    try:
        check_arguments(sys.argv[1:] if argv is None else list(argv))
        app(args=argv, standalone_mode=False, prog_name="vlmkit")
    except UserError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        typer.echo("interrupted; run the same command again to resume from the embedding cache", err=True)
        sys.exit(130)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except Exception as exc:  # usage errors of click, or of the click that newer typers vendor
        if hasattr(exc, "format_message") and isinstance(getattr(exc, "exit_code", None), int):
            ctx = getattr(exc, "ctx", None)
            where = f" (see {ctx.command_path} --help)" if ctx is not None else ""
            typer.echo(f"error: {' '.join(exc.format_message().split())}{where}", err=True)  # one line, as a UserError
            sys.exit(exc.exit_code)
        if type(exc).__name__ == "Abort":
            sys.exit(1)
        raise

if __name__ == "__main__":
    main()
