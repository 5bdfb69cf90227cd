"""Build once, reuse after: work whose output is kept beside a stamp of the parameters it was built
with (a rendered split, an embedding split). Rerunning with the same parameters reuses the
output; other parameters, a missing output or a damaged stamp rebuild it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from vlmkit.runs.files import atomic_write_json
from vlmkit.runs.readers import read_stamp


def is_fresh(stamp: Path, params: dict, *products: Path) -> bool:
    """Whether ``stamp`` records exactly ``params`` and every product exists."""
    return read_stamp(stamp) == params and all(Path(p).exists() for p in products)


def build_once(stamp: Path, params: dict, build: Callable[[], object], *products: Path) -> bool:
    """Call ``build()`` unless :func:`is_fresh`; write the stamp after it succeeds (so an
    interrupted build is redone). Returns whether it built."""
    if is_fresh(stamp, params, *products):
        return False
    build()
    atomic_write_json(stamp, params)
    return True
