"""Recognition metrics of R2P (spec §4) and the query sets they are computed on.

Protocol (the MyVLM / Yo'LLaVA one is not published in detail; this is vlmkit's): each query
image shows one of the user's concepts (a *positive*, its row names the concept) or none of them
(a *negative*, ``concept: null``). A method answers with a concept id or "none".

- ``positive_accuracy``: positives answered with their own concept;
- ``negative_accuracy``: negatives answered "none";
- ``accuracy`` = ``weighted_accuracy``: the balanced mean of the two (the spec's suggestion);
  ``overall_accuracy``: the fraction of all queries answered correctly (count-weighted);
- ``recall_retrieval``: positives whose concept is among the method's retrieved candidates
  (top-1 for the retrieval-only methods, all concepts for ``vlm-only``);
- ``recall_final``: positives recognised by the final answer (= positive accuracy here).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vlmkit.errors import UserError


@dataclass(frozen=True)
class Query:
    path: Path
    concept: str | None


def read_queries(dataset: str | Path, known: list[str]) -> list[Query]:
    """Queries from a ``manifest.jsonl`` (or a folder holding one): rows with ``path`` (relative to
    the manifest) and ``concept`` (an id of the database, or null for a negative)."""
    from vlmkit.runs.readers import read_jsonl

    fix = 'write one JSON row per query image: {"path": "queries/x.png", "concept": "<id>" or null}'
    path = Path(dataset).expanduser()
    if path.is_dir():
        path = path / "manifest.jsonl"
    rows = read_jsonl(path, "query manifest", fix, dict)
    queries = []
    for n, row in enumerate(rows, 1):
        concept = row.get("concept")
        if not isinstance(row.get("path"), str) or (concept is not None and not isinstance(concept, str)):
            raise UserError(f"{path} row {n} needs a string path and a concept id or null; {fix}")
        concept = row.get("concept")
        if concept is not None and concept not in known:
            raise UserError(f"{path} row {n} names concept {concept!r}, which the database lacks ({', '.join(known[:6])}...); "
                            "evaluate with the database built from the same concepts")
        image = (path.parent / row["path"]).resolve()
        if not image.is_file():
            raise UserError(f"{path} row {n}: image {image} not found; fix the path (relative to the manifest)")
        queries.append(Query(image, concept))
    return queries


def check_disjoint(references: list[Path], queries: list[Query]) -> None:
    """Stop when a query image is also a reference image (same pixels): spec §7, no overlap."""
    from vlmkit.runs.cache import file_digest

    seen = {file_digest(Path(p)) for p in references}
    for q in queries:
        if file_digest(q.path) in seen:
            raise UserError(f"query {q.path} is also a reference image of the database; test images must never be references")


def recognition_metrics(truth: list[str | None], predicted: list[str | None], retrieved: list[list[str]] | None = None) -> dict:
    """The metrics of the module docstring for one method (``nan`` where a side has no query)."""
    truth_a = np.array([t is not None for t in truth])
    correct = np.array([p == t for p, t in zip(predicted, truth, strict=True)])
    pos = float(correct[truth_a].mean()) if truth_a.any() else float("nan")
    neg = float(correct[~truth_a].mean()) if (~truth_a).any() else float("nan")
    weighted = float(np.nanmean([pos, neg])) if not (np.isnan(pos) and np.isnan(neg)) else float("nan")
    out = {"accuracy": weighted, "weighted_accuracy": weighted, "positive_accuracy": pos, "negative_accuracy": neg,
           "overall_accuracy": float(correct.mean()) if len(correct) else float("nan"), "recall_final": pos,
           "n_positive": int(truth_a.sum()), "n_negative": int((~truth_a).sum())}
    if retrieved is not None:
        hits = [t in r for t, r in zip(truth, retrieved, strict=True) if t is not None]
        out["recall_retrieval"] = float(np.mean(hits)) if hits else float("nan")
    return out
