"""Why SITH's screening certifies so slowly on a random ViT-L/14: the dictionary's geometry and
the candidates each COMP step needs.

    python benchmarks/sith_screen_stats.py [--model random:clip-vit-l14] [--vocab default] [--layer 23]

Prints: the energy share of the dictionary's top principal directions (the low-rank intervals
of :mod:`vlmkit.interpret.screen` use 32); the cosine of a concept's 16th / 256th / 1,024th most
similar concept (median over 1,000 concepts); and, for each COMP step after the first on one
layer's head vectors, ``||u||`` (the Cauchy-Schwarz bound on any atom off a candidate list), the
best score, and how many atoms a first-pass candidate list must hold to certify the step
(``P(j) >= best - ||u||``): mean, median, 90th percentile and maximum over the vectors.
"""

from __future__ import annotations

import argparse

import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="random:clip-vit-l14")
    parser.add_argument("--vocab", default="default")
    parser.add_argument("--layer", type=int, default=23)
    parser.add_argument("--image-mean", default="auto")
    args = parser.parse_args()
    from vlmkit.interpret.comp import nnls, sparse_code
    from vlmkit.interpret.concepts import build_dictionary
    from vlmkit.interpret.heads import to_joint_space
    from vlmkit.interpret.image_mean import resolve_image_mean
    from vlmkit.interpret.sith import SithConfig, layer_svd
    from vlmkit.interpret.vocab import load_vocabulary
    from vlmkit.models import load_model
    from vlmkit.runs.cache import EmbeddingCache

    cache = EmbeddingCache()
    model = load_model(args.model)
    atoms = build_dictionary(model, load_vocabulary(args.vocab), cache=cache).atoms
    mean, _ = resolve_image_mean(model, args.image_mean, cache=cache)
    weights = model.vision_weights()
    cfg = SithConfig()
    energy = torch.linalg.svdvals(atoms.double()) ** 2
    share = energy.cumsum(0) / energy.sum()
    print("energy share of the top r principal directions:", {r: round(float(share[r - 1]), 3) for r in (8, 16, 32, 64, 128)})
    sample = torch.randperm(len(atoms), generator=torch.Generator().manual_seed(0))[:1000]
    gram = atoms[sample] @ atoms.T
    gram[torch.arange(len(sample)), sample] = float("-inf")
    ranked = gram.topk(1024, dim=1).values
    print("median cosine of the 16th / 256th / 1,024th most similar concept:",
          [round(float(ranked[:, r - 1].median()), 3) for r in (16, 256, 1024)])
    Vt = layer_svd(weights, args.layer, cfg)[2]
    targets = to_joint_space(Vt.reshape(-1, Vt.shape[-1]).float(), weights, mean)
    indices, _ = sparse_code(targets, atoms, k=cfg.k, lam=cfg.lam)
    passed = targets @ atoms.T
    for step in range(1, cfg.k):
        support = indices[:, :step]
        u = ((nnls(atoms[support], targets) - cfg.lam / step).unsqueeze(-1) * atoms[support]).sum(1)
        scores = (passed - u @ atoms.T).scatter(1, support, float("-inf"))
        best, size = scores.max(1).values, u.norm(dim=1)
        need = (passed >= (best - size).unsqueeze(1)).sum(1).float()
        print(f"layer {args.layer} step {step + 1}: ||u|| mean {size.mean():.3f}, best score mean {best.mean():.3f}; candidates needed "
              f"mean {need.mean():.0f} median {need.median():.0f} p90 {need.quantile(0.9):.0f} max {need.max():.0f}")


if __name__ == "__main__":
    main()
