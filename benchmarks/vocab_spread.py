"""How close a text tower puts unrelated words: the mean raw pairwise cosine of their embeddings.

    python benchmarks/vocab_spread.py [--models random:clip-vit-b32,embedded] [--vocab default] [--words 300]

A text tower that embeds every word close to every other (random weights do) makes a sparse
code over a word dictionary hard to recover, whatever the method; docs/sith.md quotes these
figures next to the planted-recovery rates.
"""

from __future__ import annotations

import argparse

import torch

from vlmkit.interpret.vocab import load_vocabulary
from vlmkit.models import load_model


def mean_pairwise_cosine(vectors: torch.Tensor) -> float:
    """Mean cosine over distinct pairs of unit rows ``(n, d)``."""
    n = vectors.shape[0]
    total = vectors.sum(0)
    return float(((total @ total) - n) / (n * (n - 1)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="random:clip-vit-b32,embedded")
    parser.add_argument("--vocab", default="default")
    parser.add_argument("--words", type=int, default=300)
    args = parser.parse_args()
    words = load_vocabulary(args.vocab)[: args.words]
    print(f"| model | mean pairwise cosine of the first {len(words)} words of `{args.vocab}` |\n|---|---|")
    for name in args.models.split(","):
        with torch.no_grad():
            vectors = load_model(name).encode_texts(words).float()
        print(f"| {name} | {mean_pairwise_cosine(vectors):.2f} |", flush=True)


if __name__ == "__main__":
    main()
