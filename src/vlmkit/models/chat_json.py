"""JSON replies from any :class:`~vlmkit.models.chat.ChatModel`: strict parsing and retries.

Methods that ask a chat model for structured output (R2P's fingerprints and reasoning, C2B's
bias proposals) share one loop: generate, look for the first JSON object in the reply that the
method's ``validate`` accepts (code fences and prose around it allowed; objects nested in a reply
whose outer braces do not parse are tried too), and ask again for the replies that had none:
greedy first, then sampled at ``retry_temperature`` with a new seed per try. Every attempt is
logged, so a failure can be reported in one line with the model's last words.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

T = TypeVar("T")


def json_objects(text: str) -> Iterator[dict]:
    """Every JSON object that decodes from an opening brace of ``text``, in order."""
    text = re.sub(r"```(?:json)?", "", text)
    decoder = json.JSONDecoder()
    for match in re.finditer(r"\{", text):
        try:
            value, _ = decoder.raw_decode(text, match.start())
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict):
            yield value


def first_valid(text: str, validate: Callable[[dict], T]) -> T:
    """The first JSON object in ``text`` that ``validate`` accepts (its return value), or
    ``ValueError`` with the first reason one was rejected ("no JSON object" when there is none)."""
    problem = "no JSON object in the reply"
    for value in json_objects(text):
        try:
            return validate(value)
        except ValueError as exc:
            problem = str(exc) if problem.startswith("no JSON") else problem
    raise ValueError(problem)


def generate_validated(
    model,
    conversations: Sequence,
    validate: Callable[[int, dict], T],
    *,
    retries: int = 2,
    max_new_tokens: int = 256,
    temperature: float = 0.0,
    retry_temperature: float = 0.7,
    seed: int = 0,
) -> tuple[list[T | None], list[list[dict]]]:
    """Ask ``model`` each conversation until its reply holds a valid JSON object.

    Args:
        conversations: the prompts; ``validate(i, obj)`` checks an object for prompt ``i`` and
            returns the parsed value or raises ``ValueError`` naming the problem.
        retries: tries per prompt in all (at least 1).

    Returns:
        ``values[i]`` (``None`` when every try failed) and ``attempts[i]``: one
        ``{"reply", "temperature", "seed", "error"}`` per try.
    """
    if retries < 1:
        raise ValueError("retries must be at least 1")
    values: list[T | None] = [None] * len(conversations)
    attempts: list[list[dict]] = [[] for _ in conversations]
    pending = list(range(len(conversations)))
    for attempt in range(retries):
        if not pending:
            break
        temp = temperature if attempt == 0 else max(temperature, retry_temperature)
        replies = model.generate([conversations[i] for i in pending], max_new_tokens=max_new_tokens, temperature=temp, seed=seed + attempt)
        still = []
        for i, reply in zip(pending, replies, strict=True):
            try:
                values[i] = first_valid(reply, lambda obj, i=i: validate(i, obj))
                error = None
            except ValueError as exc:
                error = str(exc)
                still.append(i)
            attempts[i].append({"reply": reply, "temperature": temp, "seed": seed + attempt, "error": error})
        pending = still
    return values, attempts


def failure_line(attempts: list[dict]) -> str:
    """``"<last error> (last reply: '...')"`` for a prompt whose every try failed."""
    last = attempts[-1]
    return f"{last['error']} (last reply: {last['reply'][:80]!r})"
