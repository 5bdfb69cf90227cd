"""Bias proposals of C2B (arXiv 2504.20902, §3.1): for each target class, bias attributes and
their classes, from any :class:`~vlmkit.models.chat.ChatModel` or from a JSON file.

Schema (one object per target class)::

    {"background": ["forest", "sky", "water"], "pose": ["flying", "perched"]}

A reply is parsed against this schema only: the first JSON object in it (code fences and prose
allowed; an object under an ``"attributes"`` or ``"biases"`` key, or a list of ``{"name",
"classes"|"values"}`` objects there, is unwrapped) that holds at least one attribute mapping to a
list of at least two class names. Names are lower-cased and stripped and repeated classes dropped;
entries that are not attribute -> list of names (``"target_class": "circle"``) are ignored;
attributes with fewer than two classes are dropped (they cannot be scored). A reply with no valid
attribute is retried (greedy first, then sampled at ``retry_temperature`` with a new seed each
try); a target that still has none after ``retries`` tries is reported as a failure, and the run
stops with one line when no target has any. A proposals *file* is read strictly: any entry that
does not fit the schema is an error.

A proposals file holds the same mapping, for every target, or nested under target names::

    {"circle": {"background": ["black", "white"]}, "square": {...}}
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from vlmkit.errors import UserError
from vlmkit.models.chat_json import failure_line, first_valid, generate_validated

#: attribute -> its bias classes
Proposal = dict[str, list[str]]

SYSTEM_PROMPT = (
    "You help audit an image classifier for biases. Given the classification task and one target class, "
    "list visual attributes of images of that class that could change the classifier's decision "
    "(for example background, colour, pose, size), each with two to six mutually exclusive values. "
    'Reply with one JSON object only, mapping each attribute to a list of its values, e.g. '
    '{"weather": ["sunny", "rainy", "snowy"], "pose": ["flying", "perched"]}.'
)
#: the example attributes of :data:`SYSTEM_PROMPT` (a reply that repeats them copied the prompt)
PROMPT_EXAMPLE = {"weather": ["sunny", "rainy", "snowy"], "pose": ["flying", "perched"]}
WRAPPERS = ("attributes", "biases", "bias_attributes")
TEMPLATE_PROMPT = (
    "Write one caption template for retrieving photos for this image classification task. "
    "It must contain the slot {target} for the class name and the slot {bias} for a visual property, "
    'e.g. "a photo of a {target} with {bias}". Reply with the template only.'
)
#: the spec's fallback caption when no (valid) LLM template is available
DEFAULT_TEMPLATE = "a photo of a {target}, {bias} {attribute}"
MAX_CLASSES = 8


def _clean(text: str) -> str:
    return " ".join(str(text).replace("_", " ").split()).strip().lower()


def validate_proposal(data: object, where: str = "proposal", strict: bool = True) -> Proposal:
    """A checked :data:`Proposal` from parsed JSON; raises ``ValueError`` naming the problem.

    ``strict``: an entry that is not attribute -> list of names is an error (files); otherwise it
    is skipped (LLM replies).
    """
    if not isinstance(data, dict):
        raise ValueError(f"{where} must be a JSON object mapping attributes to lists of classes, not {type(data).__name__}")
    out: Proposal = {}
    for name, classes in data.items():
        attribute = _clean(name)
        if not attribute:
            continue
        if not isinstance(classes, list) or not all(isinstance(c, (str, int, float)) and not isinstance(c, bool) for c in classes):
            if strict:
                raise ValueError(f"{where}: attribute {name!r} must map to a list of class names")
            continue
        kept: list[str] = []
        for value in classes:
            value = _clean(value)
            if value and value not in kept:
                kept.append(value)
        if len(kept) >= 2:
            out[attribute] = kept[:MAX_CLASSES]
    if not out:
        raise ValueError(f"{where} has no attribute with at least two distinct classes")
    return out


def _unwrap(data: dict) -> object:
    """``{"attributes": {...}}`` or ``{"attributes": [{"name": a, "classes": [...]}, ...]}`` -> the mapping."""
    for key in WRAPPERS:
        inner = data.get(key)
        if isinstance(inner, dict):
            return inner
        if isinstance(inner, list) and all(isinstance(item, dict) for item in inner):
            return {str(item.get("name", item.get("attribute", ""))): item.get("classes", item.get("values")) for item in inner}
    return data


def parse_reply(text: str) -> Proposal:
    """A reply -> :data:`Proposal`: the first JSON object in it that fits the schema (objects
    nested in a reply whose outer braces do not parse are tried too), or ``ValueError`` saying
    why none does."""
    return first_valid(text, lambda value: validate_proposal(_unwrap(value), "the reply", strict=False))


@dataclass
class ProposalLog:
    """What the LLM said: every attempt per target (reply, error), for ``proposals.json``."""

    attempts: dict[str, list[dict]] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)


def propose_with_llm(
    model, task: str, targets: Sequence[str], *, retries: int = 3, temperature: float = 0.0,
    retry_temperature: float = 0.7, max_new_tokens: int = 160, seed: int = 0,
) -> tuple[dict[str, Proposal], ProposalLog]:
    """Ask ``model`` for bias proposals for each target; retry malformed replies.

    Returns the proposals of the targets that got a valid one and the log of every attempt.
    Raises :class:`UserError` (one line) when no target got a valid proposal.
    """
    from vlmkit.models.chat import system, user

    if retries < 1:
        raise UserError("--retries must be at least 1")
    conversations = [[system(SYSTEM_PROMPT), user(f"Task: {task}\nTarget class: {t}\nJSON:")] for t in targets]
    values, attempts = generate_validated(
        model, conversations, lambda i, value: validate_proposal(_unwrap(value), "the reply", strict=False), retries=retries,
        max_new_tokens=max_new_tokens, temperature=temperature, retry_temperature=retry_temperature, seed=seed,
    )
    log = ProposalLog(dict(zip(targets, attempts, strict=True)))
    proposals = {t: v for t, v in zip(targets, values, strict=True) if v is not None}
    log.failures = {t: failure_line(a) for t, a, v in zip(targets, attempts, values, strict=True) if v is None}
    if not proposals:
        target = targets[0]
        raise UserError(f"{model.name} gave no valid bias proposal for any class after {retries} tries "
                        f"(class {target!r}: {log.failures[target]}); pass --proposals FILE or a stronger --llm")
    return proposals, log


def llm_template(model, task: str, *, retries: int = 3, seed: int = 0, max_new_tokens: int = 40) -> tuple[str | None, list[str]]:
    """An LLM-written caption template with ``{target}`` and ``{bias}``, or ``None`` when every
    reply lacked a slot (the caller then uses :data:`DEFAULT_TEMPLATE`); also the raw replies."""
    from vlmkit.models.chat import system, user

    replies = []
    for attempt in range(retries):
        reply = model.generate([[system(TEMPLATE_PROMPT), user(f"Task: {task}\nTemplate:")]], max_new_tokens=max_new_tokens,
                               temperature=0.0 if attempt == 0 else 0.7, seed=seed + attempt)[0]
        replies.append(reply)
        line = next((s.strip().strip('"').strip() for s in reply.splitlines() if "{target}" in s and "{bias}" in s), None)
        if line and check_template(line, raise_error=False):
            return line, replies
    return None, replies


def check_template(template: str, raise_error: bool = True) -> bool:
    """A template has ``{target}`` and ``{bias}`` (``{attribute}`` optional) and no other slot."""
    slots = set(re.findall(r"\{([^{}]*)\}", template))
    ok = {"target", "bias"} <= slots <= {"target", "bias", "attribute"}
    if not ok and raise_error:
        raise UserError(
            f"caption template {template!r} must contain {{target}} and {{bias}} (and optionally {{attribute}}), "
            "e.g. 'a photo of a {target} on a {bias} background'"
        )
    return ok


def read_proposals(path: str | Path, targets: Sequence[str]) -> dict[str, Proposal]:
    """Read a proposals file: one mapping for every target, or mappings nested under targets."""
    from vlmkit.runs.readers import read_json

    fix = 'write JSON such as {"background": ["black", "white"]}, optionally nested under target classes'
    data = read_json(path, "proposals file", fix)
    if isinstance(data, dict) and data and all(isinstance(v, dict) for v in data.values()):
        unknown = sorted(set(data) - set(targets))
        if unknown:
            raise UserError(f"proposals file {path} names classes {', '.join(unknown[:5])} that are not among --classes; {fix}")
        out = {}
        for target, proposal in data.items():
            try:
                out[target] = validate_proposal(proposal, f"proposals for {target!r}")
            except ValueError as exc:
                raise UserError(f"proposals file {path}: {exc}; {fix}") from exc
        return out
    try:
        shared = validate_proposal(data, "the proposals")
    except ValueError as exc:
        raise UserError(f"proposals file {path}: {exc}; {fix}") from exc
    return {target: {k: list(v) for k, v in shared.items()} for target in targets}
