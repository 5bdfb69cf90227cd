"""Embedding at scale: batched image and text encoding with progress and an on-disk cache.

``embed_images`` and ``embed_texts`` return an :class:`Embeddings` with one row per item that
could be embedded, and the items that could not (with reasons) when ``skip_bad`` is set.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from vlmkit.data.images import load_image
from vlmkit.errors import DatasetError
from vlmkit.runs.cache import EmbeddingCache, file_digest, sha256_bytes
from vlmkit.runs.progress import track

CHUNK = 256


@dataclass
class Embeddings:
    """Embeddings of the items that succeeded.

    Attributes:
        vectors: ``(n_ok, dim)`` float32, L2-normalised.
        indices: ``(n_ok,)`` positions of those items in the input.
        failed: ``(position, item, reason)`` of each item that could not be embedded.
        cached_chunks, computed_chunks: how much work the cache saved.
    """

    vectors: np.ndarray
    indices: np.ndarray
    failed: list[tuple[int, str, str]] = field(default_factory=list)
    cached_chunks: int = 0
    computed_chunks: int = 0


def cache_namespace(model, kind: str, normalize: bool = True) -> str:
    extra = model.preprocess.key() if kind == "image" else ""
    return f"{kind}{'' if normalize else '-raw'}|{model.fingerprint}|{extra}"


def _run_chunks(items: list[str], digests: list[str | None], namespace: str, compute, cache: EmbeddingCache | None,
                description: str) -> Embeddings:
    vectors, indices, failed = [], [], []
    cached = computed = 0
    starts = range(0, len(items), CHUNK)
    for start in track(starts, description, total=len(starts)):
        chunk_items = items[start : start + CHUNK]
        chunk_digests = [d or f"unreadable:{item}" for d, item in zip(digests[start : start + CHUNK], chunk_items, strict=True)]
        key = EmbeddingCache.chunk_key(namespace, chunk_digests)
        hit = cache.get(namespace, key) if cache else None
        if hit is None:
            chunk_vectors, reasons = compute(chunk_items, digests[start : start + CHUNK])
            if cache:
                cache.put(namespace, key, chunk_vectors, reasons)
            computed += 1
        else:
            chunk_vectors, reasons = hit
            cached += 1
        ok = [i for i, reason in enumerate(reasons) if not reason]
        vectors.append(chunk_vectors)
        indices.extend(start + i for i in ok)
        failed.extend((start + i, chunk_items[i], reason) for i, reason in enumerate(reasons) if reason)
    stacked = np.concatenate(vectors) if vectors else np.zeros((0, 0), np.float32)
    return Embeddings(stacked.astype(np.float32), np.asarray(indices, dtype=np.int64), failed, cached, computed)


def embed_images(model, paths: Sequence[str | Path], *, batch_size: int = 32, cache: EmbeddingCache | None = None, skip_bad: bool = False,
                 workers: int = 4, normalize: bool = True) -> Embeddings:
    """Encode image files with ``model`` (L2-normalised embeddings unless ``normalize`` is false).

    Raises:
        DatasetError: an image is missing or unreadable and ``skip_bad`` is false.
    """
    paths = [str(p) for p in paths]
    digests = [file_digest(Path(p)) for p in paths]
    if not skip_bad:
        missing = [p for p, d in zip(paths, digests, strict=True) if d is None]
        if missing:
            raise DatasetError(f"image not found or unreadable: {missing[0]} ({len(missing)} in all); fix the paths or pass "
                               "--skip-bad-images")

    def load(path: str):
        try:
            return model.preprocess(load_image(path)), ""
        except DatasetError as exc:
            if not skip_bad:
                raise
            return None, str(exc)

    def compute(chunk_paths: list[str], _digests) -> tuple[np.ndarray, list[str]]:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            loaded = list(pool.map(load, chunk_paths))
        reasons = [reason for _, reason in loaded]
        pixels = [p for p, _ in loaded if p is not None]
        out = [model.encode_images(torch.stack(pixels[i : i + batch_size]), normalize=normalize).numpy()
               for i in range(0, len(pixels), batch_size)]
        return (np.concatenate(out) if out else np.zeros((0, model.embed_dim), np.float32)), reasons

    return _run_chunks(paths, digests, cache_namespace(model, "image", normalize), compute, cache, "embedding images")


def embed_texts(model, texts: Sequence[str], *, batch_size: int = 256, cache: EmbeddingCache | None = None,
                normalize: bool = True) -> Embeddings:
    """Encode strings with ``model`` (L2-normalised embeddings unless ``normalize`` is false)."""
    texts = list(texts)
    digests = [sha256_bytes(t.encode("utf-8")) for t in texts]

    def compute(chunk: list[str], _digests) -> tuple[np.ndarray, list[str]]:
        out = [model.encode_texts(chunk[i : i + batch_size], normalize=normalize).numpy() for i in range(0, len(chunk), batch_size)]
        return np.concatenate(out), [""] * len(chunk)

    return _run_chunks(texts, digests, cache_namespace(model, "text", normalize), compute, cache, "embedding texts")
