"""A run's outputs: ``result.json``, ``report.html`` and ``run.json`` under ``--out``.

Nothing is written until :meth:`Run.finish`, and each file is written atomically, so a run
that fails leaves no ``result.json`` behind. ``run.json`` records the configuration, seed,
library versions, the vlmkit git commit when there is one, and timings.
"""

from __future__ import annotations

import platform
import subprocess
import sys
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from functools import cache
from pathlib import Path

from vlmkit.runs.files import atomic_write_json, atomic_write_text


@cache
def git_commit() -> str | None:
    """The commit of the vlmkit source tree, or ``None`` outside a git checkout."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True, timeout=5, check=True
        )
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def versions() -> dict[str, str]:
    from importlib.metadata import version  # as transformers.__version__; importing transformers costs half a second

    import numpy
    import torch

    import vlmkit

    return {
        "vlmkit": vlmkit.__version__, "python": platform.python_version(), "torch": torch.__version__,
        "transformers": version("transformers"), "numpy": numpy.__version__, "platform": platform.platform(),
    }


class Run:
    """Collects a command's configuration and timings; writes everything at the end.

    Args:
        out: the output directory (created at :meth:`finish`).
        command: the verb, e.g. ``"zeroshot"``.
        config: the typed options of the run (JSON-able).
        seed: the seed every random generator of the run was drawn from.
    """

    def __init__(self, out: str | Path, command: str, config: dict, seed: int = 0):
        self.out = Path(out)
        self.command = command
        self.config = config
        self.seed = seed
        self.timings: dict[str, float] = {}
        self.info: dict = {}
        self._started = datetime.now(timezone.utc)
        self._t0 = time.perf_counter()

    @contextmanager
    def timer(self, name: str):
        start = time.perf_counter()
        try:
            yield
        finally:
            self.timings[name] = round(self.timings.get(name, 0.0) + time.perf_counter() - start, 4)

    def record(self) -> dict:
        return {
            "command": self.command, "argv": sys.argv, "config": self.config, "seed": self.seed,
            "versions": versions(), "git_commit": git_commit(), "started": self._started.isoformat(),
            "finished": datetime.now(timezone.utc).isoformat(),
            "timings_s": {**self.timings, "total": round(time.perf_counter() - self._t0, 4)}, **self.info,
        }

    def finish(self, result: dict, report_html: str, indent: int | None = 2) -> Path:
        """Write ``report.html``, ``run.json`` and, last, ``result.json`` (indented by ``indent``,
        or on one line with ``None``); return the folder."""
        self.out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.out / "report.html", report_html)
        atomic_write_json(self.out / "run.json", self.record())
        atomic_write_json(self.out / "result.json", result, indent=indent)
        return self.out
