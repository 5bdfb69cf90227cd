"""``openai:<model>``: any OpenAI-compatible chat server behind :class:`~vlmkit.models.chat.ChatModel`.

vLLM, SGLang, Ollama, llama.cpp's server, ``transformers serve`` and OpenAI itself all speak the
``/v1/chat/completions`` protocol; this backend sends each conversation as one request through the
``openai`` client package and owns what the client's defaults leave to chance:

- **Retries**: connection errors, timeouts, HTTP 408/409/429 and 5xx are retried up to
  ``max_retries`` times with exponential backoff and jitter (``backoff * 2**attempt``, scaled by a
  random factor in [0.5, 1], capped at ``max_backoff``), honouring ``Retry-After`` when the server
  sends one. Any other status (400, 401, 403, 404, 422) fails at once.
- **Failures stop the run**: a request that still fails raises a one-line :class:`ChatServerError`
  naming the server URL and the error. No answer is ever invented: an empty string is returned only
  when the server says the model generated nothing.
- **Bounded concurrency**: a batch is spread over ``concurrency`` threads; the first failure cancels
  the requests not yet sent.
- **Response cache**: answers are stored in a SQLite file (:mod:`vlmkit.runs.response_cache`) under
  :func:`~vlmkit.models.chat.conversation_key` of the conversation and every setting that
  determines its answer, committed one by one as they arrive, so an interrupted run resumes where
  it stopped and a re-run sends no request.
- **Payloads**: images go as PNG data URLs (``image_url`` parts); text-only turns as plain strings.
  Only ``model``, ``messages``, ``max_tokens``, ``temperature`` and ``seed`` are sent (no ``stop``,
  ``n`` or ``response_format``, which some servers reject or ignore; ``transformers serve`` 5.24
  answers ``stop`` with HTTP 500 for VLMs).
- **Scores**: chat servers return log-probabilities of *generated* tokens at best
  (``transformers serve`` ignores ``logprobs``), not of given continuations, so ``"score"`` is not a
  capability unless ``logprobs=True`` says the server returns ``top_logprobs``; then
  :meth:`OpenAIChatModel.score` reads single-token options off the first generated token.
"""

from __future__ import annotations

import base64
import io
import json
import os
import random
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from email.utils import parsedate_to_datetime
from pathlib import Path
from urllib.parse import urlsplit

from vlmkit.errors import UnsupportedError, UserError
from vlmkit.models.chat import (
    Conversation,
    Message,
    check_conversations,
    check_generation,
    check_images_allowed,
    conversation_key,
    open_image,
)
from vlmkit.runs.progress import track
from vlmkit.runs.response_cache import ResponseCache, default_response_cache_path

OPENAI_URL = "https://api.openai.com/v1"
#: statuses worth asking again: timeout, conflict, rate limit, server errors
RETRY_STATUSES = frozenset({408, 409, 429}) | frozenset(range(500, 600))
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
#: how many first-token alternatives ``score`` asks for (OpenAI's maximum)
TOP_LOGPROBS = 20


class ChatServerError(UserError):
    """A chat server that cannot be reached, refuses the request, or answers nonsense."""


def normalise_base_url(url: str) -> str:
    """``http://host:8000`` -> ``http://host:8000/v1`` (servers mount the API under ``/v1``);
    a URL with a path is kept as given, without a trailing slash."""
    url = url.strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise UserError(f"bad server URL {url!r}; pass --base-url http://HOST:PORT/v1")
    return url + "/v1" if not parts.path else url


