"""Heads with planted concepts: SITH's ground truth (a known answer no paper had).

:func:`planted_model` gives ``random:clip-small`` a last layer whose heads write known,
non-negative combinations of dictionary atoms, so a method's explanations can be scored against
the truth (:func:`planted_recovery`). Used by ``tests/test_sith.py`` and
``benchmarks/sith_planted.py``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from vlmkit.interpret.concepts import ConceptDictionary
from vlmkit.interpret.sith import SithConfig, explain
from vlmkit.models.base import LayerNormParams
from vlmkit.models.random_models import build

PLANTED_PER_HEAD = 8
PLANTED_K = 3


def _orthonormal_columns_orthogonal_to_ones(rows: int, cols: int, gen: torch.Generator) -> torch.Tensor:
    raw = torch.randn(rows, cols, generator=gen)
    q, _ = torch.linalg.qr(raw - raw.mean(0, keepdim=True))
    return q


def planted_model(seed: int = 0):
    """``random:clip-small`` whose last layer's heads write known concept combinations.

    The final LayerNorm is made plain and the projection ``P`` an isometry onto the joint space
    (columns orthonormal and orthogonal to the ones vector), so a joint-space target ``t`` has
    the exact residual pre-image ``t @ P.T``. Each head of the last layer gets
    ``W_VO = sum_j sigma_j u_j w_j^T`` with ``w_j`` the pre-image of ``sum_k c_k d_k`` over
    ``PLANTED_K`` concepts of a 600-atom dictionary, disjoint between vectors.
    """
    gen = torch.Generator().manual_seed(seed)
    model = build("clip-small")
    weights = model.vision_weights()
    d, D = weights.d_model, model.embed_dim
    weights.proj = _orthonormal_columns_orthogonal_to_ones(d, D, gen)
    weights.ln_post = LayerNormParams(torch.ones(d), torch.zeros(d), weights.ln_post.eps)
    planted_atoms = PLANTED_PER_HEAD * PLANTED_K
    # each head's planted concepts are orthonormal, so its planted writes are exactly orthogonal and
    # are the head's singular vectors; the other 600 - 4 * 24 atoms are random distractors
    blocks = [torch.linalg.qr(torch.randn(D, planted_atoms, generator=gen))[0].T for _ in range(4)]
    atoms = torch.cat([*blocks, F.normalize(torch.randn(600 - 4 * planted_atoms, D, generator=gen), dim=-1)])
    order = torch.randperm(600, generator=gen)
    dictionary = ConceptDictionary([f"concept{i}" for i in order.tolist()], atoms[order], torch.zeros(D))
    position = torch.argsort(order)  # where atom i went
    layer = weights.layers[-1]
    layer.ln1 = LayerNormParams(torch.ones(d), layer.ln1.bias, layer.ln1.eps)
    planted = {}
    for h in range(layer.n_heads):
        sets = position[h * planted_atoms : (h + 1) * planted_atoms].view(PLANTED_PER_HEAD, PLANTED_K)
        coef = 0.5 + torch.rand(PLANTED_PER_HEAD, PLANTED_K, generator=gen)
        targets = (coef.unsqueeze(-1) * dictionary.atoms[sets]).sum(1)
        writes = F.normalize(targets @ weights.proj.T, dim=-1)  # (n, d), orthogonal to ones
        reads = _orthonormal_columns_orthogonal_to_ones(d, layer.d_head, gen)  # (d, d_head)
        peak = reads.abs().argmax(0)
        reads = reads * torch.sign(reads[peak, torch.arange(layer.d_head)])  # SITH's sign rule keeps w_j, not -w_j
        sigma = torch.zeros(layer.d_head)
        sigma[:PLANTED_PER_HEAD] = 2.0 ** -torch.arange(PLANTED_PER_HEAD, dtype=torch.float32)
        root = sigma.sqrt()
        rows = torch.zeros(layer.d_head, d)
        rows[:PLANTED_PER_HEAD] = writes
        layer.W_V[h] = reads * root
        layer.W_O[h] = root[:, None] * rows
        planted[h] = sets
    model.set_vision_weights(weights)
    return model, dictionary, planted



def planted_recovery(method: str, seed: int = 0) -> dict[str, float]:
    """Explain the planted layer with ``method`` (K = ``PLANTED_K``) through the model's weight view;
    precision = the share of each planted vector's concepts that the code names, fidelity = the
    mean fidelity of the planted vectors."""
    model, dictionary, planted = planted_model(seed)
    weights = model.vision_weights()
    [layer] = explain(weights, [weights.n_layers - 1], dictionary, None, SithConfig(k=PLANTED_K, method=method))
    r = layer.rank
    hits = [len(set(layer.indices[h * r + j].tolist()) & set(sets[j].tolist())) / PLANTED_K
            for h, sets in planted.items() for j in range(PLANTED_PER_HEAD)]
    rows = torch.cat([torch.arange(PLANTED_PER_HEAD) + h * r for h in planted])
    return {"precision": sum(hits) / len(hits), "fidelity": float(layer.fidelity[rows].mean())}
