"""On-disk cache of chat answers (SQLite, WAL mode), so interrupted runs resume and re-runs are free.

One table maps a key to an answer. The key is :func:`vlmkit.models.chat.conversation_key` over a
conversation (its text and its images' pixel hashes) and every setting that determines the answer
(model, server, ``max_new_tokens``, ``temperature``, ``seed``); the backend computes it, this file
only stores strings. Each answer is committed as soon as it arrives, so a run killed half-way keeps
everything answered before the kill, and a second process (another run, a pytest worker) can read
and write the same file at once: WAL mode lets readers and one writer proceed together, and
``busy_timeout`` makes writers wait for each other instead of failing.

Only answers are stored, never failures: a request that failed is asked again next time.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterable
from pathlib import Path

from vlmkit.errors import UserError

SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY,
    answer TEXT NOT NULL,
    model TEXT NOT NULL,
    created REAL NOT NULL
)
"""

#: SQLite limits the number of ``?`` parameters in one statement; look keys up in slices
_LOOKUP_SLICE = 500


def default_response_cache_path() -> Path:
    """``<default_cache_dir()>/responses.sqlite`` (``$VLMKIT_CACHE`` or ``~/.cache/vlmkit``)."""
    from vlmkit.runs.cache import default_cache_dir

    return default_cache_dir() / "responses.sqlite"


class ResponseCache:
    """A key -> answer store in one SQLite file, safe to share between threads and processes.

    Args:
        path: the database file (created with its parent folders when missing).

    Attributes:
        hits, misses: lookups answered and not answered by this object (for tests and benchmarks).
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        self.hits = 0
        self.misses = 0
        self._lock = threading.Lock()
        self._connection: sqlite3.Connection | None = None

    def _connect(self) -> sqlite3.Connection:
        if self._connection is None:
            deadline = time.monotonic() + 30.0
            while True:
                connection = None
                try:
                    self.path.parent.mkdir(parents=True, exist_ok=True)
                    connection = sqlite3.connect(self.path, timeout=30.0, check_same_thread=False, isolation_level=None)
                    connection.execute("PRAGMA busy_timeout=30000")
                    connection.execute("PRAGMA journal_mode=WAL")
                    connection.execute(SCHEMA)
                    break
                except sqlite3.OperationalError as exc:
                    if connection is not None:
                        connection.close()
                    # switching a new file to WAL can report "locked" at once while another
                    # process creates it, without waiting for the busy timeout: try again
                    if "locked" not in str(exc) or time.monotonic() > deadline:
                        raise UserError(
                            f"cannot open the response cache {self.path} ({exc}); pass another cache folder or turn the cache off"
                        ) from exc
                    time.sleep(0.05)
                except (sqlite3.Error, OSError) as exc:
                    raise UserError(
                        f"cannot open the response cache {self.path} ({exc}); pass another cache folder or turn the cache off"
                    ) from exc
            self._connection = connection
        return self._connection

    def get_many(self, keys: Iterable[str]) -> dict[str, str]:
        """The cached answers among ``keys`` (a key without an answer is absent from the result)."""
        keys = list(dict.fromkeys(keys))
        found: dict[str, str] = {}
        with self._lock:
            connection = self._connect()
            for start in range(0, len(keys), _LOOKUP_SLICE):
                chunk = keys[start : start + _LOOKUP_SLICE]
                marks = ",".join("?" * len(chunk))
                found.update(connection.execute(f"SELECT key, answer FROM responses WHERE key IN ({marks})", chunk).fetchall())
        self.hits += len(found)
        self.misses += len(keys) - len(found)
        return found

    def get(self, key: str) -> str | None:
        return self.get_many([key]).get(key)

    def put(self, key: str, answer: str, *, model: str) -> None:
        """Store (or replace) one answer and commit it at once."""
        if not isinstance(answer, str):
            raise TypeError(f"a cached answer is a string, not {type(answer).__name__}")
        with self._lock:
            self._connect().execute(
                "INSERT OR REPLACE INTO responses (key, answer, model, created) VALUES (?, ?, ?, ?)",
                (key, answer, model, time.time()),
            )

    def __len__(self) -> int:
        with self._lock:
            return int(self._connect().execute("SELECT COUNT(*) FROM responses").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None

    def __enter__(self) -> ResponseCache:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