def image_data_url(image) -> str:
    """An image (PIL or path) as a ``data:image/png;base64,...`` URL of its RGB pixels (lossless)."""
    buffer = io.BytesIO()
    open_image(image).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def to_openai_messages(conversation: Sequence[Message], encode=image_data_url) -> list[dict]:
    """OpenAI ``messages``: a turn with images becomes a list of ``text`` and ``image_url`` parts
    in order; a text-only turn is one string (its text parts joined by spaces)."""
    messages = []
    for message in conversation:
        if message.images:
            content = [
                {"type": "text", "text": part} if isinstance(part, str) else {"type": "image_url", "image_url": {"url": encode(part)}}
                for part in message.parts
            ]
        else:
            content = message.text
        messages.append({"role": message.role, "content": content})
    return messages


def retry_after_seconds(headers) -> float | None:
    """The wait a server asks for: ``retry-after-ms``, ``retry-after`` in seconds, or an HTTP date."""
    if headers is None:
        return None
    for name, scale in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            return max(0.0, float(value) / scale)
        except ValueError:
            pass
        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
    return None


def backoff_seconds(attempt: int, base: float, cap: float, rng: random.Random) -> float:
    """Exponential backoff with jitter: ``min(cap, base * 2**attempt)`` times a factor in [0.5, 1]."""
    return min(cap, base * 2.0**attempt) * rng.uniform(0.5, 1.0)


def _short(text: str, limit: int = 200) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _status_detail(exc) -> str:
    """The server's own message from an ``APIStatusError`` (JSON ``error.message``/``detail`` or text)."""
    response = getattr(exc, "response", None)
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        error = body.get("error", body)
        message = error.get("message") or error.get("detail") if isinstance(error, dict) else error
        if message:
            return _short(message if isinstance(message, str) else json.dumps(message))
    try:
        return _short(response.text) if response is not None and response.text else ""
    except Exception:  # noqa: BLE001 - a streamed or closed body has no text; the status says enough
        return ""


def parse_completion(text: str, url: str) -> dict:
    """The first choice's message of a chat-completion body, or :class:`ChatServerError`."""
    try:
        body = json.loads(text)
        choice = body["choices"][0]
        message = choice["message"]
        if not isinstance(message, dict):
            raise TypeError("message is not an object")
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise ChatServerError(
            f"the chat server at {url} sent a malformed response ({type(exc).__name__}: {_short(exc, 80)}; "
            f"body starts {_short(text, 80)!r}); "
            "is --base-url an OpenAI-compatible /v1 endpoint?"
        ) from exc
    return choice


def answer_text(choice: dict, url: str) -> str:
    """The reply in a choice. ``content`` may be a string, a list of text parts, or ``null``:
    ``null`` with a ``refusal`` gives the refusal (the model's answer), ``null`` with tool calls
    is an error (none were offered), and ``null`` otherwise means the model generated nothing."""
    message = choice["message"]
    content = message.get("content")
    if isinstance(content, str):
        return content.strip()
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict)).strip()
    if content is None:
        if isinstance(message.get("refusal"), str):
            return message["refusal"].strip()
        if message.get("tool_calls"):
            raise ChatServerError(
                f"the chat server at {url} answered with tool calls although none were offered; serve the model without forced tools"
            )
        return ""
    raise ChatServerError(f"the chat server at {url} sent a malformed response (message content is {type(content).__name__})")


