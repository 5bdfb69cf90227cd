"""Training conversations in the LLaVA / ShareGPT layout, and data mixtures over them.

A conversation file is a JSON list of records (LLaVA mix-665k, Cambrian, LLaMA-Factory)::

    {"id": "...", "image": "coco/1.jpg" | ["a.jpg", "b.jpg"],
     "conversations": [{"from": "human", "value": "<image>\\nWhat is it?"}, {"from": "gpt", "value": "A star."}]}

``<image>`` placeholders mark where each image goes (the first image goes first when a turn
has none); ``human``/``user``, ``gpt``/``assistant`` and ``system`` roles are accepted. Image
paths are relative to the file's folder (or ``image_root``). A *mixture* file maps conversation
files to sample counts, ``{"general.json": 9600, "ocr.json": 4800}`` (paths relative to the
mixture file), the DMO paper's format; drawing is seeded and without replacement.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vlmkit.models.chat import Message
from vlmkit.runs.readers import need_file, read_json

ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant", "system": "system"}
FIX = "write a JSON list of records with 'conversations' turns ({'from': 'human'|'gpt', 'value': ...}) and optional 'image'"


def record_to_conversation(record: dict, root: Path, path: Path, index: int) -> list[Message]:
    """One LLaVA/ShareGPT record as a list of :class:`Message` (images as paths)."""
    from vlmkit.errors import DatasetError

    where = f"{path} record {index}"
    turns = record.get("conversations") if isinstance(record, dict) else None
    if not isinstance(turns, list) or not turns:
        raise DatasetError(f"{where} has no 'conversations' list; {FIX}")
    images = record.get("image") or []
    images = [images] if isinstance(images, str) else images
    if not isinstance(images, list) or not all(isinstance(image, str) for image in images):
        raise DatasetError(f"{where}: 'image' must be a path or a list of paths; {FIX}")
    pending = [root / image for image in images]
    messages = []
    for turn in turns:
        if (
            not isinstance(turn, dict)
            or turn.get("from", turn.get("role")) not in ROLES
            or not isinstance(turn.get("value", turn.get("content")), str)
        ):
            raise DatasetError(f"{where}: a turn needs 'from' (human, gpt or system) and a string 'value'; {FIX}")
        role = ROLES[turn.get("from", turn.get("role"))]
        text = turn.get("value", turn.get("content"))
        parts: list = []
        pieces = text.split("<image>")
        for i, piece in enumerate(pieces):
            if i > 0:
                if not pending:
                    raise DatasetError(f"{where} has more <image> placeholders than images")
                parts.append(pending.pop(0))
            if piece.strip():
                parts.append(piece.strip())
        if role == "user" and not messages and pending and len(pieces) == 1:
            parts = [*pending, *parts]  # images without placeholders go before the first question
            pending = []
        messages.append(Message(role, tuple(parts)))
    if pending:
        raise DatasetError(f"{where} lists {len(pending)} image(s) that no <image> placeholder uses")
    for image in images:  # each image must exist now (a stat, not a decode): a missing one stops the run before any work
        need_file(root / image, f"image of {where}", "fix the path (relative to the file's folder)")
    return messages


def load_conversations(path: str | Path, image_root: str | Path | None = None) -> list[list[Message]]:
    """Every record of a conversation file, in order."""
    path = Path(path)
    records = read_json(path, "conversation file", FIX, schema=list)
    root = Path(image_root) if image_root else path.parent
    return [record_to_conversation(record, root, path, i) for i, record in enumerate(records)]


def is_mixture(path: str | Path) -> bool:
    return isinstance(read_json(path, "data file", FIX), dict)


def load_mixture(path: str | Path, seed: int = 0) -> tuple[list[list[Message]], dict[str, int]]:
    """Draw each source's count of conversations (seeded, without replacement); returns the
    shuffled union and the counts actually drawn."""
    from vlmkit.errors import DatasetError

    path = Path(path)
    mixture = read_json(path, "mixture file", "write a JSON object mapping conversation files to sample counts", schema=dict)
    rng = np.random.default_rng(seed)
    drawn, counts = [], {}
    for source, count in mixture.items():
        if not isinstance(count, int) or count < 0:
            raise DatasetError(f"{path}: the count of {source} must be a non-negative integer, got {count!r}")
        conversations = load_conversations(path.parent / source)
        if count > len(conversations):
            raise DatasetError(f"{path} asks for {count} samples of {source}, which has {len(conversations)}; lower the count")
        order = rng.permutation(len(conversations))[:count]
        drawn += [conversations[i] for i in sorted(order)]
        counts[source] = count
    return [drawn[i] for i in rng.permutation(len(drawn))], counts


def load_training_data(path: str | Path, seed: int = 0) -> list[list[Message]]:
    """A conversation file or a mixture file."""
    return load_mixture(path, seed)[0] if is_mixture(path) else load_conversations(path)
