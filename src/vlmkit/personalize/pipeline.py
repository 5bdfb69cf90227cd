"""R2P over a batch of query images: one pass computes every stage's evidence (a
:class:`~vlmkit.personalize.r2p.Trace` per query), then each variant decides from the traces.

Work per query: one image embedding; one reasoning reply over the top-``k`` candidates (plus
one over *all* concepts for the ``vlm-only`` baseline, when asked); the text embeddings of
the matched attributes (cached across queries); and, only where the full configuration needs
it, one yes/no ``score`` per candidate.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from vlmkit.errors import UserError
from vlmkit.personalize.database import ConceptDatabase
from vlmkit.personalize.fingerprint import QUESTIONS, ask_attributes
from vlmkit.personalize.r2p import (
    R2PConfig,
    Trace,
    attribute_text,
    needs_pairwise,
    retrieval_scores,
    top_k,
    verification_scores,
    yes_probability,
)
from vlmkit.personalize.reasoning import reason_json, reason_questions


class R2P:
    """Recognise the concepts of ``db`` in query images with ``chat`` (a ChatModel) and ``clip``
    (the ContrastiveModel that built ``db``).

    Args:
        mode: ``json`` or ``questions`` (how the reasoning step asks, see
            :mod:`vlmkit.personalize.reasoning`); default: the database's fingerprint mode.
        cache: an embedding cache for query and attribute embeddings (optional).
    """

    def __init__(self, chat, clip, db: ConceptDatabase, config: R2PConfig = R2PConfig(), *, mode: str | None = None,
                 retries: int = 2, seed: int = 0, cache=None, batch_size: int = 32):
        self.chat, self.clip, self.db, self.config = chat, clip, db, config
        self.mode = mode or db.info.get("fingerprint_mode", "json")
        self.retries, self.seed, self.cache, self.batch_size = retries, seed, cache, batch_size
        self._attribute_vectors: dict[str, np.ndarray] = {}
        self._answers: dict[str, dict[str, str]] = {}  # questions mode: query -> field -> answer
        self.reasoning_log: list[list[dict]] = []

    def embed_queries(self, paths: Sequence[str | Path]) -> np.ndarray:
        """``(n_queries, d)`` unit image embeddings."""
        from vlmkit.embed import embed_images

        return embed_images(self.clip, list(paths), batch_size=self.batch_size, cache=self.cache).vectors

    def attribute_vectors(self, texts: Sequence[str]) -> np.ndarray:
        """``(len(texts), d)`` text embeddings, computed once per distinct text."""
        from vlmkit.embed import embed_texts

        todo = sorted({t for t in texts if t not in self._attribute_vectors})
        if todo:
            for text, vector in zip(todo, embed_texts(self.clip, todo, cache=self.cache).vectors, strict=True):
                self._attribute_vectors[text] = vector
        d = self.db.image.shape[1]
        return np.stack([self._attribute_vectors[t] for t in texts]) if texts else np.zeros((0, d), np.float32)

    def _reason(self, queries: Sequence, candidate_lists: list[list[int]]):
        fps = self.db.fingerprints
        if self.mode == "json":
            values, log = reason_json(self.chat, [Path(q) for q in queries], [[fps[i] for i in c] for c in candidate_lists],
                                      retries=self.retries, seed=self.seed)
            self.reasoning_log.extend(log)
            return values
        if self.mode != "questions":
            raise UserError(f"unknown reasoning mode {self.mode!r}; use json or questions")
        questions = {k: QUESTIONS[k] for k in QUESTIONS if any(k in fp.fields for fp in fps)} or QUESTIONS
        missing = [q for q in queries if str(q) not in self._answers]
        for q, a in zip(missing, ask_attributes(self.chat, [Path(q) for q in missing], questions), strict=True):
            self._answers[str(q)] = a
        return [reason_questions(self._answers[str(q)], [fps[i] for i in c]) for q, c in zip(queries, candidate_lists, strict=True)]

    def traces(self, queries: Sequence[str | Path], *, vlm_only: bool = False) -> list[Trace]:
        """One :class:`Trace` per query image (paths), with pairwise probabilities wherever
        this R2P's configuration needs them."""
        from vlmkit.models.chat import require

        cfg, db = self.config, self.db
        if cfg.reasoning or vlm_only:
            require(self.chat, "images")
        if cfg.pairwise:
            require(self.chat, "score", "multi_image")  # before any work, not at the first disagreement
        vectors = self.embed_queries(queries)
        traces, candidate_lists = [], []
        for path, q in zip(queries, vectors, strict=True):
            s_image = retrieval_scores(q, db.image)
            s = retrieval_scores(q, db.image, db.text if cfg.description_retrieval else None)
            cands = top_k(s, min(cfg.k, len(db.ids)))
            candidate_lists.append(cands)
            traces.append(Trace(str(path), s_image.tolist(), s.tolist(), [db.ids[i] for i in cands]))
        if cfg.reasoning:
            for trace, reasoning in zip(traces, self._reason(queries, candidate_lists), strict=True):
                trace.reasoning = reasoning
        if vlm_only:
            everything = [top_k(np.asarray(t.scores), len(db.ids)) for t in traces]
            for trace, reasoning in zip(traces, self._reason(queries, everything), strict=True):
                trace.reasoning_all = reasoning
        if cfg.verification:
            for trace, q in zip(traces, vectors, strict=True):
                self._verify(trace, q)
        for trace, path in zip(traces, queries, strict=True):
            if needs_pairwise(trace, cfg):
                self.pairwise(trace, path)
        return traces

    def _verify(self, trace: Trace, query: np.ndarray) -> None:
        if trace.reasoning is None:
            return
        embeddings = []
        for cid in trace.candidates:
            category = self.db.fingerprints[self.db.index(cid)].category
            texts = [attribute_text(category, a) for a in trace.reasoning.matched.get(cid, [])]
            embeddings.append(self.attribute_vectors(texts))
        trace.verification = dict(zip(trace.candidates, verification_scores(query, embeddings).tolist(), strict=True))

    def pairwise(self, trace: Trace, query: str | Path) -> None:
        """Fill ``trace.pairwise`` with ``p_i`` for every candidate (spec §3, step 4)."""
        from vlmkit.models.chat import require, user

        require(self.chat, "score", "multi_image")
        yes, no = self.config.yes_no
        for cid in trace.candidates:
            concept, fp = self.db.concepts[self.db.index(cid)], self.db.fingerprints[self.db.index(cid)]
            prompt = self.config.pairwise_prompt.format(id=cid, description=fp.description, category=fp.category)
            l_yes, l_no = self.chat.score([user(Path(query), concept.references[0], prompt)], [yes, no])
            trace.pairwise[cid] = yes_probability(l_yes, l_no) if math.isfinite(l_yes - l_no) else float(l_yes > l_no)
