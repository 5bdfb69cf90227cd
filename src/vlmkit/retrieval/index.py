"""A searchable index of a collection's image embeddings (FAISS).

Vectors are the model's unit image embeddings, so inner product is cosine similarity.

- up to ``EXACT_MAX`` (200,000) vectors: an exact ``IndexFlatIP`` (4 bytes x dim per vector;
  about 0.4 GB at 200,000 x 512);
- above: a compressed ``IVF<nlist>,SQ8`` index (``nlist = 4 sqrt(n)`` cells, probed
  ``nprobe = 32`` at a time; one byte per dimension, 4x smaller than float32: about 0.5 GB for
  10^6 x 512), trained on up to 64 vectors per cell. Its results are approximate: see
  ``benchmarks/index_bench.py`` for recall against exact search. (Product quantisation would
  compress 8x further but lost half the true neighbours in our tests.)

Each item keeps its path, its caption when the collection has one, and a content digest;
search drops later hits whose file content repeats an earlier hit or whose embedding is a
near-duplicate (cosine >= ``dedup_cosine``, default 0.99) of one. An index directory holds
``index.faiss``, ``items.jsonl`` and ``index.json`` (model, fingerprint, kind, sizes).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict

from vlmkit.errors import UserError
from vlmkit.runs.files import atomic_write_json, atomic_write_text
from vlmkit.runs.readers import read_faiss_index, read_json, read_jsonl

EXACT_MAX = 200_000
NPROBE = 32
KINDS = ("auto", "exact", "ivf")


def _faiss():
    try:
        import faiss
    except ImportError as exc:  # pragma: no cover - a dependency
        raise UserError("FAISS is missing; pip install faiss-cpu") from exc
    return faiss


@dataclass
class Item:
    path: str
    digest: str
    caption: str | None = None


class IndexMeta(BaseModel):
    """``index.json``: what built the index (extra keys are kept)."""

    model_config = ConfigDict(extra="allow", protected_namespaces=())

    model: str | None = None
    model_name: str | None = None
    fingerprint: str | None = None
    kind: str | None = None
    dim: int | None = None
    nprobe: int | None = None


@dataclass
class Hit:
    position: int
    score: float
    path: str
    caption: str | None


def make_index(vectors: np.ndarray, kind: str = "auto", seed: int = 0):
    """A FAISS index holding ``vectors`` ``(n, d)`` (unit rows), exact or IVF-SQ8 by size."""
    faiss = _faiss()
    n, d = vectors.shape
    if kind == "auto":
        kind = "exact" if n <= EXACT_MAX else "ivf"
    if kind == "exact":
        index = faiss.IndexFlatIP(d)
    else:
        nlist = max(1, min(int(4 * math.sqrt(n)), n // 39))
        index = faiss.index_factory(d, f"IVF{nlist},SQ8", faiss.METRIC_INNER_PRODUCT)
        rng = np.random.default_rng(seed)
        sample = vectors[np.sort(rng.choice(n, min(n, 64 * nlist), replace=False))]
        index.train(np.ascontiguousarray(sample, dtype=np.float32))
        index.nprobe = min(NPROBE, nlist)
    for start in range(0, n, 65536):
        index.add(np.ascontiguousarray(vectors[start : start + 65536], dtype=np.float32))
    if kind != "exact":
        index.make_direct_map()  # lets search reconstruct hits for near-duplicate removal
    return index, kind


class ImageIndex:
    def __init__(self, index, items: list[Item], meta: dict):
        self.index, self.items, self.meta = index, items, meta

    def __len__(self) -> int:
        return len(self.items)

    @property
    def dim(self) -> int:
        return self.index.d

    def search(self, queries: np.ndarray, k: int = 10, dedup: bool = True, dedup_cosine: float = 0.99) -> list[list[Hit]]:
        """The ``k`` best items for each unit query ``(q, d)``, best first, duplicates removed."""
        queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        if queries.shape[1] != self.dim:
            raise UserError(f"queries have {queries.shape[1]} dimensions, the index {self.dim}; search with the model that built it "
                            f"({self.meta.get('model')})")
        fetch = min(len(self), k * 4 if dedup else k)
        scores, positions = self.index.search(queries, fetch)
        results = []
        for row_scores, row_positions in zip(scores, positions, strict=True):
            hits: list[Hit] = []
            kept_vectors: list[np.ndarray] = []
            seen: set[str] = set()
            for score, position in zip(row_scores, row_positions, strict=True):
                if position < 0 or len(hits) == k:
                    break
                item = self.items[position]
                if dedup:
                    if item.digest in seen:
                        continue
                    vector = self.index.reconstruct(int(position))
                    norm = np.linalg.norm(vector)
                    if any(float(vector @ other) >= dedup_cosine * norm * np.linalg.norm(other) for other in kept_vectors):
                        continue
                    seen.add(item.digest)
                    kept_vectors.append(vector)
                hits.append(Hit(int(position), float(score), item.path, item.caption))
            results.append(hits)
        return results

    def save(self, directory: str | Path) -> Path:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        _faiss().write_index(self.index, str(directory / "index.faiss.tmp"))
        (directory / "index.faiss.tmp").replace(directory / "index.faiss")
        atomic_write_text(directory / "items.jsonl", "".join(json.dumps(vars(item)) + "\n" for item in self.items))
        atomic_write_json(directory / "index.json", self.meta)
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> ImageIndex:
        """Read an index folder; every missing or damaged file is one :class:`UserError` line."""
        directory = Path(directory).expanduser()
        fix = "rebuild the index with vlmkit index build"
        if not directory.is_dir():
            raise UserError(f"no index at {directory}; build one with vlmkit index build, or pass the folder it wrote")
        meta = read_json(directory / "index.json", "index record", fix, IndexMeta).model_dump(exclude_unset=True)
        index = read_faiss_index(directory / "index.faiss", "index file", fix)
        rows = read_jsonl(directory / "items.jsonl", "item list", fix, Item)
        if len(rows) != index.ntotal or index.d != meta.get("dim", index.d):
            raise UserError(f"{directory} is inconsistent: index.faiss holds {index.ntotal} vectors of {index.d} dimensions, "
                            f"items.jsonl {len(rows)} items and index.json {meta.get('dim')} dimensions; {fix}")
        if meta.get("nprobe") is not None and hasattr(index, "nprobe"):
            index.nprobe = meta["nprobe"]
        return cls(index, rows, meta)


def build_index(model, dataset, *, model_spec: str, kind: str = "auto", cache=None, batch_size: int = 32,
                skip_bad: bool = False) -> ImageIndex:
    """Embed ``dataset``'s images with ``model`` (through the cache) and index them."""
    from vlmkit.embed import embed_images
    from vlmkit.runs.cache import file_digest

    if kind not in KINDS:
        raise UserError(f"--kind must be one of {', '.join(KINDS)}")
    embedded = embed_images(model, dataset.paths, batch_size=batch_size, cache=cache, skip_bad=skip_bad)
    if len(embedded.indices) == 0:
        raise UserError("no image could be embedded; nothing to index")
    samples = [dataset.samples[i] for i in embedded.indices]
    items = [Item(str(Path(s.path).resolve()), file_digest(s.path) or str(s.path), s.caption) for s in samples]
    index, kind = make_index(embedded.vectors, kind)
    meta = {"model": model_spec, "model_name": model.name, "fingerprint": model.fingerprint, "kind": kind, "items": len(items),
            "dim": int(embedded.vectors.shape[1]), "captions": sum(item.caption is not None for item in items),
            "skipped": [{"path": p, "reason": r} for _, p, r in embedded.failed]}
    if kind == "ivf":
        meta["nprobe"] = int(index.nprobe)
    return ImageIndex(index, items, meta)
