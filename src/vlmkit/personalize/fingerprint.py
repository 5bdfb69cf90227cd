"""Phase I of R2P (arXiv 2503.18623, §3.1): a textual fingerprint per concept.

A fingerprint is what sets a concept apart *within its category*: a description that starts
"<id> is ...", the category, a list of distinctive features and, for objects, the fields shape,
material, color, state, pattern, brand/text and alternative names. It is asked one-shot (one
worked example in the prompt) and must come back as JSON; replies are validated strictly and
retried (:mod:`vlmkit.models.chat_json`); a concept whose every try fails stops the build with
one line naming it and the model's last reply.

Two ways to ask (``mode``):

- ``json``: the paper's prompt (any instruction-following VLM);
- ``questions``: one short question per attribute about each reference image, answers taken by
  majority vote; for small models that answer questions in words but cannot write JSON (e.g.
  ``embedded-chat``). Not in the paper: an adapter so the same pipeline runs offline.

:meth:`Fingerprint.attributes` is the list the reasoning step chooses from and the verification
step embeds: the distinctive features, then each non-empty object field as "<value> <field>".
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

from vlmkit.errors import UserError
from vlmkit.models.chat import system, user
from vlmkit.models.chat_json import failure_line, generate_validated
from vlmkit.personalize.concepts import Concept

OBJECT_FIELDS = ("shape", "material", "color", "state", "pattern", "brand_text", "alternative_names")
MAX_FEATURES = 8

EXAMPLE = {
    "description": "<bo> is a tan corgi puppy with a white blaze on its face and a red collar with a bone-shaped tag.",
    "category": "dog",
    "distinctive_features": ["white blaze on the face", "red collar", "bone-shaped tag", "short tan fur"],
    "shape": "", "material": "", "color": "tan and white", "state": "", "pattern": "", "brand_text": "",
    "alternative_names": ["corgi"],
}
SYSTEM_PROMPT = (
    "You write fingerprints of personal concepts for recognising them later. Given reference images of one concept, its "
    "identifier and its category, list only the traits that set THIS concept apart from other members of its category; "
    "avoid traits that are generic for the category (a dog has four legs, a mug has a handle). Reply with one JSON object "
    "with the keys description (one sentence starting '<id> is'), category, distinctive_features (a list), and, for "
    f"objects, {', '.join(OBJECT_FIELDS)} (empty strings when unknown).\n"
    f"Example for <bo>, category dog:\n{json.dumps(EXAMPLE)}"
)

#: questions mode: fingerprint field -> the question asked about a reference image
QUESTIONS = {"color": "what color is the object ?", "pattern": "what pattern is on the object ?", "size": "what size is the shape ?"}


@dataclass
class Fingerprint:
    """The validated fingerprint of one concept."""

    concept_id: str
    category: str
    description: str
    features: list[str]
    fields: dict[str, str] = field(default_factory=dict)

    def attributes(self) -> list[str]:
        """Distinctive features, then "<value> <field>" for each non-empty field (no repeats)."""
        out = []
        for text in [*self.features, *(f"{v} {k.replace('_', ' ')}" for k, v in self.fields.items() if v)]:
            if text.lower() not in (o.lower() for o in out):
                out.append(text)
        return out

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> Fingerprint:
        return cls(data["concept_id"], data["category"], data["description"], list(data["features"]), dict(data.get("fields", {})))


def _text(value) -> str:
    if isinstance(value, list):
        value = ", ".join(str(v) for v in value if isinstance(v, (str, int, float)) and str(v).strip())
    if not isinstance(value, (str, int, float)) or isinstance(value, bool):
        raise ValueError("a fingerprint field must be a string or a list of strings")
    return " ".join(str(value).split())


def validate_fingerprint(data: dict, concept: Concept) -> Fingerprint:
    """A :class:`Fingerprint` from a parsed reply; ``ValueError`` naming the problem.

    Rules: ``description`` is a non-empty string (prefixed "<id> is" when it does not start with
    the id, with or without angle brackets); ``distinctive_features`` is a non-empty list of
    non-empty strings (at most :data:`MAX_FEATURES` kept); object fields, when present, are strings
    or lists of strings; ``category`` defaults to the concept's.
    """
    if not isinstance(data, dict):
        raise ValueError("a fingerprint is a JSON object")
    description = data.get("description")
    if not isinstance(description, str) or not description.strip():
        raise ValueError("the fingerprint has no description string")
    features = data.get("distinctive_features", data.get("features"))
    if not isinstance(features, list) or not features:
        raise ValueError("distinctive_features must be a non-empty list of strings")
    cleaned = []
    for item in features:
        if not isinstance(item, str) or not item.strip():
            raise ValueError("distinctive_features must be a non-empty list of strings")
        cleaned.append(" ".join(item.split()))
    fields = {}
    for name in OBJECT_FIELDS:
        if name in data and data[name] not in (None, ""):
            fields[name] = _text(data[name])
    description = " ".join(description.split())
    if not description.lower().lstrip("<").startswith(concept.id.lower()):
        description = f"{concept.id} is {description[0].lower()}{description[1:]}"
    category = data.get("category") if isinstance(data.get("category"), str) and data["category"].strip() else concept.category
    return Fingerprint(concept.id, category.strip(), description, cleaned[:MAX_FEATURES], fields)


def fingerprint_prompt(concept: Concept) -> list:
    return [system(SYSTEM_PROMPT), user(*concept.references, f"Identifier: <{concept.id}>. Category: {concept.category}. JSON:")]


def fingerprints_json(model, concepts: Sequence[Concept], *, retries: int = 2, seed: int = 0,
                      max_new_tokens: int = 256) -> tuple[list[Fingerprint], list[list[dict]]]:
    """Fingerprints by the paper's one-shot JSON prompt (all reference images in one turn).

    Raises:
        UserError: a concept has no valid fingerprint after ``retries`` tries (one line).
    """
    conversations = [fingerprint_prompt(c) for c in concepts]
    values, attempts = generate_validated(model, conversations, lambda i, obj: validate_fingerprint(obj, concepts[i]),
                                          retries=retries, seed=seed, max_new_tokens=max_new_tokens)
    for concept, value, tries in zip(concepts, values, attempts, strict=True):
        if value is None:
            raise UserError(f"{model.name} gave no valid fingerprint for concept {concept.id!r} after {retries} tries: "
                            f"{failure_line(tries)}; use a stronger --model, more --retries or --fingerprint-mode questions")
    return values, attempts


def ask_attributes(model, images: Sequence, questions: dict[str, str], max_new_tokens: int = 8) -> list[dict[str, str]]:
    """Answer every question about every image: ``[{field: answer}]`` per image (lower-cased, one line)."""
    conversations = [[user(image, question)] for image in images for question in questions.values()]
    replies = model.generate(conversations, max_new_tokens=max_new_tokens, temperature=0.0) if conversations else []
    n = len(questions)
    return [{name: " ".join(replies[i * n + j].lower().split()) for j, name in enumerate(questions)} for i in range(len(images))]


def fingerprints_questions(model, concepts: Sequence[Concept], questions: dict[str, str] | None = None) -> tuple[list[Fingerprint],
                                                                                                                list[list[dict]]]:
    """Fingerprints from short answers: each field's majority answer over the references
    (ties: the first reference's). Empty answers are dropped; a concept with none stops the build."""
    questions = questions or QUESTIONS
    images = [image for c in concepts for image in c.references]
    answers = ask_attributes(model, images, questions)
    out, logs, at = [], [], 0
    for concept in concepts:
        mine = answers[at: at + len(concept.references)]
        at += len(concept.references)
        fields = {}
        for name in questions:
            votes = Counter(a[name] for a in mine if a[name])
            if votes:
                best = max(votes.values())
                fields[name] = next(a[name] for a in mine if votes.get(a[name]) == best)
        if not fields:
            raise UserError(f"{model.name} answered none of the attribute questions about concept {concept.id!r}; use another --model")
        words = [fields[k] for k in fields if k != "pattern"] + [fields.get("pattern", ""), concept.category]
        description = f"{concept.id} is a {' '.join(words)}"
        out.append(Fingerprint(concept.id, concept.category, " ".join(description.split()), [], fields))
        logs.append([{"answers": mine, "error": None}])
    return out, logs
