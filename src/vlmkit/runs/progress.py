"""Progress bars for long work (rich); silenced with ``VLMKIT_PROGRESS=0``."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")


def enabled() -> bool:
    return os.environ.get("VLMKIT_PROGRESS", "1") != "0"


def track(items: Iterable[T], description: str, total: int | None = None) -> Iterator[T]:
    """Iterate ``items`` with a progress bar on stderr, when stderr is a terminal (elsewhere rich
    draws nothing but leaves an empty line, which would precede a one-line error)."""
    if enabled():
        from rich.console import Console

        console = Console(stderr=True)
        if console.is_terminal:
            from rich.progress import track as rich_track

            yield from rich_track(items, description=description, total=total, console=console, transient=True)
            return
    yield from items
