"""Options and helpers shared by the CLI's verbs."""

from __future__ import annotations

import shutil
from contextlib import contextmanager
from pathlib import Path

import typer

from vlmkit.errors import UserError
from vlmkit.models.registry import DEFAULT_MODEL

ModelOpt = typer.Option(DEFAULT_MODEL, "--model", "-m",
                        help="embedded, embedded-biased, random:<arch>[@seed], hf:<repo-or-dir>, or a checkpoint directory")
OutOpt = typer.Option(..., "--out", "-o", help="output directory")
DeviceOpt = typer.Option("cpu", help="cpu, cuda, cuda:N, mps or auto")
SeedOpt = typer.Option(0, min=0, help="seed of every random generator")
BatchOpt = typer.Option(32, help="images or texts per forward pass")
CacheOpt = typer.Option(True, "--cache/--no-cache", help="reuse embeddings cached on disk")
CacheDirOpt = typer.Option(None, help="embedding cache folder (default $VLMKIT_CACHE or ~/.cache/vlmkit)")
SkipBadOpt = typer.Option(False, "--skip-bad-images/--fail-on-bad-images",
                          help="skip unreadable images (listed in result.json) instead of stopping")


def done(out: Path) -> None:
    typer.echo(f"wrote {out / 'result.json'} and {out / 'report.html'}")


def run_job(module: str, options: str, runner: str, values: dict) -> None:
    """Import ``module`` lazily (the CLI starts fast), validate ``values`` into its ``options``
    class (errors become one line), run ``runner`` and say where the results are.

    Options are validated before any work. A user error raised later (a bad file found while
    working) removes ``--out`` when this command created it, so nothing half-written is left."""
    from importlib import import_module

    from vlmkit.runs.options import build_options

    job = import_module(module)
    opts = build_options(getattr(job, options), **values)
    with removing_fresh_out(values.get("out")):
        done(getattr(job, runner)(opts))


@contextmanager
def removing_fresh_out(out: Path | None):
    """Run the body; when it raises a :class:`UserError` (a bad file found while working), remove
    ``out`` if this command created it, so nothing half-written is left. A folder that existed
    before (a run being resumed) is left as it is. When the error says it was met after saving
    progress (``exc.resumable``, a path inside ``out``: e.g. a training state, then a bad image),
    only the top folder holding that path is kept, and the error says so: fixing the input and
    running the same command again resumes from it."""
    fresh = out is not None and not Path(out).exists()
    try:
        yield
    except UserError as exc:
        if fresh:
            kept = _kept_progress(Path(out), exc.resumable)
            if kept is None:
                shutil.rmtree(out, ignore_errors=True)
            else:
                for entry in Path(out).iterdir():
                    if entry == kept:
                        continue
                    if entry.is_dir() and not entry.is_symlink():
                        shutil.rmtree(entry, ignore_errors=True)
                    else:
                        entry.unlink(missing_ok=True)
                exc.args = (f"{exc}; the progress so far is kept in {kept}: fix this and run the same command again to resume",)
        raise


def _kept_progress(out: Path, resumable) -> Path | None:
    """The entry of ``out`` that holds ``resumable`` (when it exists and lies inside ``out``)."""
    if resumable is None or not Path(resumable).exists():
        return None
    inside = Path(resumable).resolve()
    if not inside.is_relative_to(out.resolve()) or inside == out.resolve():
        return None
    return out / inside.relative_to(out.resolve()).parts[0]
