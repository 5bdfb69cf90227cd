"""ComCa: compositional caching for open-vocabulary attribute detection (arXiv 2503.19145, §3).

Cache (offline): for each attribute ``a``, ``k`` objects are sampled from the prior
(:mod:`vlmkit.attributes.prior`); each query ``"a photo of <object> that is <syn1> or <syn2>"``
(synonyms joined by " or ": the paper leaves the joining open) retrieves, from an image index,
its highest-ranked image not yet in the cache (over-fetching ``overfetch`` neighbours).
Keys are the *inference* model's unit embeddings of those images; values are soft labels
``V = alpha K T_A^T + (1 - alpha) Y`` (``T_A``: each attribute's unit text embedding averaged
over synonyms x value templates ``"a <syn> object"``; ``Y``: one-hot source attribute), each row
standardised to mean 0.2064 and std 0.0438 (the official constants; VAW then takes a row
softmax at temperature 7, :meth:`ComCaConfig.vaw`).

Inference (per unit image embedding ``x``): zero-shot logits ``z_a = max_s <x, t_{a,s}>`` with
``"a photo of something that is <s>"``; cache logits ``c = exp(-beta (1 - x K^T)) V`` over the
*whole* cache; ``f = softmax_A(g / |max_A g|)`` with ``g = z + lambda c`` (the paper divides by
``max_A g``; the absolute value keeps a row's ranking when its best score is negative). Defaults ``k = 16``,
``alpha = 0.6``, ``beta = 1``, ``lambda = 1.17``. SigLIP models take a separate sigmoid branch (:func:`sigmoid_scores`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict

from vlmkit.attributes.prior import Term, parse_terms, sample_all
from vlmkit.embed import embed_images
from vlmkit.errors import UserError
from vlmkit.runs.files import atomic_save_npz, atomic_write_text
from vlmkit.runs.readers import read_json, read_npz

ZERO_SHOT_TEMPLATE = "a photo of something that is {}"
VALUE_TEMPLATES = ("a {} object",)
ROW_MEAN, ROW_STD = 0.2064, 0.0438
PROTOCOLS = ("ovad", "vaw")  # soft-label scalings of the official code, per benchmark


@dataclass
class ComCaConfig:
    k: int = 16
    nucleus: float = 0.8
    seed: int = 0
    overfetch: int = 117
    alpha: float = 0.6
    beta: float = 1.0
    lam: float = 1.17
    row_mean: float = ROW_MEAN
    row_std: float = ROW_STD
    scalings: tuple[str, ...] = ("standardise",)  # VAW: ("standardise", "softmax")
    softmax_temp: float = 7.0

    @classmethod
    def for_protocol(cls, protocol: str, **kwargs) -> ComCaConfig:
        """The official setting of a benchmark protocol: ``ovad`` (the defaults) or ``vaw``."""
        if protocol not in PROTOCOLS:
            raise ValueError(f"protocol must be one of {', '.join(PROTOCOLS)}, got {protocol!r}")
        return cls.vaw(**kwargs) if protocol == "vaw" else cls(**kwargs)

    @classmethod
    def vaw(cls, **kwargs) -> ComCaConfig:
        """The official VAW setting: over-fetch 256, and a row softmax (temperature 7, exact zeros
        masked) after the standardisation, in the official code's order."""
        return cls(**{"overfetch": 256, **kwargs, "scalings": ("standardise", "softmax")})


@dataclass
class Cache:
    """keys ``(N, d)`` unit, values ``(N, A)``, the source attribute of each key, and provenance."""

    keys: np.ndarray
    values: np.ndarray
    source: np.ndarray
    paths: list[str] = field(default_factory=list)
    queries: list[str] = field(default_factory=list)
    log: list[str] = field(default_factory=list)


def retrieval_query(obj: Term, attribute: Term) -> str:
    return f"a photo of {obj.synonyms[0]} that is {' or '.join(attribute.synonyms)}"


def zero_shot_text(model, attributes: list[Term]) -> list[torch.Tensor]:
    """Per attribute, the unit embeddings ``(S_a, d)`` of its synonyms in the zero-shot template."""
    return [model.encode_texts([ZERO_SHOT_TEMPLATE.format(s) for s in a.synonyms]).float() for a in attributes]


