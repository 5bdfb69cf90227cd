"""COMP against its baselines: fidelity and coherence at several sparsities (SITH, paper Fig. 3).

    python benchmarks/sith_methods.py [--model embedded] [--vocab world] [--layers all] [--k 5,10,20]

Prints a markdown table: for each method and K, the mean fidelity (cosine between each singular
vector and its code mapped back, §4), the mean coherence (coefficient-weighted mean pairwise cosine,
in the MiniLM sentence space, of the concepts whose NNLS coefficient is non-zero; codes with fewer
than two such concepts are skipped), the share of codes that have a coherence, and the mean number
of active concepts per code, over every explained vector.
"""

from __future__ import annotations

import argparse

import torch

from vlmkit.interpret.concepts import build_dictionary
from vlmkit.interpret.image_mean import resolve_image_mean
from vlmkit.interpret.sith import SithConfig, explain, parse_layers, sentence_coherence
from vlmkit.interpret.vocab import load_vocabulary
from vlmkit.models import load_model
from vlmkit.models.minilm import MiniLMEmbedder
from vlmkit.runs.cache import EmbeddingCache


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="embedded")
    parser.add_argument("--vocab", default="world")
    parser.add_argument("--layers", default="all")
    parser.add_argument("--k", default="5,10,20")
    parser.add_argument("--lam", type=float, default=0.3)
    parser.add_argument("--methods", default="comp,omp,mp,topk")
    args = parser.parse_args()
    model = load_model(args.model)
    cache = EmbeddingCache()
    concepts = load_vocabulary(args.vocab)
    dictionary = build_dictionary(model, concepts, cache=cache)
    image_mean, mean_info = resolve_image_mean(model, "auto", cache=cache)
    weights = model.vision_weights()
    layers = parse_layers(args.layers, weights.n_layers)
    embedder = MiniLMEmbedder()
    print(f"{args.model}, vocabulary {args.vocab} ({len(concepts)} concepts), layers {args.layers}, "
          f"image mean {mean_info['source']}, lambda {args.lam}\n")
    print("| method | K | fidelity | coherence | codes with coherence | active concepts |\n|---|---|---|---|---|---|")
    for method in args.methods.split(","):
        for k in (int(v) for v in args.k.split(",")):
            explanations = explain(weights, layers, dictionary, image_mean, SithConfig(k=k, lam=args.lam, method=method))
            fidelity = torch.cat([e.fidelity for e in explanations]).mean()
            coherence = torch.cat(sentence_coherence(explanations, concepts, embedder))
            defined = torch.isfinite(coherence)
            active = torch.cat([(e.scores > 0).sum(1).float() for e in explanations]).mean()
            print(f"| {method} | {k} | {fidelity:.3f} | {coherence[defined].mean():.3f} | {defined.float().mean():.2f} | {active:.2f} |",
                  flush=True)


if __name__ == "__main__":
    main()