class OpenAIChatModel:
    """An OpenAI-compatible server behind :class:`vlmkit.models.chat.ChatModel`.

    Args:
        model: the served model's name (``/v1/models`` lists them).
        base_url: the server's API root, e.g. ``http://127.0.0.1:8000/v1``.
        api_key: sent as a bearer token (local servers accept any).
        concurrency: requests in flight at once.
        timeout: seconds to wait for one response.
        max_retries: extra attempts for connection errors, timeouts, 408/409/429 and 5xx.
        backoff, max_backoff: seconds of the first retry's wait, and the most any wait lasts
            (``Retry-After`` included).
        cache: a :class:`ResponseCache`, or ``None`` to ask the server every time.
        images: whether the served model takes images (a text LLM does not).
        logprobs: the server returns ``top_logprobs`` (vLLM, SGLang, OpenAI do), enabling ``score``.
    """

    def __init__(
        self,
        model: str,
        *,
        base_url: str,
        api_key: str,
        concurrency: int = 8,
        timeout: float = 120.0,
        max_retries: int = 5,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        cache: ResponseCache | None = None,
        images: bool = True,
        logprobs: bool = False,
        seed: int | None = None,
    ):
        from openai import OpenAI

        if not model:
            raise UserError("openai: needs a model name; write openai:<model> (the server's /v1/models lists them)")
        if concurrency < 1 or timeout <= 0 or max_retries < 0 or backoff < 0 or max_backoff < 0:
            raise UserError("openai: concurrency must be >= 1, timeout > 0, max_retries >= 0 and backoff waits >= 0")
        self.model = model
        self.base_url = normalise_base_url(base_url)
        self.name = f"openai:{model}"
        self.fingerprint = f"openai:{self.base_url}:{model}"
        self.concurrency = int(concurrency)
        self.timeout = float(timeout)
        self.max_retries = int(max_retries)
        self.backoff = float(backoff)
        self.max_backoff = float(max_backoff)
        self.cache = cache
        self.logprobs = bool(logprobs)
        self.capabilities = frozenset({*(("images", "multi_image") if images else ()), *(("score",) if logprobs else ())})
        self.requests_sent = 0  # HTTP requests made (retries included): tests and benchmarks read it
        self._count_lock = threading.Lock()
        self._rng = random.Random(seed)
        http_client = None
        if urlsplit(self.base_url).hostname in LOOPBACK:  # a proxy from the environment cannot reach our own machine
            from openai import DefaultHttpxClient

            http_client = DefaultHttpxClient(trust_env=False)
        self._client = OpenAI(base_url=self.base_url, api_key=api_key, timeout=self.timeout, max_retries=0, http_client=http_client)

    # -- one request, with retries -----------------------------------------------------------
    def _post(self, payload: dict) -> dict:
        """POST one chat completion; the first choice, or :class:`ChatServerError` after retries."""
        import openai

        url = self.base_url
        for attempt in range(self.max_retries + 1):
            wait_for = None
            try:
                with self._count_lock:
                    self.requests_sent += 1
                raw = self._client.chat.completions.with_raw_response.create(**payload)
                return parse_completion(raw.text, url)
            except openai.APITimeoutError as exc:
                error = ChatServerError(
                    f"the chat server at {url} did not answer within {self.timeout:g} s ({attempt + 1} attempts); "
                    "raise --timeout or lower --concurrency"
                )
                error.__cause__ = exc
            except openai.APIConnectionError as exc:
                reason = _short(exc.__cause__ or exc, 120)
                error = ChatServerError(
                    f"cannot reach the chat server at {url} ({reason}; {attempt + 1} attempts); start it or fix --base-url"
                )
                error.__cause__ = exc
            except openai.APIStatusError as exc:
                status, detail = exc.status_code, _status_detail(exc)
                if status not in RETRY_STATUSES:
                    raise self._refusal(status, detail) from exc
                error = ChatServerError(
                    f"the chat server at {url} answered HTTP {status} ({detail or 'no detail'}) {attempt + 1} times; "
                    + ("lower --concurrency or wait" if status == 429 else "check the server's log")
                )
                error.__cause__ = exc
                wait_for = retry_after_seconds(exc.response.headers if exc.response is not None else None)
            if attempt == self.max_retries:
                raise error
            delay = backoff_seconds(attempt, self.backoff, self.max_backoff, self._rng) if wait_for is None else wait_for
            time.sleep(min(delay, self.max_backoff))
        raise AssertionError("unreachable")

    def _refusal(self, status: int, detail: str) -> ChatServerError:
        url = self.base_url
        if status in (401, 403):
            return ChatServerError(
                f"the chat server at {url} refused the API key (HTTP {status}: {detail or 'no detail'}); "
                "set OPENAI_API_KEY or pass --api-key"
            )
        if status == 404:
            served = self.served_models()
            if not served:  # /models is missing too: the URL is not an OpenAI-compatible API root
                return ChatServerError(
                    f"no OpenAI-compatible API answers at {url} (HTTP 404: {detail or 'not found'}); "
                    "check --base-url (it usually ends in /v1)"
                )
            listed = ", ".join(served[:10]) + (f" and {len(served) - 10} more" if len(served) > 10 else "")
            return ChatServerError(f"model {self.model!r} is not served at {url} (HTTP 404: {detail or 'not found'}); it serves: {listed}")
        return ChatServerError(f"the chat server at {url} rejected the request (HTTP {status}: {detail or 'no detail'})")

    def served_models(self) -> list[str]:
        """The model ids ``/v1/models`` lists (empty when the server does not say)."""
        try:
            return sorted(m.id for m in self._client.with_options(timeout=min(self.timeout, 10.0)).models.list())
        except Exception:  # noqa: BLE001 - only used to enrich an error message
            return []

    # -- the protocol ------------------------------------------------------------------------
    def _payload(self, conversation: Sequence[Message], max_new_tokens: int, temperature: float, seed: int, encode) -> dict:
        return {
            "model": self.model,
            "messages": to_openai_messages(conversation, encode),
            "max_tokens": int(max_new_tokens),
            "temperature": float(temperature),
            "seed": int(seed),
        }

    def cache_key(self, conversation: Conversation, *, max_new_tokens: int, temperature: float, seed: int) -> str:
        """Everything that determines an answer: the conversation's content, the model, the server
        and the decoding settings."""
        return conversation_key(
            conversation,
            model=self.model,
            base_url=self.base_url,
            max_new_tokens=int(max_new_tokens),
            temperature=float(temperature),
            seed=int(seed),
        )

    def generate(
        self, conversations: Sequence[Conversation], *, max_new_tokens: int = 64, temperature: float = 0.0, seed: int = 0
    ) -> list[str]:
        """One request per conversation not in the cache, ``concurrency`` at a time; answers in order.

        Raises:
            ChatServerError: a request failed after its retries (answers received before it are
                cached, so running again resumes).
        """
        conversations = check_conversations(conversations)
        check_images_allowed(self, conversations)
        check_generation(max_new_tokens, temperature)
        keys = [self.cache_key(c, max_new_tokens=max_new_tokens, temperature=temperature, seed=seed) for c in conversations]
        answers: dict[str, str] = self.cache.get_many(keys) if self.cache is not None else {}
        todo = {key: conversation for key, conversation in zip(keys, conversations, strict=True) if key not in answers}

        def ask_one(key: str, conversation) -> None:
            # the payload (data URLs included) is built in the worker: memory stays bounded by concurrency
            choice = self._post(self._payload(conversation, max_new_tokens, temperature, seed, image_data_url))
            answer = answer_text(choice, self.base_url)
            answers[key] = answer
            if self.cache is not None:
                self.cache.put(key, answer, model=self.fingerprint)

        if todo:
            self._run_all(ask_one, list(todo.items()))
        return [answers[key] for key in keys]

    def _run_all(self, function, items: list[tuple]) -> None:
        """Call ``function(*item)`` for every item on at most ``concurrency`` threads, with a
        progress bar; re-raise the first error after cancelling what has not started."""
        description = f"{self.name}: {len(items)} requests"
        if self.concurrency == 1 or len(items) == 1:
            for item in track(items, description, total=len(items)) if len(items) > 1 else items:
                function(*item)
            return
        pool = ThreadPoolExecutor(max_workers=min(self.concurrency, len(items)), thread_name_prefix="vlmkit-openai")
        try:
            futures = [pool.submit(function, *item) for item in items]
            for future in track(as_completed(futures), description, total=len(futures)):
                error = future.exception()
                if error is not None:
                    raise error
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def score(self, conversation: Conversation, options: Sequence[str]) -> list[float]:
        """``log p(option | conversation)`` for single-token options, read from the
        ``top_logprobs`` of the first generated token (one request, cached only by the server).

        Raises:
            UnsupportedError: the server was not declared to return log-probabilities, or an
                option is not one of the first token's top alternatives.
        """
        if "score" not in self.capabilities:
            raise UnsupportedError(
                f"{self.name} at {self.base_url} gives no log-probabilities, so it cannot score options; "
                "use an in-process model (hf:<dir>), or a server that returns logprobs (vLLM, SGLang) with logprobs=True"
            )
        (conversation,) = check_conversations([conversation])
        check_images_allowed(self, [conversation])
        if not options or any(not option for option in options):
            raise UserError("score needs one or more non-empty options")
        payload = self._payload(conversation, 1, 0.0, 0, image_data_url)
        payload.update(logprobs=True, top_logprobs=TOP_LOGPROBS)
        choice = self._post(payload)
        try:
            alternatives = choice["logprobs"]["content"][0]["top_logprobs"]
            table: dict[str, float] = {}
            for entry in alternatives:
                token = str(entry["token"]).strip()
                table[token] = max(table.get(token, float("-inf")), float(entry["logprob"]))
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise UnsupportedError(
                f"the chat server at {self.base_url} returned no top_logprobs for {self.model!r}; "
                "drop logprobs=True (score is then unsupported)"
            ) from exc
        missing = [option for option in options if option.strip() not in table]
        if missing:
            raise UnsupportedError(
                f"{self.name}: option(s) {', '.join(map(repr, missing))} are not among the first token's top {TOP_LOGPROBS} "
                "alternatives; a served model scores only short single-token options (letters, yes/no)"
            )
        return [table[option.strip()] for option in options]


