"""R2P's attribute-focused reasoning (arXiv 2503.18623, §3.2, step 2).

The VLM gets the query image and the fingerprints of the candidate concepts and answers with
its choice (a candidate's id or "none") and, per candidate, the fingerprint attributes it finds
in the query. Two modes, as for fingerprints:

- ``json``: chain of thought in one JSON reply (``{"reasoning": ..., "matched_attributes":
  {"<id>": [...]}, "answer": "<id>" | "none"}``), validated strictly and retried; a reply that is
  still malformed gives ``None`` and the caller falls back to pairwise matching (spec §7);
- ``questions``: the attribute questions of :mod:`vlmkit.personalize.fingerprint` asked about
  the query; ``A_i`` = the candidate's fields whose value equals the query's answer;
  the choice is the candidate matching *all* its fields (most first, ties by retrieval rank),
  "none" when no candidate does.

Matched attributes are kept only when they are attributes of that candidate's fingerprint (case
and spacing ignored): the verification step embeds fingerprint text, never free text.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field

from vlmkit.models.chat import system, user
from vlmkit.personalize.fingerprint import Fingerprint

SYSTEM_PROMPT = (
    "You recognise a user's personal concepts. You get a photo and the fingerprints of a few candidate concepts. "
    "Think step by step: for each candidate, list which of its fingerprint attributes are visible in the photo, then decide "
    "which candidate, if any, is in the photo. Reply with one JSON object: "
    '{"reasoning": "<short>", "matched_attributes": {"<id>": ["<attribute>", ...], ...}, "answer": "<id>" or "none"}.'
)


@dataclass
class Reasoning:
    """The reasoning step's output: ``choice`` (an id, or ``None`` for "none"), ``matched``
    (id -> attributes found in the query), the model's ``rationale`` and ``dropped`` (matched
    attributes that are not in the fingerprint)."""

    choice: str | None
    matched: dict[str, list[str]] = field(default_factory=dict)
    rationale: str = ""
    dropped: int = 0


def _norm(text: str) -> str:
    return " ".join(str(text).lower().replace("<", " ").replace(">", " ").split())


def candidate_text(fp: Fingerprint) -> str:
    return f"<{fp.concept_id}> ({fp.category}): {fp.description} Attributes: {json.dumps(fp.attributes())}"


def reasoning_prompt(query, fingerprints: Sequence[Fingerprint]) -> list:
    listing = "\n".join(candidate_text(fp) for fp in fingerprints)
    return [system(SYSTEM_PROMPT), user(query, f"Candidates:\n{listing}\nJSON:")]


def validate_reasoning(data: dict, fingerprints: Sequence[Fingerprint]) -> Reasoning:
    """A :class:`Reasoning` from a parsed reply; ``ValueError`` naming the problem."""
    ids = {_norm(fp.concept_id): fp for fp in fingerprints}
    answer = data.get("answer")
    if not isinstance(answer, str) or not answer.strip():
        raise ValueError("the reply has no answer string")
    answer = _norm(answer)
    if answer not in ids and answer != "none":
        raise ValueError(f"answer {answer!r} is neither a candidate id nor 'none'")
    matched_in = data.get("matched_attributes", {})
    if not isinstance(matched_in, dict):
        raise ValueError("matched_attributes must map candidate ids to lists of attributes")
    matched, dropped = {fp.concept_id: [] for fp in fingerprints}, 0
    for key, values in matched_in.items():
        fp = ids.get(_norm(key))
        if fp is None:
            continue
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise ValueError(f"matched_attributes[{key!r}] must be a list of strings")
        known = {_norm(a): a for a in fp.attributes()}
        for value in values:
            if _norm(value) in known and known[_norm(value)] not in matched[fp.concept_id]:
                matched[fp.concept_id].append(known[_norm(value)])
            else:
                dropped += 1
    rationale = data.get("reasoning", "")
    choice = None if answer == "none" else ids[answer].concept_id
    return Reasoning(choice, matched, rationale if isinstance(rationale, str) else json.dumps(rationale), dropped)


def reason_json(model, queries: Sequence, candidates: Sequence[Sequence[Fingerprint]], *, retries: int = 2, seed: int = 0,
                max_new_tokens: int = 256) -> tuple[list[Reasoning | None], list[list[dict]]]:
    """Reasoning for each query over its candidates; ``None`` where every try was malformed."""
    from vlmkit.models.chat_json import generate_validated

    conversations = [reasoning_prompt(q, fps) for q, fps in zip(queries, candidates, strict=True)]
    return generate_validated(model, conversations, lambda i, obj: validate_reasoning(obj, candidates[i]), retries=retries,
                              seed=seed, max_new_tokens=max_new_tokens)


def reason_questions(answers: dict[str, str], fingerprints: Sequence[Fingerprint]) -> Reasoning:
    """Questions-mode reasoning from the query's ``answers`` (field -> answer) over candidates
    given best first; see the module docstring for the rule."""
    matched, full = {}, []
    for fp in fingerprints:
        hits = [f"{v} {k.replace('_', ' ')}" for k, v in fp.fields.items() if v and _norm(answers.get(k, "")) == _norm(v)]
        matched[fp.concept_id] = hits
        if fp.fields and len(hits) == len([v for v in fp.fields.values() if v]):
            full.append(fp.concept_id)
    rationale = "; ".join(f"{k}: {v}" for k, v in answers.items())
    return Reasoning(full[0] if full else None, matched, rationale)
