"""One interface for every text-debiasing method: query texts in, unit text embeddings out.

``none`` (the model's own embeddings), ``orth_proj`` and ``orth_cali`` (:mod:`vlmkit.debias.orth`),
``sem_i``, ``sem_b`` and ``sem_bi`` (:mod:`vlmkit.debias.sem`). Image embeddings are never changed.

Orth-Proj projects out the span of every bias prompt of the chosen attributes. Orth-Cali also
needs prompt pairs that differ only in the bias attribute: for each query and each bias class
``c`` vlmkit writes the candidate ``"<query without its final period>, <c>."`` and pairs the
candidates of the same query and attribute (Chuang et al. wrote such pairs by hand per dataset).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import combinations

import torch
import torch.nn.functional as F
from torch import Tensor

from vlmkit.debias.orth import apply, orth_cali_matrix, orth_proj_matrix
from vlmkit.debias.sae import MatryoshkaSAE
from vlmkit.debias.sem import SEM, bias_score

METHODS = ("none", "orth_proj", "orth_cali", "sem_i", "sem_b", "sem_bi")
NEEDS_BIAS = {"orth_proj", "orth_cali", "sem_b", "sem_bi"}
NEEDS_PARAPHRASES = {"sem_i", "sem_bi"}
NEEDS_SAE = {"sem_i", "sem_b", "sem_bi"}


def candidates(queries: list[str], bias: dict[str, dict[str, list[str]]]) -> tuple[list[str], list[tuple[int, int]]]:
    """Orth-Cali's candidate prompts and the index pairs that differ only in a bias class."""
    texts: list[str] = []
    pairs: list[tuple[int, int]] = []
    for query in queries:
        stem = query.rstrip().rstrip(".")
        for classes in bias.values():
            first = len(texts)
            texts += [f"{stem}, {name}." for name in classes]
            pairs += list(combinations(range(first, len(texts)), 2))
    return texts, pairs


@dataclass
class TextDebiaser:
    """Debias queries for ``model`` (a ContrastiveModel); ``sae`` is needed by the SEM variants."""

    model: object
    bias: dict[str, dict[str, list[str]]] | None = None
    sae: MatryoshkaSAE | None = None
    neutral: list[str] | None = None
    _sem: SEM | None = field(default=None, init=False, repr=False)
    _bias_score: Tensor | None = field(default=None, init=False, repr=False)

    def raw(self, texts: list[str]) -> Tensor:
        return self.model.encode_texts(texts, normalize=False).float()

    def sem(self) -> SEM:
        if self._sem is None:
            self._sem = SEM(self.sae, self.sae.encode(self.raw(self.neutral)).detach())
        return self._sem

    def encode(self, method: str, queries: list[str], paraphrases: list[list[str]] | None = None) -> Tensor:
        """Unit embeddings ``(len(queries), D)`` debiased by ``method``."""
        if method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {method!r}")
        if method in NEEDS_BIAS and not self.bias:
            raise ValueError(f"{method} needs bias prompts")
        if method in NEEDS_PARAPHRASES and paraphrases is None:
            raise ValueError(f"{method} needs paraphrases of the queries")
        if method in NEEDS_SAE and (self.sae is None or self.neutral is None):
            raise ValueError(f"{method} needs a sparse autoencoder and neutral prompts")
        if method == "none":
            return F.normalize(self.raw(queries), dim=-1)
        if method in ("orth_proj", "orth_cali"):
            spurious = self.raw([p for classes in self.bias.values() for prompts in classes.values() for p in prompts])
            if method == "orth_proj":
                matrix = orth_proj_matrix(spurious)
            else:
                texts, pairs = candidates(queries, self.bias)
                matrix = orth_cali_matrix(spurious, self.raw(texts), pairs)
            return apply(matrix, self.raw(queries))
        para = [self.raw(list(p)) for p in paraphrases] if paraphrases is not None else None
        with torch.no_grad():
            return self.sem().debias(method, self.raw(queries), para, self.bias_score() if method in ("sem_b", "sem_bi") else None)

    def bias_score(self) -> Tensor:
        """SEM's ``s_b`` for this debiaser's bias prompts, computed once (it does not depend on the query)."""
        if self._bias_score is None:
            sem = self.sem()
            latents = {a: {c: sem.latents(self.raw(list(p))) for c, p in classes.items()} for a, classes in self.bias.items()}
            self._bias_score = bias_score(sem.reference, latents)
        return self._bias_score
