"""Phase II of R2P (arXiv 2503.18623, §3.2): recognise personal concepts in a query image.

For a query ``q`` with unit image embedding ``f_q^V`` and a :class:`ConceptDatabase`:

1. **Retrieval**: ``s_c = ½ (cos(f_q^V, f_c^V) + cos(f_q^V, f_c^T))`` (image-image only when
   description retrieval is off); keep the top ``k`` concepts (ties: database order).
2. **Attribute-focused reasoning**: the VLM sees the query and the candidates' fingerprints and
   returns its choice ``c~`` (a candidate or "none") and, per candidate ``i``, the fingerprint
   attributes ``A_i`` it finds in the query (:mod:`vlmkit.personalize.reasoning`).
3. **Cross-modal verification**: ``v_i = mean_{a in A_i} cos(f_q^V, E_T("a photo of a <category>
   with <a>"))``, ``-inf`` for an empty ``A_i``. If ``argmax_i v_i = c~``, ``c~`` is accepted.
4. **Pairwise matching** (only on disagreement, or when the reasoning reply could not be
   parsed): ``p_i = exp(l_yes) / (exp(l_yes) + exp(l_no))`` from the VLM's ``score`` of "yes"
   and "no" for "is <id> (reference image, fingerprint) in the query?"; predict ``argmax p_i``.

"None of my concepts" (the paper does not say how; this is vlmkit's rule):

- the reasoning step answers "none" -> rejected (verification and pairwise are skipped);
- pairwise matching -> rejected when ``max_i p_i < pairwise_threshold`` (0.5: no candidate is
  more likely present than absent);
- retrieval alone (stages off) -> rejected when ``s_c`` of the best concept is below the
  database's leave-one-out threshold (:func:`~vlmkit.personalize.database.leave_one_out_threshold`);
- verification without pairwise: on disagreement the verification's argmax is kept (rejected when
  every ``A_i`` is empty).

Every stage can be switched off in :class:`R2PConfig`, for the ablation; :func:`decide` is a pure
function of a :class:`Trace`, so every ablation step is computed from one pass over the queries.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from vlmkit.personalize.database import ConceptDatabase, unit
from vlmkit.personalize.reasoning import Reasoning

ATTRIBUTE_TEMPLATE = "a photo of a {category} with {attribute}"
PAIRWISE_PROMPT = ("The first image is a new photo. The second image shows <{id}>: {description} "
                   "Is <{id}> in the first image? Answer yes or no.")


@dataclass(frozen=True)
class R2PConfig:
    """The stages of one R2P variant and its knobs (defaults: the spec's)."""

    k: int = 3
    description_retrieval: bool = True
    reasoning: bool = True
    verification: bool = True
    pairwise: bool = True
    pairwise_threshold: float = 0.5
    yes_no: tuple[str, str] = ("yes", "no")
    pairwise_prompt: str = PAIRWISE_PROMPT

    def __post_init__(self):
        if self.k < 1:
            raise ValueError("k must be at least 1")
        if self.verification and not self.reasoning:
            raise ValueError("verification checks the reasoning step's attributes; switch reasoning on")
        try:
            self.pairwise_prompt.format(id="x", description="x", category="x")
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError("the pairwise prompt may use only the slots {id}, {description} and {category}") from exc


#: the methods of ``vlmkit r2p eval``: name -> (config overrides, description)
METHODS: dict[str, dict] = {
    "clip-retrieval": {"description_retrieval": False, "reasoning": False, "verification": False, "pairwise": False},
    "retrieval": {"reasoning": False, "verification": False, "pairwise": False},
    "reasoning": {"verification": False, "pairwise": False},
    "verification": {"pairwise": False},
    "r2p": {},
}


def retrieval_scores(query: np.ndarray, image: np.ndarray, text: np.ndarray | None = None) -> np.ndarray:
    """``query (d,)``, ``image``/``text (n, d)`` -> ``s (n,)``: the mean of the image-image and
    image-description cosines, or the image-image cosine alone when ``text`` is ``None``."""
    q = unit(query)
    s = unit(image) @ q
    return s if text is None else 0.5 * (s + unit(text) @ q)


def top_k(scores: np.ndarray, k: int) -> list[int]:
    """Indices of the ``k`` highest scores, best first; ties keep the lower index first."""
    order = np.argsort(-np.asarray(scores, np.float64), kind="stable")
    return [int(i) for i in order[:k]]


def attribute_text(category: str, attribute: str) -> str:
    return ATTRIBUTE_TEMPLATE.format(category=category, attribute=attribute)


def verification_scores(query: np.ndarray, attribute_embeddings: Sequence[np.ndarray]) -> np.ndarray:
    """``v_i``: the mean cosine of ``query (d,)`` with each row of ``attribute_embeddings[i]``
    ``(m_i, d)``; ``-inf`` where ``m_i = 0``."""
    q = unit(query)
    return np.array([float((unit(e) @ q).mean()) if len(e) else -math.inf for e in attribute_embeddings])


def yes_probability(logp_yes: float, logp_no: float) -> float:
    """``exp(l_yes) / (exp(l_yes) + exp(l_no))``, computed stably (two options only, never a
    softmax over the vocabulary)."""
    return 1.0 / (1.0 + math.exp(logp_no - logp_yes))


@dataclass
class Trace:
    """Everything R2P computed for one query (what :func:`decide` and the report read).

    ``scores_image``/``scores`` are over all concepts; the other fields over ``candidates``.
    ``reasoning`` is ``None`` when the reply could not be parsed; ``pairwise`` is filled only
    when a decision needed it."""

    query: str
    scores_image: list[float]
    scores: list[float]
    candidates: list[str]
    reasoning: Reasoning | None = None
    verification: dict[str, float] = field(default_factory=dict)
    pairwise: dict[str, float] = field(default_factory=dict)
    reasoning_all: Reasoning | None = None

    def to_json(self) -> dict:
        from dataclasses import asdict

        out = asdict(self)
        out["verification"] = {k: (None if math.isinf(v) else v) for k, v in self.verification.items()}
        return out


def _top1(ids: Sequence[str], scores: Sequence[float], threshold: float | None) -> str | None:
    best = int(np.argmax(scores))
    return ids[best] if threshold is None or scores[best] >= threshold else None


def pairwise_decision(trace: Trace, threshold: float) -> str | None:
    """``argmax_i p_i`` over the candidates, or ``None`` when it is below ``threshold``."""
    p = [trace.pairwise[c] for c in trace.candidates]
    best = int(np.argmax(p))
    return trace.candidates[best] if p[best] >= threshold else None


def needs_pairwise(trace: Trace, config: R2PConfig) -> bool:
    """Whether ``config``'s decision for ``trace`` goes to pairwise matching."""
    if not config.pairwise:
        return False
    if not config.reasoning or trace.reasoning is None:
        return True
    if trace.reasoning.choice is None or not config.verification:
        return False
    return _verified(trace) != trace.reasoning.choice


def _verified(trace: Trace) -> str | None:
    values = [trace.verification.get(c, -math.inf) for c in trace.candidates]
    best = int(np.argmax(values))
    return None if math.isinf(values[best]) else trace.candidates[best]


def decide(trace: Trace, config: R2PConfig, db: ConceptDatabase) -> tuple[str | None, str]:
    """The prediction of ``config`` for ``trace`` (``None``: none of my concepts) and the stage
    that made it (``retrieval``, ``reasoning``, ``verification`` or ``pairwise``)."""
    ids = db.ids
    if needs_pairwise(trace, config):
        return pairwise_decision(trace, config.pairwise_threshold), "pairwise"
    if not config.reasoning or trace.reasoning is None:
        if config.description_retrieval:
            return _top1(ids, trace.scores, db.thresholds.get("retrieval")), "retrieval"
        return _top1(ids, trace.scores_image, db.thresholds.get("clip-retrieval")), "retrieval"
    choice = trace.reasoning.choice
    if choice is None or not config.verification:
        return choice, "reasoning"
    verified = _verified(trace)
    return verified, "verification"


def method_config(base: R2PConfig, method: str) -> R2PConfig:
    return replace(base, **METHODS[method])
