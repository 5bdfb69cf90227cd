"""Options shared by the chat-model jobs (open-world runs, ICL, CIRCLE, scoring with a judge)."""

from __future__ import annotations

from pydantic import Field

from vlmkit.models.chat_registry import DEFAULT_CHAT_MODEL
from vlmkit.runs.options import RunOptions


class ChatRunOptions(RunOptions):
    """A run that talks to a chat model: ``model`` is a chat-model name (``vlmkit models``)."""

    model: str = DEFAULT_CHAT_MODEL
    dtype: str = "auto"
    base_url: str | None = None
    api_key: str | None = None
    concurrency: int = Field(8, ge=1)
    batch_size: int = Field(8, ge=1)

    def load_chat(self, name: str | None = None, description: str = "generating"):
        """The chat model ``name`` (default ``model``) behind the response cache."""
        from vlmkit.models.chat_cached import CachedChatModel
        from vlmkit.models.chat_registry import load_chat_model
        from vlmkit.runs.response_cache import ResponseCache, default_response_cache_path

        # served models keep their own response cache: --no-cache must reach it too
        served = {
            "base_url": self.base_url,
            "api_key": self.api_key,
            "concurrency": self.concurrency,
            "cache": self.cache,
            "cache_dir": self.cache_dir,
        }
        model = load_chat_model(name or self.model, device=self.resolved_device(), dtype=self.dtype, **served)
        # a chunk is one generate call: smaller than --concurrency it would cap a server's requests in flight
        chunk = max(self.batch_size, self.concurrency)
        cache = None
        if self.cache:
            cache = ResponseCache(self.cache_dir / "responses.sqlite" if self.cache_dir else default_response_cache_path())
        return CachedChatModel(model, cache, chunk=chunk, description=description)
