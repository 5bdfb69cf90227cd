"""SEM speed: SAE training throughput and debiasing latency per query.

    python benchmarks/sem_bench.py [--model random:clip-vit-b16] [--latents 16384] [--k 256,512]

1. SAE training throughput (embeddings per second) on random unnormalised embeddings of the
   model's width, at the paper's size (16,384 latents, TopK 256/512), batch 1024.
2. Debiasing latency per query for each method, with the prompt embeddings (neutral prompts,
   bias prompts) encoded once beforehand, as a service would: the text-tower encoding of the
   query itself is timed separately.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from vlmkit.debias.methods import METHODS, TextDebiaser
from vlmkit.debias.prompt_sets import bias_prompts, neutral_prompts
from vlmkit.debias.sae import MatryoshkaSAE, SAEConfig
from vlmkit.debias.sae_train import SAETrainConfig, batches
from vlmkit.models import load_model


def train_throughput(d_in: int, latents: int, levels: tuple[int, ...], steps: int, batch: int) -> float:
    sae = MatryoshkaSAE(SAEConfig(d_in, latents, levels))
    data = np.random.default_rng(0).standard_normal((batch * 4, d_in)).astype(np.float32)
    stream = batches(data, SAETrainConfig(batch_size=batch, block_rows=batch * 4))
    optimizer = torch.optim.Adam(sae.parameters(), lr=1e-3)
    sae.loss(next(stream)).backward()  # warm-up
    start = time.perf_counter()
    for _ in range(steps):
        loss = sae.loss(next(stream))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return steps * batch / (time.perf_counter() - start)


class CachedEncoder:
    """Wraps a model so that texts already seen are not re-encoded (prompt sets are fixed)."""

    def __init__(self, model):
        self.model, self.memo = model, {}
        self.embed_dim = model.embed_dim

    def encode_texts(self, texts, normalize=True):
        missing = [t for t in texts if t not in self.memo]
        if missing:
            for t, v in zip(missing, self.model.encode_texts(missing, normalize=False), strict=True):
                self.memo[t] = v
        out = torch.stack([self.memo[t] for t in texts])
        return torch.nn.functional.normalize(out, dim=-1) if normalize else out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="random:clip-vit-b16")
    parser.add_argument("--latents", type=int, default=16384)
    parser.add_argument("--k", default="256,512")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--queries", type=int, default=25)
    args = parser.parse_args()
    model = load_model(args.model)
    levels = tuple(int(v) for v in args.k.split(","))
    report = {"model": args.model, "threads": torch.get_num_threads(), "latents": args.latents, "k_levels": list(levels)}
    report["sae_train_embeddings_per_s"] = round(train_throughput(model.embed_dim, args.latents, levels, args.steps, 1024))
    queries = [f"a photo of a {w}." for w in ("doctor", "nurse", "criminal", "teacher", "pilot")] * (args.queries // 5)
    encoder = CachedEncoder(model)
    start = time.perf_counter()
    encoder.encode_texts(queries)
    report["text_tower_ms_per_query"] = round(1000 * (time.perf_counter() - start) / len(queries), 2)
    sae = MatryoshkaSAE(SAEConfig(model.embed_dim, args.latents, levels))
    debiaser = TextDebiaser(encoder, bias_prompts(["gender"]), sae, neutral_prompts())
    paraphrases = [[q, q.replace("a photo of", "an image of"), q.replace("a photo of", "a picture of")] for q in queries]
    for method in METHODS:
        debiaser.encode(method, queries[:1], paraphrases[:1])  # encodes the fixed prompt sets once
        start = time.perf_counter()
        for q, p in zip(queries, paraphrases, strict=True):
            debiaser.encode(method, [q], [p])
        report[f"{method}_ms_per_query"] = round(1000 * (time.perf_counter() - start) / len(queries), 2)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