#: options ``load`` accepts (the CLI passes ``None`` for those left unset)
OPTIONS = (
    "base_url",
    "api_key",
    "concurrency",
    "timeout",
    "max_retries",
    "backoff",
    "max_backoff",
    "cache",
    "cache_dir",
    "images",
    "logprobs",
)


def load(model: str, **options) -> OpenAIChatModel:
    """``openai:<model>``. Options (``None`` means the default): ``base_url`` (else
    ``$OPENAI_BASE_URL``, else OpenAI's), ``api_key`` (else ``$OPENAI_API_KEY``; local servers get a
    dummy), ``concurrency`` (8), ``timeout`` (120 s), ``max_retries`` (5), ``backoff`` (0.5 s),
    ``max_backoff`` (30 s), ``cache`` (True) and ``cache_dir`` (else the default cache folder),
    ``images`` (True), ``logprobs`` (False)."""
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise UserError(f"unknown option(s) for openai:{model}: {', '.join(unknown)}; known: {', '.join(OPTIONS)}")
    given = {k: v for k, v in options.items() if v is not None}
    base_url = normalise_base_url(given.pop("base_url", None) or os.environ.get("OPENAI_BASE_URL") or OPENAI_URL)
    api_key = given.pop("api_key", None) or os.environ.get("OPENAI_API_KEY")
    if not api_key:
        if urlsplit(base_url).hostname == urlsplit(OPENAI_URL).hostname:
            raise UserError(
                "openai: needs an API key for api.openai.com; set OPENAI_API_KEY or pass --api-key (or --base-url for a local server)"
            )
        api_key = "EMPTY"  # vLLM, SGLang, Ollama, llama.cpp and transformers serve accept any key
    use_cache = given.pop("cache", True)
    cache_dir = given.pop("cache_dir", None)
    cache = None
    if use_cache:
        cache = ResponseCache(Path(cache_dir) / "responses.sqlite" if cache_dir else default_response_cache_path())
    return OpenAIChatModel(model, base_url=base_url, api_key=api_key, cache=cache, **given)
