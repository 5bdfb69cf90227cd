"""The concept dictionary of SITH (arXiv 2603.24653, §3 step 4).

Each concept is encoded by the model's own text tower with no prompt template, L2-normalised,
the mean over all concepts (the *dictionary* mean, not the image mean) is subtracted, and each
row is normalised again. Text embeddings go through vlmkit's embedding cache, so a vocabulary
is encoded once per model.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from vlmkit.embed import embed_texts
from vlmkit.runs.cache import EmbeddingCache


@dataclass
class ConceptDictionary:
    """``atoms`` ``(M, D)`` unit rows for ``concepts`` (length M); ``mean`` ``(D,)`` is the
    dictionary mean that was removed, kept so other texts can be centred the same way."""

    concepts: list[str]
    atoms: Tensor
    mean: Tensor

    def __len__(self) -> int:
        return len(self.concepts)

    def center(self, unit_embeddings: Tensor) -> Tensor:
        """Centre and normalise other unit text embeddings ``(n, D)`` like the atoms."""
        return F.normalize(unit_embeddings.float() - self.mean, dim=-1)


def centered_dictionary(concepts: list[str], unit_embeddings: Tensor) -> ConceptDictionary:
    """Build the dictionary from already-normalised embeddings ``(M, D)``."""
    embeddings = F.normalize(unit_embeddings.float(), dim=-1)
    mean = embeddings.mean(0)
    return ConceptDictionary(list(concepts), F.normalize(embeddings - mean, dim=-1), mean)


def build_dictionary(model, concepts: list[str], cache: EmbeddingCache | None = None, batch_size: int = 256) -> ConceptDictionary:
    """Encode ``concepts`` with ``model``'s text tower and centre them."""
    encoded = embed_texts(model, concepts, batch_size=batch_size, cache=cache)
    return centered_dictionary(concepts, torch.from_numpy(encoded.vectors))
