"""On-disk cache of embeddings, keyed by model and content.

Work is cut into chunks of consecutive items. A chunk's key is the hash of the model's
fingerprint, its preprocessing, and the content hashes of the chunk's items, so a re-run of the
same job reads every chunk back, an interrupted job resumes at the first missing chunk, and any
change to the weights, the preprocessing or an input file invalidates exactly the chunks it
touches. Chunks are ``.npz`` files written atomically; they hold no pickles.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from vlmkit.runs.files import atomic_save_npz


def default_cache_dir() -> Path:
    """``$VLMKIT_CACHE`` or ``~/.cache/vlmkit``."""
    return Path(os.environ.get("VLMKIT_CACHE", Path.home() / ".cache" / "vlmkit"))


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_digest(path: Path) -> str | None:
    """Content hash of a file, or ``None`` when it cannot be read."""
    try:
        return sha256_bytes(Path(path).read_bytes())
    except OSError:
        return None


class EmbeddingCache:
    """Chunks of embeddings under ``root/embeddings/<model key>/<chunk key>.npz``.

    A chunk stores ``embeddings`` ``(n_ok, dim)`` float32, ``ok`` (item offsets within the chunk
    that were embedded) and ``failed_reasons`` (one string per item, empty when ok).
    """

    def __init__(self, root: Path | None = None):
        self.root = Path(root) if root is not None else default_cache_dir()

    def _path(self, namespace: str, key: str) -> Path:
        return self.root / "embeddings" / sha256_bytes(namespace.encode())[:16] / f"{key}.npz"

    @staticmethod
    def chunk_key(namespace: str, item_digests: list[str]) -> str:
        return sha256_bytes("\n".join([namespace, *item_digests]).encode())[:32]

    def get(self, namespace: str, key: str) -> tuple[np.ndarray, list[str]] | None:
        path = self._path(namespace, key)
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as data:
                return data["embeddings"], [str(r) for r in data["failed_reasons"]]
        except (OSError, ValueError, KeyError):
            return None  # a damaged chunk is recomputed

    def put(self, namespace: str, key: str, embeddings: np.ndarray, failed_reasons: list[str]) -> None:
        atomic_save_npz(
            self._path(namespace, key),
            embeddings=embeddings.astype(np.float32),
            failed_reasons=np.asarray(failed_reasons, dtype=str),
        )