def value_text(model, attributes: list[Term], templates: tuple[str, ...] = VALUE_TEMPLATES) -> torch.Tensor:
    """``T_A`` ``(A, d)``: unit text embeddings averaged over synonyms x templates (not
    renormalised, as in the official code)."""
    return torch.stack([model.encode_texts([t.format(s) for s in a.synonyms for t in templates]).float().mean(0) for a in attributes])


def soft_labels(keys: np.ndarray, source: np.ndarray, t_a: np.ndarray, cfg: ComCaConfig) -> np.ndarray:
    """``V`` ``(N, A)``: ``alpha K T_A^T + (1 - alpha) Y``, then ``cfg.scalings`` in order:
    ``standardise`` (each row to the official mean and std) and ``softmax`` (exact zeros set to
    -inf, times ``softmax_temp``, row softmax)."""
    onehot = np.eye(t_a.shape[0])[source]
    values = cfg.alpha * keys @ t_a.T + (1 - cfg.alpha) * onehot
    for scaling in cfg.scalings:
        if scaling == "standardise":
            mean, std = values.mean(1, keepdims=True), values.std(1, keepdims=True)
            values = (values - mean) / np.maximum(std, 1e-12) * cfg.row_std + cfg.row_mean
        elif scaling == "softmax":
            logits = np.where(values == 0.0, -np.inf, values) * cfg.softmax_temp
            logits = logits - logits.max(1, keepdims=True)
            values = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
        else:
            raise ValueError(f"unknown value scaling {scaling!r}")
    return values


def zero_shot_logits(images: np.ndarray, text: list[torch.Tensor]) -> np.ndarray:
    """``z`` ``(n, A)``: the best synonym's cosine for each attribute."""
    x = torch.from_numpy(np.asarray(images, np.float32))
    return torch.stack([(x @ t.T).max(1).values for t in text], dim=1).numpy()


def normalise_scores(g: np.ndarray) -> np.ndarray:
    """``softmax_A(g / |max_A g|)`` per row: the paper's eta_A, ``softmax(g / max g)``, whenever the
    row's best score is positive (always, in practice). Dividing by a negative maximum would
    reverse the row's ranking, so the rule divides by its absolute value (and by 1 when the
    maximum is 0): the scores keep the order of ``g`` in every row."""
    top = np.abs(np.max(g, axis=1, keepdims=True))
    scaled = g / np.where(top > 0, top, 1.0)
    scaled = scaled - scaled.max(1, keepdims=True)
    e = np.exp(scaled)
    return e / e.sum(1, keepdims=True)


def sigmoid_scores(images: np.ndarray, text: list[torch.Tensor], cache: Cache | None, cfg: ComCaConfig, logit_scale: float,
                   logit_bias: float) -> np.ndarray:
    """The SigLIP branch of the official code, as vlmkit reads it (the paper does not give it):
    each attribute's synonym embeddings are averaged and renormalised, ``b = x t^T``, the cache
    term uses a sigmoid kernel ``c = sigmoid(x K^T) V``, and ``softmax_A((b + lambda c) s + bias)``
    with SigLIP's logit scale ``s`` and bias. Without a cache: ``sigmoid(b s + bias)``, SigLIP's
    own zero-shot probabilities."""
    t = F.normalize(torch.stack([e.mean(0) for e in text]), dim=-1).numpy().astype(np.float64)
    x = np.asarray(images, np.float64)
    base = x @ t.T
    if cache is None:
        return 1 / (1 + np.exp(-(base * logit_scale + logit_bias)))
    c = (1 / (1 + np.exp(-(x @ cache.keys.T)))) @ cache.values
    logits = (base + cfg.lam * c) * logit_scale + logit_bias
    logits = logits - logits.max(1, keepdims=True)
    return np.exp(logits) / np.exp(logits).sum(1, keepdims=True)


def cache_logits(images: np.ndarray, cache: Cache, cfg: ComCaConfig) -> np.ndarray:
    """The cache term ``c = exp(-beta (1 - x K^T)) V`` ``(n, A)`` over the whole cache (Tip-Adapter's kernel)."""
    return np.exp(-cfg.beta * (1 - np.asarray(images, np.float64) @ cache.keys.T)) @ cache.values


def comca_scores(images: np.ndarray, z: np.ndarray, cache: Cache | None, cfg: ComCaConfig) -> np.ndarray:
    """``f`` ``(n, A)``; with ``cache=None`` the zero-shot scores ``eta_A(z)``."""
    return normalise_scores(z if cache is None else z + cfg.lam * cache_logits(images, cache, cfg))


