"""SITH speed on a real architecture, with ratios measured in the same run.

    python benchmarks/sith_bench.py [--model random:clip-vit-l14] [--vocab default] [--cache-dir DIR]

1. One-time costs, reported apart: encoding the vocabulary with the text tower (cold, then read
   back from the embedding cache) and the image mean.
2. Full SITH: every layer, every head, all d_head singular vectors, K = 5 (SVD, mapping, COMP,
   fidelity), with the vocabulary embeddings cached. Its wall time is compared with the time of
   the matrix products no implementation can avoid, timed here on the same shapes: mapping every
   vector into the joint space and one (vectors x dictionary) similarity product per selection
   step.
3. COMP with lambda = 0 (non-negative OMP) against scikit-learn's ``OrthogonalMatchingPursuit``
   fitted vector by vector on the same targets: speed ratio and agreement of the selected atoms.
   scikit-learn's OMP is unconstrained (it picks the largest |correlation| and refits by least
   squares), so agreement is expected only where the non-negative constraint does not bind: on
   the head vectors themselves, and on planted targets ``sum_k c_k d_k`` with ``c_k`` in
   [0.5, 1.5], where both should find the planted atoms.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from vlmkit.interpret.comp import sparse_code
from vlmkit.interpret.concepts import build_dictionary
from vlmkit.interpret.heads import to_joint_space
from vlmkit.interpret.image_mean import resolve_image_mean
from vlmkit.interpret.sith import SithConfig, explain, layer_svd
from vlmkit.interpret.vocab import load_vocabulary
from vlmkit.models import load_model
from vlmkit.runs.cache import EmbeddingCache


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def unavoidable_products(weights, n_vectors: int, atoms: torch.Tensor, k: int, batch: int) -> float:
    """Seconds for the mapping product and ``k`` similarity products over ``n_vectors`` targets."""
    d = weights.proj.shape[0]
    gen = torch.Generator().manual_seed(0)
    start = time.perf_counter()
    for first in range(0, n_vectors, batch):
        rows = min(batch, n_vectors - first)
        mapped = torch.randn(rows, d, generator=gen) @ weights.proj
        for _ in range(k):
            mapped @ atoms.T
    return time.perf_counter() - start


def sklearn_agreement(targets: torch.Tensor, atoms: torch.Tensor, k: int) -> dict:
    from sklearn.linear_model import OrthogonalMatchingPursuit

    (ours_idx, _), ours_s = timed(lambda: sparse_code(targets, atoms, k=k, method="omp"))
    X = atoms.T.double().numpy()  # (D, M): columns are atoms

    def fit_all():
        chosen = []
        for p in targets.double().numpy():
            omp = OrthogonalMatchingPursuit(n_nonzero_coefs=k, fit_intercept=False).fit(X, p)
            chosen.append(set(omp.coef_.nonzero()[0].tolist()))
        return chosen

    theirs, theirs_s = timed(fit_all)
    overlap = [len(set(o) & t) / k for o, t in zip(ours_idx.tolist(), theirs, strict=True)]
    first = [o[0] in t for o, t in zip(ours_idx.tolist(), theirs, strict=True)]
    return {"vectors": len(targets), "vlmkit_s": round(ours_s, 3), "sklearn_s": round(theirs_s, 3),
            "speedup": round(theirs_s / ours_s, 1), "mean_atom_overlap": round(sum(overlap) / len(overlap), 3),
            "first_atom_agreement": round(sum(first) / len(first), 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="random:clip-vit-l14")
    parser.add_argument("--vocab", default="default")
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--sklearn-vectors", type=int, default=256)
    parser.add_argument("--cache-dir", type=Path, default=None, help="embedding cache (default: a fresh temporary folder)")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    report: dict = {"model": args.model, "vocab": args.vocab, "k": args.k, "threads": torch.get_num_threads()}
    with tempfile.TemporaryDirectory() as tmp:
        cache = EmbeddingCache(args.cache_dir or Path(tmp))
        model, report["load_model_s"] = timed(lambda: load_model(args.model))
        concepts = load_vocabulary(args.vocab)
        report["concepts"] = len(concepts)
        _, report["encode_vocabulary_cold_s"] = timed(lambda: build_dictionary(model, concepts, cache=cache))
        dictionary, report["encode_vocabulary_cached_s"] = timed(lambda: build_dictionary(model, concepts, cache=cache))
        (image_mean, _), report["image_mean_s"] = timed(lambda: resolve_image_mean(model, "auto", cache=cache))
    weights = model.vision_weights()
    cfg = SithConfig(k=args.k)
    layers = list(range(weights.n_layers))
    _, report["svd_s"] = timed(lambda: [layer_svd(weights, layer, cfg) for layer in layers])
    explanations, report["sith_s"] = timed(lambda: explain(weights, layers, dictionary, image_mean, cfg))
    n_vectors = sum(e.indices.shape[0] for e in explanations)
    report["vectors"] = n_vectors
    report["unavoidable_products_s"] = unavoidable_products(weights, n_vectors, dictionary.atoms, args.k, cfg.batch)
    report["sith_over_unavoidable"] = round(report["sith_s"] / report["unavoidable_products_s"], 2)
    last = explanations[-1]
    targets = to_joint_space(last.directions[: args.sklearn_vectors], weights, image_mean)
    report["omp_vs_sklearn"] = sklearn_agreement(targets, dictionary.atoms, args.k)
    gen = torch.Generator().manual_seed(0)
    support = torch.stack([torch.randperm(len(dictionary), generator=gen)[: args.k] for _ in range(args.sklearn_vectors)])
    coef = 0.5 + torch.rand(args.sklearn_vectors, args.k, generator=gen)
    planted = torch.nn.functional.normalize((coef.unsqueeze(-1) * dictionary.atoms[support]).sum(1), dim=-1)
    report["omp_vs_sklearn_planted"] = sklearn_agreement(planted, dictionary.atoms, args.k)
    found = sparse_code(planted, dictionary.atoms, k=args.k, method="omp")[0]
    report["omp_vs_sklearn_planted"]["vlmkit_planted_recovery"] = round(
        sum(len(set(f) & set(s)) for f, s in zip(found.tolist(), support.tolist(), strict=True)) / support.numel(), 3)
    report["mean_fidelity"] = round(float(torch.cat([e.fidelity for e in explanations]).mean()), 4)
    print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in report.items()}, indent=2))


if __name__ == "__main__":
    main()
