"""The spread of a benchmark table over runs on differently seeded world splits.

    python benchmarks/seed_spread.py RUN_DIR [RUN_DIR ...] [--metrics accuracy,worst_group]

Each ``RUN_DIR/result.json`` holds ``table.<method>.<metric>``, either a number (``comca bench``)
or ``{"mean": .., "ci95": ..}`` (``debias eval``, whose mean over its random halves is taken).
Prints a Markdown table: per method and metric, the mean over runs, the sample standard deviation,
and the per-run values in the order given, so that a reader sees every seed.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def value(cell) -> float:
    return float(cell["mean"] if isinstance(cell, dict) else cell)


def spread(tables: list[dict], metrics: list[str]) -> list[list[str]]:
    """Rows ``[method, "mean ± sd (v1 / v2 / ...)" per metric]`` over the given result tables."""
    rows = []
    for method in tables[0]:
        row = [method]
        for metric in metrics:
            values = np.asarray([value(t[method][metric]) for t in tables])
            sd = values.std(ddof=1) if len(values) > 1 else 0.0
            row.append(f"{values.mean():.3f} ± {sd:.3f} ({' / '.join(f'{v:.3f}' for v in values)})")
        rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--metrics", help="comma-separated (default: every metric of the first method)")
    args = parser.parse_args()
    tables = [json.loads((run / "result.json").read_text())["table"] for run in args.runs]
    first = tables[0][next(iter(tables[0]))]
    metrics = args.metrics.split(",") if args.metrics else list(first)
    print(f"| method | {' | '.join(metrics)} |")
    print(f"|---|{'---|' * len(metrics)}")
    for row in spread(tables, metrics):
        print(f"| {' | '.join(row)} |")


if __name__ == "__main__":
    main()
