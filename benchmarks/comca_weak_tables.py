"""Markdown tables over seeds from the JSON files of comca_weak_ablate.py and comca_weak_objects.py.

    python benchmarks/comca_weak_tables.py runs/comca-weak-ablate-s{0,1,2}.json runs/comca-weak-objects-s{0,1,2}.json

Each cell is the mean over the files of one kind, then each file's value in the order given
(for random-positive caches, each seed's mean over its draws; the standard deviation over draws,
averaged over seeds, follows "sd").
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def cell(values: list[float]) -> str:
    return f"{np.mean(values):.3f} ({' / '.join(f'{v:.3f}' for v in values)})"


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = [f"| {' | '.join(header)} |", f"|{'---|' * len(header)}"]
    return "\n".join([*lines, *(f"| {' | '.join(r)} |" for r in rows)])


def ablate_tables(reports: list[dict]) -> list[str]:
    first = reports[0]
    columns = ("mAP", "head", "medium", "tail", "color", "texture", "label_precision")
    caches = table(["cache", *columns], [[m, *(cell([r["caches"][m][c] for r in reports]) for c in columns)] for m in first["caches"]])
    ks = table(["K", "plain", "ComCa"], [[k, *(cell([r["k"][k][m] for r in reports]) for m in ("plain", "ComCa"))] for k in first["k"]])
    shown = ("alpha=0.6 beta=1.0 lambda=1.17", "alpha=0.0 beta=1.0 lambda=1.17", "alpha=0.6 beta=3.0 lambda=1.17",
             "alpha=0.6 beta=0.5 lambda=1.17", "alpha=0.6 beta=1.0 lambda=0.3", "alpha=0.6 beta=1.0 lambda=100.0")
    best = {m: max(first["scoring"], key=lambda g, m=m: np.mean([r["scoring"][g][m] for r in reports])) for m in ("plain", "ComCa")}
    grid = [[g + (" (official)" if g == shown[0] else "") + "".join(f" (best for {m})" for m, b in best.items() if b == g),
             *(cell([r["scoring"][g][m] for r in reports]) for m in ("plain", "ComCa")),
             cell([r["scoring"][g]["ComCa"] - r["scoring"][g]["plain"] for r in reports])]
            for g in dict.fromkeys([*shown, *best.values()])]
    scoring = table(["alpha, beta, lambda", "plain", "ComCa", "ComCa - plain"], grid)
    gaps = [r["scoring"][g]["ComCa"] - r["scoring"][g]["plain"] for r in reports for g in r["scoring"]]
    wins = (f"grid points where ComCa beats plain, per seed: {' / '.join(r['scoring_comca_wins'] for r in reports)}; "
            f"ComCa - plain over all points and seeds: {min(gaps):+.3f} to {max(gaps):+.3f}")
    labels = table(["values", "plain", "ComCa"], [[v, *(cell([r["labels"][v][m] for r in reports]) for m in ("plain", "ComCa"))]
                                                  for v in first["labels"]])
    def image_set(r: dict, label: str) -> dict:
        return next(v for k, v in r["image_sets"].items() if k.split(", its")[0] == label)

    labels_ = [k.split(", its")[0] for k in first["image_sets"]]
    counts = " / ".join(k.split(", its ")[1].split()[0] for r in reports for k in r["image_sets"] if ", its " in k)
    sets = [[f"ComCa, its wrong-label images ({counts}) replaced by positives of the same object" if label == "ComCa" else label,
             cell([image_set(r, label)["mean"] for r in reports]), f"{np.mean([image_set(r, label)['sd'] for r in reports]):.3f}"]
            for label in labels_]
    return [caches, ks, scoring, wins, labels, table(["cache of random positives", "mAP", "sd over draws"], sets)]


def object_tables(reports: list[dict]) -> list[str]:
    first = reports[0]
    positives = table(["objects", "mAP", "sd over draws"], [[n, cell([r["random_positives"][n]["mean"] for r in reports]),
                                                             f"{np.mean([r['random_positives'][n]['sd'] for r in reports]):.3f}"]
                                                            for n in first["random_positives"]])
    retrieved = table(["cache", "mAP", "label precision"],
                      [[n, *(cell([r["retrieved"][n][c] for r in reports]) for c in ("mAP", "label_precision"))]
                       for n in first["retrieved"]])
    return [positives, retrieved]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", type=Path)
    args = parser.parse_args()
    reports = [json.loads(f.read_text()) for f in args.files]
    ablate = [r for r in reports if "scoring" in r]
    objects = [r for r in reports if "random_positives" in r]
    for part in (ablate_tables(ablate) if ablate else []) + (object_tables(objects) if objects else []):
        print(part, end="\n\n")


if __name__ == "__main__":
    main()
