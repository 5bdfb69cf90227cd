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
from vlmkit.runs.response_cache import ResponseCache


class CachedChatModel:
    """Wrap ``model`` so that :meth:`generate` reads and fills ``cache``.

    Args:
        model: any chat model (its ``fingerprint`` must change when its weights do).
        cache: the response cache.
        chunk: conversations per call to ``model.generate`` (default: its ``batch_size``, else 8).
    """

    def __init__(self, model: ChatModel, cache: ResponseCache, *, chunk: int | None = None):
        self.model = model
        self.cache = cache
        self.chunk = int(chunk or getattr(model, "batch_size", 8))
        self.name = model.name
        self.capabilities = model.capabilities
        self.fingerprint = model.fingerprint

    def cache_key(self, conversation: Conversation, *, max_new_tokens: int, temperature: float, seed: int) -> str:
        return conversation_key(
            conversation, model=self.fingerprint, max_new_tokens=int(max_new_tokens), temperature=float(temperature), seed=int(seed)
        )

    def generate(
        self, conversations: Sequence[Conversation], *, max_new_tokens: int = 64, temperature: float = 0.0, seed: int = 0
    ) -> list[str]:
        conversations = check_conversations(conversations)
        keys = [self.cache_key(c, max_new_tokens=max_new_tokens, temperature=temperature, seed=seed) for c in conversations]
        answers = self.cache.get_many(keys)
        todo = list({key: conversation for key, conversation in zip(keys, conversations, strict=True) if key not in answers}.items())
        for start in range(0, len(todo), self.chunk):
            part = todo[start : start + self.chunk]
            new = self.model.generate([c for _, c in part], max_new_tokens=max_new_tokens, temperature=temperature, seed=seed)
            for (key, _), answer in zip(part, new, strict=True):
                answers[key] = answer
                self.cache.put(key, answer, model=self.fingerprint)
        return [answers[key] for key in keys]

    def score(self, conversation: Conversation, options: Sequence[str]) -> list[float]:
        return self.model.score(conversation, options)
