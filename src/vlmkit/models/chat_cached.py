"""Any :class:`~vlmkit.models.chat.ChatModel` with its answers kept in the response cache.

``openai:`` models cache by themselves (:mod:`vlmkit.models.chat_openai`); this wrapper gives an
in-process model the same resumable behaviour: answers are keyed on the model's ``fingerprint``
(its weights), the conversation's content and the decoding settings, looked up before any
generation, and stored after each chunk of ``batch_size`` conversations, so an interrupted run
loses at most one chunk. ``score`` is passed through uncached (it is cheap next to generation).
"""

from __future__ import annotations

from collections.abc import Sequence

from vlmkit.models.chat import ChatModel, Conversation, check_conversations, conversation_key
from vlmkit.runs.progress import track
from vlmkit.runs.response_cache import ResponseCache


class CachedChatModel:
    """Wrap ``model`` so that :meth:`generate` reads and fills ``cache``.

    Args:
        model: any chat model (its ``fingerprint`` must change when its weights do).
        cache: the response cache, or ``None`` to ask the model every time.
        chunk: conversations per call to ``model.generate`` (default: its ``batch_size``, else 8).
        description: the progress bar's label when there is more than one chunk to generate.
    """

    def __init__(self, model: ChatModel, cache: ResponseCache | None, *, chunk: int | None = None, description: str = "generating"):
        self.model = model
        self.cache = cache
        self.chunk = max(1, int(chunk or getattr(model, "batch_size", 8)))
        self.description = description
        self.name = model.name
        self.capabilities = model.capabilities
        self.fingerprint = model.fingerprint
        self.cached = self.generated = 0

    def stats(self) -> dict[str, int]:
        """Answers read from the cache and answers generated, over this wrapper's life."""
        return {"cached": self.cached, "generated": self.generated}

    def cache_key(self, conversation: Conversation, *, max_new_tokens: int, temperature: float, seed: int) -> str:
        return conversation_key(
            conversation, model=self.fingerprint, max_new_tokens=int(max_new_tokens), temperature=float(temperature), seed=int(seed)
        )

    def generate(
        self, conversations: Sequence[Conversation], *, max_new_tokens: int = 64, temperature: float = 0.0, seed: int = 0
    ) -> list[str]:
        conversations = check_conversations(conversations)
        if self.cache is None:
            self.generated += len(conversations)
            return self.model.generate(conversations, max_new_tokens=max_new_tokens, temperature=temperature, seed=seed)
        keys = [self.cache_key(c, max_new_tokens=max_new_tokens, temperature=temperature, seed=seed) for c in conversations]
        answers = self.cache.get_many(keys)
        self.cached += sum(key in answers for key in keys)
        todo = list({key: conversation for key, conversation in zip(keys, conversations, strict=True) if key not in answers}.items())
        starts = range(0, len(todo), self.chunk)
        for start in track(starts, self.description, total=len(starts)) if len(starts) > 1 else starts:
            part = todo[start : start + self.chunk]
            new = self.model.generate([c for _, c in part], max_new_tokens=max_new_tokens, temperature=temperature, seed=seed)
            for (key, _), answer in zip(part, new, strict=True):
                answers[key] = answer
                self.cache.put(key, answer, model=self.fingerprint)
            self.generated += len(part)
        return [answers[key] for key in keys]

    def score(self, conversation: Conversation, options: Sequence[str]) -> list[float]:
        return self.model.score(conversation, options)