def build_cache(index, retrieval_model, inference_model, attributes: list[Term], objects: list[Term] | None, pi: np.ndarray | None,
                cfg: ComCaConfig, embedding_cache=None, sampled: np.ndarray | None = None) -> Cache:
    """Retrieve ``cfg.k`` unique images per attribute from ``index`` and label them (module docstring).

    With ``objects``/``pi`` set to ``None`` this is the plain-retrieval baseline: the queries are
    the zero-shot prompts ``"a photo of something that is <syn>"`` without objects, and each
    query keeps its ``k`` best unseen images. ``sampled`` ``(A, k)``: object indices to query
    instead of the official draws from ``pi`` (for ablations of the sampler).
    """
    if sampled is None and pi is not None:
        sampled = sample_all(pi, cfg.k, cfg.nucleus, cfg.seed)
    taken: set[int] = set()
    positions, source, queries, log = [], [], [], []
    for a, attribute in enumerate(attributes):
        if sampled is not None:
            texts = [retrieval_query(objects[o], attribute) for o in sampled[a]]
            per_query = 1
        else:
            texts = [ZERO_SHOT_TEMPLATE.format(" or ".join(attribute.synonyms))]
            per_query = cfg.k
        hits = index.search(retrieval_model.encode_texts(texts).numpy(), k=max(cfg.overfetch, per_query))
        for text, row in zip(texts, hits, strict=True):
            fresh = [h for h in row if h.position not in taken][:per_query]
            if len(fresh) < per_query:
                log.append(f"over-fetch exhausted for {text!r}: {len(fresh)} of {per_query} unseen images")
            for hit in fresh:
                taken.add(hit.position)
                positions.append(hit.position)
                source.append(a)
                queries.append(text)
    paths = [index.items[p].path for p in positions]
    keys = embed_images(inference_model, paths, cache=embedding_cache).vectors.astype(np.float64)
    t_a = value_text(inference_model, attributes).numpy().astype(np.float64)
    source_arr = np.asarray(source, dtype=np.int64)
    return Cache(keys, soft_labels(keys, source_arr, t_a, cfg), source_arr, paths, queries, log)


def save_cache(cache: Cache, directory, attributes: list[Term], meta: dict) -> None:
    """``cache.npz`` (keys, values, source) and ``cache.json`` (attributes, provenance, ``meta``)."""
    directory = Path(directory)
    atomic_save_npz(directory / "cache.npz", keys=cache.keys, values=cache.values, source=cache.source)
    record = {"attributes": [f"{t.name}:{'/'.join(t.synonyms)}" for t in attributes], "paths": cache.paths, "queries": cache.queries,
              "log": cache.log, **meta}
    atomic_write_text(directory / "cache.json", json.dumps(record, indent=1) + "\n")


class CacheRecord(BaseModel):
    """``cache.json``: the attributes (``name:syn1/syn2``), provenance and the build's options."""

    model_config = ConfigDict(extra="allow", protected_namespaces=())

    attributes: list[str]
    paths: list[str]
    queries: list[str]
    log: list[str]
    model: str
    fingerprint: str


def load_cache(directory) -> tuple[Cache, list[Term], dict]:
    """Read a cache folder written by :func:`save_cache`; damaged files are one :class:`UserError` line."""
    directory = Path(directory).expanduser()
    fix = "rebuild it with vlmkit comca build-cache"
    if not directory.is_dir():
        raise UserError(f"no ComCa cache at {directory}; build one with vlmkit comca build-cache")
    record = read_json(directory / "cache.json", "ComCa cache record", fix, CacheRecord).model_dump(exclude_unset=True)
    arrays = read_npz(directory / "cache.npz", "ComCa cache arrays", fix, keys=("keys", "values", "source"))
    cache = Cache(arrays["keys"], arrays["values"], arrays["source"], record["paths"], record["queries"], record["log"])
    attributes = parse_terms(record["attributes"])
    n = len(cache.keys)
    if cache.keys.ndim != 2 or cache.values.shape != (n, len(attributes)) or cache.source.shape != (n,) or len(cache.paths) != n:
        raise UserError(f"{directory} is inconsistent: {n} keys, values {cache.values.shape} for {len(attributes)} attributes, "
                        f"{len(cache.paths)} paths; {fix}")
    return cache, attributes, record
