"""An on-disk response cache around any :class:`~vlmkit.models.chat.ChatModel`.

Answers are stored in SQLite under ``<cache dir>/chat/responses.sqlite``, keyed on everything
that determines them: the model's fingerprint, the conversation's content (image pixels, not
paths: :func:`~vlmkit.models.chat.conversation_key`), ``max_new_tokens``, ``temperature``,
``seed``. Work is sent to the model in chunks and each chunk is committed as soon as it is
answered, so an interrupted run resumes where it stopped and a re-run costs nothing. Only real
answers are stored; a failure raises before anything is written for that chunk.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path

from vlmkit.models.chat import Conversation, conversation_key
from vlmkit.runs.progress import track


class CachedChatModel:
    """Wraps ``model``; :meth:`generate` answers from the cache where it can.

    Args:
        model: any ChatModel.
        root: the cache folder (``$VLMKIT_CACHE`` or ``~/.cache/vlmkit`` by default); ``None``
            with ``enabled=False`` turns caching off.
        chunk: conversations per model call (and per commit).
    """

    def __init__(self, model, root: Path | None = None, *, enabled: bool = True, chunk: int = 8, description: str = "generating"):
        from vlmkit.runs.cache import default_cache_dir

        self.model = model
        self.name = model.name
        self.capabilities = model.capabilities
        self.fingerprint = model.fingerprint
        self.chunk = max(1, chunk)
        self.description = description
        self.enabled = enabled
        self.hits = self.misses = 0
        self._path = Path(root or default_cache_dir()) / "chat" / "responses.sqlite"
        self._db: sqlite3.Connection | None = None

    def _connection(self) -> sqlite3.Connection:
        if self._db is None:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self._path, timeout=60)
            self._db.execute("CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, answer TEXT NOT NULL)")
        return self._db

    def _lookup(self, keys: list[str]) -> dict[str, str]:
        db, found = self._connection(), {}
        for start in range(0, len(keys), 500):
            part = keys[start : start + 500]
            rows = db.execute(f"SELECT key, answer FROM responses WHERE key IN ({','.join('?' * len(part))})", part)
            found.update(rows.fetchall())
        return found

    def generate(self, conversations: Sequence[Conversation], *, max_new_tokens: int = 64, temperature: float = 0.0, seed: int = 0) -> list[str]:
        settings = {"max_new_tokens": max_new_tokens, "temperature": temperature, "seed": seed}
        if not self.enabled:
            return self.model.generate(conversations, **settings)
        keys = [conversation_key(c, model=self.fingerprint, **settings) for c in conversations]
        answers = self._lookup(list(dict.fromkeys(keys)))
        todo = list(dict.fromkeys(k for k in keys if k not in answers))
        first = {k: i for i, k in reversed(list(enumerate(keys)))}
        self.hits += sum(1 for k in keys if k in answers)
        starts = range(0, len(todo), self.chunk)
        for start in track(starts, self.description, total=len(starts)) if len(starts) > 1 else starts:
            part = todo[start : start + self.chunk]
            outputs = self.model.generate([conversations[first[k]] for k in part], **settings)
            db = self._connection()
            with db:
                db.executemany("INSERT OR REPLACE INTO responses VALUES (?, ?)", list(zip(part, outputs, strict=True)))
            answers.update(zip(part, outputs, strict=True))
            self.misses += len(part)
        return [answers[k] for k in keys]

    def score(self, conversation: Conversation, options: Sequence[str]) -> list[float]:
        return self.model.score(conversation, options)

    def stats(self) -> dict[str, int]:
        return {"cached": self.hits, "generated": self.misses}
