"""SEM: Sparse Embedding Modulation (arXiv 2603.19028, §3.2).

A text embedding is encoded by a sparse autoencoder; each latent gets a *content* score (how
high it is for the query relative to generic text) and, with bias prompts, a *bias* score (how
high and how specific it is for one value of a sensitive attribute); latents are then pulled
towards the median of generic text in proportion to ``1 - M`` and decoded. Image embeddings are
not touched. Three variants:

- ``sem_i``: content from the median latent ``h_bar`` of the query's paraphrases,
  ``M = s_c^2``, steering ``h_bar``;
- ``sem_b``: content from the query latent ``h_q``, bias from bias prompts,
  ``M = (1 + s_c - s_b)^2``, steering ``h_q``;
- ``sem_bi``: content from ``h_bar``, bias from bias prompts, ``M = (1 + s_c - s_b)^2``,
  steering ``h_q``.

``M`` is not clipped: values above 1 amplify content latents (and push them away from the
median). Medians are ``torch.median`` (the lower median for an even count, as the official code),
and the percentile comparison is strict, so a latent that is zero everywhere scores 0. The SAE
reconstruction residual is not added back. A bias class is contrasted with the other classes
of the *same* attribute (the natural reading of the paper; the official code contrasts with all
bias prompts it is given, which is the same when one attribute is given).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from vlmkit.debias.sae import MatryoshkaSAE

VARIANTS = ("sem_i", "sem_b", "sem_bi")
#: attribute -> bias class -> its prompts (or their latents)
BiasPrompts = dict[str, dict[str, Sequence[str]]]


def median(latents: Tensor) -> Tensor:
    """Element-wise (lower) median over rows ``(n, m)`` -> ``(m,)``."""
    return latents.median(dim=0).values


def percentile(reference: Tensor, h: Tensor) -> Tensor:
    """``P_X(h)_j = mean_{x in X} 1[x_j < h_j]``: ``reference`` ``(n, m)``, ``h`` ``(q, m)`` or ``(m,)``."""
    squeeze = h.dim() == 1
    h = h.view(-1, reference.shape[1])
    out = torch.stack([(reference < row).float().mean(0) for row in h])
    return out[0] if squeeze else out


def bias_score(reference: Tensor, bias_latents: dict[str, dict[str, Tensor]]) -> Tensor:
    """``s_b = max_c min(P_A(mu_c), P_{Z_notc}(mu_c))`` over every class of every attribute; ``(m,)``."""
    score = torch.zeros(reference.shape[1])
    for classes in bias_latents.values():
        if len(classes) < 2:
            raise ValueError("each bias attribute needs at least two classes (a class is contrasted with the others)")
        for name, latents in classes.items():
            mu = median(latents)
            others = torch.cat([z for other, z in classes.items() if other != name])
            score = torch.maximum(score, torch.minimum(percentile(reference, mu), percentile(others, mu)))
    return score


def modulation(variant: str, content: Tensor, bias: Tensor | None) -> Tensor:
    if variant == "sem_i":
        return content**2
    if bias is None:
        raise ValueError(f"{variant} needs bias prompts")
    return (1 + content - bias) ** 2


@dataclass
class SEM:
    """SEM around one SAE and the latents ``reference`` ``(N, m)`` of the neutral prompts."""

    sae: MatryoshkaSAE
    reference: Tensor

    def __post_init__(self):
        self.reference_median = median(self.reference)  # m~, computed once

    @torch.no_grad()
    def latents(self, raw_embeddings: Tensor) -> Tensor:
        return self.sae.encode(raw_embeddings.float())

    @torch.no_grad()
    def steer(self, variant: str, query: Tensor | None, paraphrases: list[Tensor] | None,
              bias: dict[str, dict[str, Tensor]] | Tensor | None) -> Tensor:
        """Modulated latents ``(q, m)`` from latents: ``query`` ``(q, m)``, one ``(n_i, m)`` block of
        paraphrase latents per query, and bias-prompt latents by attribute and class (or their
        :func:`bias_score` ``(m,)``, which does not depend on the query, computed once)."""
        if variant not in VARIANTS:
            raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
        uses_paraphrases, uses_bias = variant in ("sem_i", "sem_bi"), variant in ("sem_b", "sem_bi")
        if uses_paraphrases and not paraphrases:
            raise ValueError(f"{variant} needs paraphrases")
        if uses_bias and (query is None or bias is None or (isinstance(bias, dict) and not bias)):
            raise ValueError(f"{variant} needs the query and bias prompts")
        h_bar = torch.stack([median(p) for p in paraphrases]) if uses_paraphrases else None
        content = percentile(self.reference, h_bar if h_bar is not None else query)
        s_b = None
        if uses_bias:
            s_b = bias if isinstance(bias, Tensor) else bias_score(self.reference, bias)
        M = modulation(variant, content, s_b)
        h = h_bar if variant == "sem_i" else query
        return M * h + (1 - M) * self.reference_median

    @torch.no_grad()
    def debias(self, variant: str, query: Tensor | None, paraphrases: list[Tensor] | None = None,
               bias: dict[str, dict[str, Tensor]] | Tensor | None = None) -> Tensor:
        """Debiased unit text embeddings ``(q, D)`` from *raw* embeddings (same arguments as
        :meth:`steer`, in embedding space; a precomputed bias score passes through)."""
        enc = self.latents
        if isinstance(bias, dict):
            bias = {a: {c: enc(z) for c, z in classes.items()} for a, classes in bias.items()}
        steered = self.steer(variant, None if query is None else enc(query), None if paraphrases is None else [enc(p) for p in paraphrases],
                             bias)
        return F.normalize(self.sae.decode(steered), dim=-1)


def sem_from_texts(sae: MatryoshkaSAE, encode: Callable[[Sequence[str]], Tensor], neutral_prompts: Sequence[str]) -> SEM:
    """Build :class:`SEM` with ``encode`` returning *unnormalised* text embeddings ``(n, D)``."""
    return SEM(sae, sae.encode(encode(list(neutral_prompts)).float()).detach())
