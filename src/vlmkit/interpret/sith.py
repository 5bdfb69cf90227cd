"""SITH: explain every attention head of a CLIP vision tower from its weights (arXiv 2603.24653).

For each analysed layer and head: the value-output matrix's SVD (:mod:`vlmkit.interpret.heads`),
each singular vector mapped into the joint image-text space, explained by a sparse non-negative
code over a concept dictionary (:mod:`vlmkit.interpret.comp`), and scored by fidelity (how well
the code maps back onto the vector, §4) and coherence (how related its concepts are in an
independent sentence space).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from vlmkit.embed import embed_texts
from vlmkit.interpret.comp import sparse_code
from vlmkit.interpret.concepts import ConceptDictionary
from vlmkit.interpret.heads import factored_svd, from_joint_space, head_factors, to_joint_space
from vlmkit.interpret.screen import ScreenIndex
from vlmkit.models.base import VisionWeights
from vlmkit.runs.cache import EmbeddingCache

SIDES = ("right", "left")


@dataclass(frozen=True)
class SithConfig:
    """SITH's knobs with the paper's defaults (§3)."""

    k: int = 5
    lam: float = 0.3
    method: str = "comp"
    side: str = "right"
    fold_ln: bool = True
    center: bool = True
    affine_ln_post: bool = True
    batch: int = 1024

    def artefact_key(self, layer: int, vocab: str, image_mean: str = "none") -> str:
        """A name that encodes every option that changes a layer's result.

        The official artefact name's fields first, in its order (layer, side, fold-LN flag,
        dictionary, method, sparsity), then what the official name leaves out: COMP's ``lam``,
        centring, the ``ln_post`` mapping and the image mean's source (``none``, ``synthetic``,
        ``world``, or ``data-<hash>`` for a dataset), e.g.
        ``layer22_right_foldln1_world_comp_k5_lam0.3_center1_lnaffine_meanworld``.
        """
        official = f"layer{layer}_{self.side}_foldln{int(self.fold_ln)}_{vocab}_{self.method}_k{self.k}"
        lam = f"_lam{self.lam:g}" if self.method == "comp" else ""
        if image_mean not in ("none", "synthetic", "world"):
            image_mean = "data-" + hashlib.sha256(image_mean.encode()).hexdigest()[:8]
        ln = "affine" if self.affine_ln_post else "centred"
        return f"{official}{lam}_center{int(self.center)}_ln{ln}_mean{image_mean}"


@dataclass
class LayerExplanation:
    """One layer's heads, ``r = d_head`` vectors each, flattened head-major (row ``h * r + j``).

    sigma ``(H, r)``; directions ``(H*r, d_model)`` the explained residual vectors; indices and
    scores ``(H*r, K)`` the concepts in selection order and their coefficients; fidelity ``(H*r,)``.
    """

    layer: int
    sigma: Tensor
    directions: Tensor
    indices: Tensor
    scores: Tensor
    fidelity: Tensor

    @property
    def n_heads(self) -> int:
        return self.sigma.shape[0]

    @property
    def rank(self) -> int:
        return self.sigma.shape[1]


def parse_layers(spec: str, n_layers: int) -> list[int]:
    """``all``, ``last<N>``, or a comma list of indices and ranges (``20-23``; negatives count from the end)."""
    spec = spec.strip().lower()
    if spec == "all":
        return list(range(n_layers))
    if match := re.fullmatch(r"last(\d+)", spec):
        count = int(match.group(1))
        if not 1 <= count <= n_layers:
            raise ValueError(f"last{count}: the model has {n_layers} layers")
        return list(range(n_layers - count, n_layers))
    layers: list[int] = []
    for part in spec.split(","):
        bounds = re.fullmatch(r"(-?\d+)(?:-(\d+))?", part.strip())
        if not bounds:
            raise ValueError(f"cannot read layer {part!r}; write all, last4, or a list like 0,3,20-23")
        start = int(bounds.group(1))
        stop = int(bounds.group(2)) if bounds.group(2) else start
        if stop < start:
            hint = f", e.g. {stop}-{start}" if stop >= 0 else " (negative indices count from the end: write them alone, e.g. -1)"
            raise ValueError(f"the range {part.strip()} is empty; write it from low to high{hint}")
        for layer in range(start, stop + 1):
            index = layer + n_layers if layer < 0 else layer
            if not 0 <= index < n_layers:
                raise ValueError(f"layer {layer} does not exist; the model has layers 0-{n_layers - 1}")
            if index not in layers:
                layers.append(index)
    return layers


def layer_svd(weights: VisionWeights, layer: int, cfg: SithConfig) -> tuple[Tensor, Tensor, Tensor]:
    """``U (H, d, r)``, ``S (H, r)``, ``Vt (H, r, d)`` of one layer's value-output matrices."""
    return factored_svd(*head_factors(weights.layers[layer], cfg.fold_ln, cfg.center))


