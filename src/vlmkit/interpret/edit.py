"""SITH weight edits (arXiv 2603.24653, §3 steps 6-7): rescale chosen singular values of the
value-output matrices and write the heads back.

For a head with ``W_VO = U diag(S) Vt`` (folded and centred as it was explained), the edited map
``U diag(alpha * S) Vt`` is re-factored as ``W_V' = U diag(sqrt|S'|)`` and
``W_O' = diag(sign(S') sqrt|S'|) Vt`` (the sign in one factor allows ``alpha < 0``); the
LayerNorm gain is un-folded from ``W_V'``. Full rank is kept, so directions with ``alpha = 1``
are reproduced exactly.

The constant every head writes whatever it attends to, ``(ln1.bias @ W_V + b_V) @ W_O``, is part
of the head's bias path, not of its value-output map: the edit keeps it unchanged by moving it
into ``b_O`` and setting ``b_V' = -ln1.bias @ W_V'``. Dropping the centring components changes
only the mean of the residual stream, which every later LayerNorm removes.

Which vectors to edit is decided without an LLM judge: the *relevance* of a vector's explanation
to target concepts, ``R(v) = sum_k c_k max_t cos(d_k, t) / sum_k c_k`` in the centred text space
(the paper's classification rule, normalised by the code's mass so that ``R`` lies in [-1, 1]).
"""

from __future__ import annotations

import torch
from torch import Tensor

from vlmkit.interpret.concepts import ConceptDictionary
from vlmkit.interpret.sith import LayerExplanation, SithConfig, layer_svd
from vlmkit.models.base import VisionWeights


def relevance(explanation: LayerExplanation, dictionary: ConceptDictionary, targets: Tensor) -> Tensor:
    """``R(v)`` ``(H*r,)`` of each explained vector to the centred unit target embeddings ``(T, D)``."""
    best = (dictionary.atoms @ targets.T).max(1).values  # (M,) closeness of each concept to any target
    mass = explanation.scores.sum(1)
    score = (explanation.scores * best[explanation.indices]).sum(1)
    return torch.where(mass > 0, score / mass.clamp(min=1e-12), torch.zeros_like(score))


def rescale_layer(weights: VisionWeights, layer: int, alphas: Tensor, cfg: SithConfig, heads: list[int] | None = None) -> None:
    """Multiply the singular values ``(H, r)`` of ``layer``'s heads by ``alphas`` in place.

    ``heads`` limits the rewrite (default: the heads with some ``alpha != 1``); a head that is
    rewritten with all ``alpha = 1`` computes the same function up to float rounding.
    """
    attn = weights.layers[layer]
    if heads is None:
        heads = [h for h in range(attn.n_heads) if not torch.all(alphas[h] == 1)]
    if not heads:
        return
    gain = attn.ln1.weight.double()
    if cfg.fold_ln and (gain.abs() < 1e-12).any():
        raise ValueError(f"layer {layer}'s LayerNorm has zero gains; edit with fold_ln off")
    U, S, Vt = layer_svd(weights, layer, cfg)
    shift = attn.ln1.bias.double()
    for h in heads:
        edited = alphas[h].double() * S[h]
        root = edited.abs().sqrt()
        new_V = U[h] * root  # (d, r)
        if cfg.fold_ln:
            new_V = new_V / gain[:, None]
        new_O = (torch.sign(edited) * root)[:, None] * Vt[h]  # (r, d)
        constant = (shift @ attn.W_V[h].double() + attn.b_V[h].double()) @ attn.W_O[h].double()
        attn.b_O = attn.b_O + constant.to(attn.b_O.dtype)
        attn.W_V[h] = new_V.to(attn.W_V.dtype)
        attn.W_O[h] = new_O.to(attn.W_O.dtype)
        attn.b_V[h] = -(shift @ new_V).to(attn.b_V.dtype)


def edit_by_concepts(weights: VisionWeights, explanations: list[LayerExplanation], dictionary: ConceptDictionary,
                     targets: Tensor, threshold: float, alpha: float, cfg: SithConfig) -> list[dict]:
    """Scale by ``alpha`` every explained vector whose :func:`relevance` to ``targets`` is at least
    ``threshold``; edits ``weights`` in place and returns one record per edited vector."""
    edited = []
    for e in explanations:
        score = relevance(e, dictionary, targets)
        chosen = score >= threshold
        alphas = torch.where(chosen, torch.tensor(alpha), torch.tensor(1.0)).view(e.n_heads, e.rank)
        rescale_layer(weights, e.layer, alphas, cfg)
        for row in chosen.nonzero().flatten().tolist():
            h, j = divmod(row, e.rank)
            edited.append(
                {
                    "layer": e.layer,
                    "head": h,
                    "j": j,
                    "sigma": round(float(e.sigma[h, j]), 5),
                    "new_sigma": round(float(alpha * e.sigma[h, j]), 5),
                    "relevance": round(float(score[row]), 4),
                    "concepts": [
                        [dictionary.concepts[i], round(float(c), 4)]
                        for i, c in zip(e.indices[row].tolist(), e.scores[row].tolist(), strict=True)
                    ],
                }
            )
    return edited
