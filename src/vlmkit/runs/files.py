"""Atomic file writes: a reader never sees a half-written file."""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np


def _atomic(path: Path, write: Callable[[Path], None]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600 files; give the usual permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    return _atomic(Path(path), lambda tmp: tmp.write_text(text, encoding="utf-8"))


_PLAIN = (str, int, bool, type(None))


def to_jsonable(value):
    """Convert numpy/torch scalars and arrays, paths and tuples to JSON types."""
    kind = type(value)
    if kind in _PLAIN:  # most leaves of a large result: answered before the slower checks below
        return value
    if kind is float:
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def dumps(data, indent: int | None = 2) -> str:
    """JSON text of ``data``: directly when it holds only JSON types and finite floats (json's
    encoder alone, no walk in Python: 0.09 s instead of 0.32 s for ViT-L/14's SITH result), else
    through :func:`to_jsonable` (NaN and infinities become null). The same text either way for
    data with string keys."""
    try:
        return json.dumps(data, indent=indent, allow_nan=False)
    except (TypeError, ValueError):
        return json.dumps(to_jsonable(data), indent=indent)


def atomic_write_json(path: str | Path, data, indent: int | None = 2) -> Path:
    """``indent=None`` writes one line (json's C encoder: several times faster for large results)."""
    return atomic_write_text(path, dumps(data, indent) + "\n")


def atomic_save_npy(path: str | Path, array: np.ndarray) -> Path:
    def write(tmp: Path) -> None:
        with tmp.open("wb") as handle:
            np.save(handle, array)

    return _atomic(Path(path), write)


def atomic_save_npz(path: str | Path, **arrays: np.ndarray) -> Path:
    def write(tmp: Path) -> None:
        with tmp.open("wb") as handle:
            np.savez(handle, **arrays)

    return _atomic(Path(path), write)


@contextmanager
def atomic_directory(out: str | Path) -> Iterator[Path]:
    """Build a directory beside ``out`` and rename it to ``out`` only if the block succeeds.

    ``out`` must not exist or be an empty folder. The staging folder gets the usual permissions
    (``mkdtemp`` makes 0700 folders), and is removed when the block fails or is interrupted.
    """
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(staging, 0o777 & ~umask)
    try:
        yield staging
        if out.exists():
            out.rmdir()
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
