"""Embedding throughput, cold and from the cache, as a ratio measured in the same run.

    python benchmarks/embed_throughput.py [--model embedded] [--n 512]

Renders N shapes-world images, embeds them twice through ``vlmkit.embed.embed_images`` (the
second time every chunk comes from the on-disk cache) and prints images per second for both.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from vlmkit.data.datasets import load_dataset
from vlmkit.data.world_sample import generate
from vlmkit.embed import embed_images
from vlmkit.models import load_model
from vlmkit.runs.cache import EmbeddingCache


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="embedded")
    parser.add_argument("--n", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        paths = load_dataset(generate(Path(tmp) / "world", args.n, seed=7)).paths
        model = load_model(args.model)
        cache = EmbeddingCache(Path(tmp) / "cache")
        timings = {}
        for label in ("cold", "cached"):
            start = time.perf_counter()
            embed_images(model, paths, batch_size=args.batch_size, cache=cache)
            timings[label] = time.perf_counter() - start
    print(f"model {args.model}, {args.n} images of 96x96, batch {args.batch_size}")
    for label, seconds in timings.items():
        print(f"{label:>7}: {args.n / seconds:8.1f} images/s ({seconds:.2f} s)")
    print(f"cache speed-up: {timings['cold'] / timings['cached']:.1f}x")


if __name__ == "__main__":
    main()