def fidelity(
    directions: Tensor,
    indices: Tensor,
    scores: Tensor,
    atoms: Tensor,
    weights: VisionWeights,
    image_mean: Tensor | None,
    pinv: Tensor | None = None,
) -> Tensor:
    """``cos(z, v)`` where ``z`` maps the code ``sum_k c_k d_k`` back to the residual space (§4). ``(N,)``."""
    code = (scores.unsqueeze(-1) * atoms[indices]).sum(1)
    back = from_joint_space(code, weights, image_mean, pinv)
    return (back * F.normalize(directions.float(), dim=-1)).sum(-1)


def explain_layer(
    weights: VisionWeights,
    layer: int,
    dictionary: ConceptDictionary,
    image_mean: Tensor | None,
    cfg: SithConfig,
    index: ScreenIndex | None = None,
    pinv: Tensor | None = None,
) -> LayerExplanation:
    """SVD, mapping, sparse coding and fidelity for every head of ``layer``; ``index``: the
    dictionary's screening index, shared by every batch (and, from :func:`explain`, every layer);
    ``pinv``: ``pinv(proj)``, likewise computed once by :func:`explain`."""
    index = index if index is not None or cfg.method == "topk" else ScreenIndex(dictionary.atoms)
    U, S, Vt = layer_svd(weights, layer, cfg)
    vectors = Vt if cfg.side == "right" else U.transpose(1, 2)  # (H, r, d)
    directions = vectors.reshape(-1, vectors.shape[-1]).float()
    targets = to_joint_space(directions, weights, image_mean, affine=cfg.affine_ln_post)
    indices, scores = [], []
    for start in range(0, targets.shape[0], cfg.batch):
        idx, coef = sparse_code(targets[start : start + cfg.batch], dictionary.atoms, k=cfg.k, lam=cfg.lam, method=cfg.method, index=index)
        indices.append(idx)
        scores.append(coef)
    indices, scores = torch.cat(indices), torch.cat(scores)
    kept = fidelity(directions, indices, scores, dictionary.atoms, weights, image_mean, pinv)
    return LayerExplanation(layer, S.float(), directions, indices, scores, kept)


def explain(
    weights: VisionWeights, layers: Iterable[int], dictionary: ConceptDictionary, image_mean: Tensor | None, cfg: SithConfig
) -> list[LayerExplanation]:
    """:func:`explain_layer` for each of ``layers`` (any iterable, e.g. wrapped in a progress bar)."""
    if cfg.side not in SIDES:
        raise ValueError(f"side must be one of {SIDES}, got {cfg.side!r}")
    index = ScreenIndex(dictionary.atoms) if cfg.method != "topk" else None
    pinv = torch.linalg.pinv(weights.proj.float()) if weights.proj is not None else None
    return [explain_layer(weights, layer, dictionary, image_mean, cfg, index, pinv) for layer in layers]


def coherence(indices: Tensor, concept_vectors: Tensor, scores: Tensor | None = None) -> Tensor:
    """How related each code's concepts are in an independent sentence space. ``(N,)``.

    indices ``(N, K)`` into ``concept_vectors`` ``(M, e)`` (unit rows). Without ``scores``: the
    mean pairwise cosine of all ``K`` concepts (``K = 1`` gives 1). With ``scores`` ``(N, K)``
    (the code's non-negative coefficients): the coefficient-weighted mean pairwise cosine over the
    concepts whose coefficient is non-zero, ``sum_{i != j} c_i c_j cos_ij / sum_{i != j} c_i c_j``,
    so a concept that NNLS dropped (coefficient exactly 0) does not count; a code with fewer than
    two active concepts has no pairs and gets NaN (summaries skip it).
    """
    vectors = concept_vectors[indices]  # (N, K, e)
    if scores is None:
        k = indices.shape[1]
        if k == 1:
            return torch.ones(indices.shape[0])
        total = vectors.sum(1)
        return ((total * total).sum(-1) - k) / (k * (k - 1))
    w = scores.to(vectors.dtype).clamp_min(0)
    weighted = (w.unsqueeze(-1) * vectors).sum(1)  # sum_k c_k v_k
    squares = (w * w).sum(1)
    pairs = w.sum(1) ** 2 - squares  # sum_{i != j} c_i c_j
    value = ((weighted * weighted).sum(-1) - squares) / pairs
    return torch.where((w > 0).sum(1) >= 2, value, torch.full_like(value, float("nan")))


def sentence_coherence(
    explanations: list[LayerExplanation], concepts: list[str], embedder, cache: EmbeddingCache | None = None
) -> list[Tensor]:
    """Coefficient-weighted :func:`coherence` of every layer's codes over their active concepts.

    With a ``cache``, every concept's sentence vector goes through the embedding cache (the whole
    vocabulary is encoded once per embedder, then read back); without one, only the concepts
    that were selected are encoded.
    """
    if cache is not None:
        vectors = F.normalize(torch.from_numpy(embed_texts(embedder, concepts, cache=cache).vectors).float(), dim=-1)
        return [coherence(e.indices, vectors, e.scores) for e in explanations]
    used = torch.unique(torch.cat([e.indices.flatten() for e in explanations]))
    vectors = torch.zeros(len(concepts), embedder.dim)
    vectors[used] = F.normalize(embedder.encode([concepts[i] for i in used.tolist()]).float(), dim=-1)
    return [coherence(e.indices, vectors, e.scores) for e in explanations]
