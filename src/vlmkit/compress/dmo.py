"""Data-mixture optimisation by merging (arXiv 2602.04937): mixture grids and rank agreement.

A mixture over D domains is a vector of proportions α ∈ Δ^{D−1} (α_d = n_d / N with N the
expert's sample count, so a mixture of N samples has Σα = 1). The proxy of a mixture is the
task-arithmetic merge θ₀ + Σ_d α_d τ_d of the domain experts; the study asks whether proxies
rank mixtures as models trained on them do. The official code does not compute the
correlations; here they are Spearman's ρ and Kendall's τ_b (scipy, average ranks for ties),
with two-sided p-values, and the regret of choosing the proxy's best mixture.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np


def grid(n_domains: int, seed: int = 42) -> list[tuple[float, ...]]:
    """The paper's mixture grid for ``n_domains`` domains.

    - 2: w ∈ {1/8, ..., 7/8} (7 mixtures);
    - 3: all compositions in multiples of 1/8 with every part > 0 (21);
    - 4: 20 Dirichlet(1, 1, 1, 1) draws (``seed``, 42 in the paper) plus the uniform mixture (21).
    """
    if n_domains == 2:
        return [(i / 8, 1 - i / 8) for i in range(1, 8)]
    if n_domains == 3:
        return [(a / 8, b / 8, (8 - a - b) / 8) for a in range(1, 7) for b in range(1, 8 - a)]
    if n_domains == 4:
        draws = np.random.default_rng(seed).dirichlet(np.ones(4), size=20)
        return [tuple(float(x) for x in row) for row in draws] + [(0.25, 0.25, 0.25, 0.25)]
    raise ValueError("the paper's grids cover 2, 3 or 4 domains")


def mixtures(domains: Sequence[str], n_domains: int, seed: int = 42) -> list[dict[str, float]]:
    """Every grid mixture over every ``n_domains``-subset of ``domains`` (the paper does not say
    which subsets it used; all are enumerated), as ``{domain: proportion}``."""
    if n_domains > len(domains):
        raise ValueError(f"a {n_domains}-domain grid needs at least {n_domains} experts, got {len(domains)}")
    return [
        dict(zip(subset, weights, strict=True))
        for subset in itertools.combinations(domains, n_domains)
        for weights in grid(n_domains, seed)
    ]


def mixture_id(mixture: dict[str, float]) -> str:
    """A stable name: ``general-0.375+ocr-0.625``."""
    return "+".join(f"{domain}-{weight:.4g}" for domain, weight in mixture.items())


def apportion(weights: Sequence[float], total: int) -> list[int]:
    """Sample counts proportional to ``weights`` that sum to ``total`` exactly (largest
    remainders; rounding each share alone can lose or add a sample, so a mixture model would
    train on a different count than the experts)."""
    w = np.asarray(weights, float)
    if len(w) == 0 or (w < 0).any() or w.sum() <= 0:
        raise ValueError("mixture weights must be non-negative and not all zero")
    exact = w / w.sum() * total
    counts = np.floor(exact).astype(int)
    for i in np.argsort(-(exact - counts), kind="stable")[: total - int(counts.sum())]:
        counts[i] += 1
    return [int(c) for c in counts]


def rank_agreement(proxy: Sequence[float], truth: Sequence[float]) -> dict[str, float | None]:
    """Spearman ρ and Kendall τ_b with p-values; ``None`` where a side is constant or n < 3."""
    from scipy.stats import kendalltau, spearmanr

    proxy, truth = np.asarray(proxy, float), np.asarray(truth, float)
    if len(proxy) < 3 or np.ptp(proxy) == 0 or np.ptp(truth) == 0:
        return {"spearman": None, "spearman_p": None, "kendall": None, "kendall_p": None, "n": len(proxy)}
    rho, rho_p = spearmanr(proxy, truth)
    tau, tau_p = kendalltau(proxy, truth, variant="b")
    return {"spearman": float(rho), "spearman_p": float(rho_p), "kendall": float(tau), "kendall_p": float(tau_p), "n": len(proxy)}


def regret(proxy: Sequence[float], truth: Sequence[float]) -> float:
    """Best true score minus the true score of the mixture the proxy ranks first."""
    proxy, truth = np.asarray(proxy, float), np.asarray(truth, float)
    return float(truth.max() - truth[int(np.argmax(proxy))])
