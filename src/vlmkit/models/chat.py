"""The chat side of the model layer: conversations with images in, text out.

A conversation is built once, as data (:class:`Message` tuples with text and images), and every
backend converts it at its edge (to a Hugging Face chat template, to OpenAI ``messages``).
Methods only see :class:`ChatModel`; they ask for *capabilities*, never for a backend or a family:

- ``"images"``: the model takes images; ``"multi_image"``: several per conversation;
- ``"score"``: :meth:`ChatModel.score` returns log-probabilities of given continuations
  (backends without logits, e.g. most servers, lack it and raise :class:`UnsupportedError`).

Images are PIL images or paths; paths are opened (and converted to RGB) when a backend needs the
pixels. :func:`conversation_key` hashes a conversation by content (image pixels, not paths), so
response caches survive renamed files and catch edited ones.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol, runtime_checkable

from PIL import Image

from vlmkit.errors import UnsupportedError, UserError

Role = Literal["system", "user", "assistant"]
ImageLike = Image.Image | Path
Part = str | ImageLike

CAPABILITIES = ("images", "multi_image", "score")


@dataclass(frozen=True)
class Message:
    """One turn: a role and an ordered tuple of parts (text strings and images)."""

    role: Role
    parts: tuple[Part, ...]

    def __post_init__(self):
        if self.role not in ("system", "user", "assistant"):
            raise UserError(f"unknown chat role {self.role!r}; use system, user or assistant")
        for part in self.parts:
            if not isinstance(part, (str, Image.Image, Path)):
                raise TypeError(f"a message part is text, a PIL image or a Path, not {type(part).__name__}")

    @property
    def text(self) -> str:
        """The text parts joined by single spaces (images dropped)."""
        return " ".join(p for p in self.parts if isinstance(p, str))

    @property
    def images(self) -> list[ImageLike]:
        return [p for p in self.parts if not isinstance(p, str)]


Conversation = Sequence[Message]


def system(text: str) -> Message:
    return Message("system", (text,))


def user(*parts: Part) -> Message:
    """A user turn; a ``str`` path is text, pass ``Path(...)`` for an image file."""
    return Message("user", tuple(parts))


def assistant(text: str) -> Message:
    return Message("assistant", (text,))


def ask(question: str, *images: ImageLike) -> list[Message]:
    """The common one-turn conversation: the images, then the question."""
    return [user(*images, question)]


def conversation_images(conversation: Conversation) -> list[ImageLike]:
    return [image for message in conversation for image in message.images]


def open_image(image: ImageLike) -> Image.Image:
    """An RGB PIL image; a path that cannot be read is a :class:`UserError`."""
    if isinstance(image, Image.Image):
        return image if image.mode == "RGB" else image.convert("RGB")
    try:
        with Image.open(image) as handle:
            return handle.convert("RGB")
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot read image {image}: {type(exc).__name__}; pass a readable PNG or JPEG file") from exc


def image_digest(image: ImageLike) -> str:
    """SHA-256 of an image's size, mode and pixels (independent of file name and encoding)."""
    pil = open_image(image)
    digest = hashlib.sha256(f"{pil.mode}:{pil.size}".encode())
    digest.update(pil.tobytes())
    return digest.hexdigest()


def conversation_key(conversation: Conversation, **settings) -> str:
    """A content key for a conversation and the settings that determine its answer."""
    turns = [
        [message.role, [part if isinstance(part, str) else {"image": image_digest(part)} for part in message.parts]]
        for message in conversation
    ]
    payload = json.dumps({"turns": turns, "settings": settings}, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()


def check_conversations(conversations: Iterable[Conversation]) -> list[list[Message]]:
    """Validate shape: non-empty, a list of :class:`Message`, system only first, ends with a user turn."""
    checked = []
    for index, conversation in enumerate(conversations):
        messages = list(conversation)
        if not messages or not all(isinstance(m, Message) for m in messages):
            raise TypeError(f"conversation {index} must be a non-empty list of Message")
        if any(m.role == "system" for m in messages[1:]):
            raise UserError(f"conversation {index}: a system message may only come first")
        if messages[-1].role != "user":
            raise UserError(f"conversation {index} must end with a user turn (the model answers it)")
        checked.append(messages)
    return checked


def check_generation(max_new_tokens: int, temperature: float) -> None:
    """One-line error for decoding settings no backend can honour (every backend checks them
    before any work, so a bad setting fails the same way whatever answers)."""
    if max_new_tokens < 1 or not 0 <= temperature < math.inf:
        raise UserError(f"max_new_tokens must be >= 1 and temperature a finite number >= 0 (got {max_new_tokens} and {temperature})")


@runtime_checkable
class ChatModel(Protocol):
    """A large multimodal model (or a text LLM: a ChatModel without ``"images"``).

    Attributes:
        name: the name it was loaded by.
        capabilities: a subset of :data:`CAPABILITIES`.
        fingerprint: identifies the weights (or served model), for caches.
    """

    name: str
    capabilities: frozenset[str]
    fingerprint: str

    def generate(
        self, conversations: Sequence[Conversation], *, max_new_tokens: int = 64, temperature: float = 0.0, seed: int = 0
    ) -> list[str]:
        """The assistant's reply to each conversation (batched; greedy at temperature 0;
        deterministic under ``seed``)."""
        ...

    def score(self, conversation: Conversation, options: Sequence[str]) -> list[float]:
        """Natural-log probability of each option as the complete start of the assistant's
        reply: ``log p(option | conversation)``, summed over the option's tokens.
        Raises :class:`UnsupportedError` without the ``"score"`` capability."""
        ...


def require(model: ChatModel, *capabilities: str) -> None:
    """Raise a one-line :class:`UnsupportedError` when ``model`` lacks a capability."""
    missing = [c for c in capabilities if c not in model.capabilities]
    if missing:
        raise UnsupportedError(
            f"{model.name} does not support {', '.join(missing)} (it supports: {', '.join(sorted(model.capabilities)) or 'text only'}); "
            "choose a model that does (`vlmkit models`)"
        )


def check_images_allowed(model: ChatModel, conversations: Sequence[Conversation]) -> None:
    """One-line errors for images sent to a text model, or several to a single-image model."""
    counts = [len(conversation_images(c)) for c in conversations]
    if any(counts):
        require(model, "images")
    if any(n > 1 for n in counts):
        require(model, "multi_image")
