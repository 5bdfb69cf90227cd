"""Why embedded-chat trains with an adjacent-induction scaffold (docs/chat.md, "In-context learning").

A tiny Llama (embedded-chat's language model: 4 layers, width 128, 4 heads) learns associative
recall over 4 key -> nonce-label pairs, labels drawn afresh at random every step (so they can only
be copied from the context), in three layouts:

- ``adjacent``: ``k1 L1 k2 L2 k3 L3 k4 L4 | kq Lq ...``: the answer follows its key directly;
- ``gapped``: the same context, queried as ``is kq ? . is Lq``: three tokens between key and
  answer, as in a chat turn (``what is blue ? <|end|> <|assistant|>``);
- ``mixed``: half the rows adjacent, half gapped (accuracy reported on the gapped rows).

Usage: ``python benchmarks/induction_scaffold.py [--steps 1000] [--layouts adjacent,gapped,mixed]``
(about 0.15 s per step on one CPU thread). Prints the gapped-query accuracy every 100 steps.
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
import torch
import torch.nn.functional as F

KEYS, LABELS, SPECIAL = 40, 200, 4  # token ids: 0 pad, 1 "is", 2 ".", 3 "?"
VOCAB = SPECIAL + KEYS + LABELS


def make_batch(rng: np.random.Generator, layout: str, n: int = 64, ways: int = 4, queries: int = 4):
    """``(ids, labels, gapped_rows)``: right-padded ``(n, length)`` ids, loss labels (-100 off the
    answers) and a boolean ``(n,)`` marking rows whose queries are gapped."""
    rows, targets, gapped = [], [], []
    for row in range(n):
        gap = layout == "gapped" or (layout == "mixed" and row % 2 == 1)
        keys = rng.choice(KEYS, ways, replace=False) + SPECIAL
        names = rng.choice(LABELS, ways, replace=False) + SPECIAL + KEYS
        ids, labels = [], []
        for k, v in zip(keys, names, strict=True):
            ids += [k, v]
            labels += [-100, -100]
        for j in rng.integers(0, ways, queries):
            if gap:
                ids += [1, keys[j], 3, 2, 1, names[j]]
                labels += [-100] * 5 + [names[j]]
            else:
                ids += [keys[j], names[j]]
                labels += [-100, names[j]]
        rows.append(ids)
        targets.append(labels)
        gapped.append(gap)
    width = max(map(len, rows))
    ids = torch.tensor([r + [0] * (width - len(r)) for r in rows])
    labels = torch.tensor([t + [-100] * (width - len(t)) for t in targets])
    return ids, labels, torch.tensor(gapped)


def run(layout: str, steps: int, scale: float, lr: float, seed: int = 0) -> list[tuple[int, float]]:
    """Train one model; returns ``(step, accuracy on gapped queries, or all queries)`` every 100 steps."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=VOCAB, hidden_size=128, intermediate_size=256, num_hidden_layers=4, num_attention_heads=4,
                         num_key_value_heads=4, max_position_embeddings=256, tie_word_embeddings=True, pad_token_id=0)
    model = LlamaForCausalLM(config)
    table = model.model.embed_tokens.weight
    with torch.no_grad():
        table.normal_(0, 1 / math.sqrt(128))
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.98), weight_decay=0.0)
    first_label = SPECIAL + KEYS
    curve = []
    for step in range(steps):
        with torch.no_grad():  # fresh random labels: copying is the only way to name them
            table[first_label:] = torch.randn(LABELS, 128) * scale / math.sqrt(128)
        ids, labels, gapped = make_batch(np.random.default_rng([seed, step]), layout)
        for group in optimizer.param_groups:
            group["lr"] = lr * min(1.0, (step + 1) / 200)
        logits = model(ids).logits
        loss = F.cross_entropy(logits[:, :-1].flatten(0, 1), labels[:, 1:].flatten(), ignore_index=-100)
        optimizer.zero_grad()
        loss.backward()
        table.grad[first_label:] = 0
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        if (step + 1) % 100 == 0:
            target = labels[:, 1:]
            scored = (target != -100) & (gapped[:, None] if gapped.any() else True)
            accuracy = float((logits[:, :-1].argmax(-1)[scored] == target[scored]).float().mean())
            curve.append((step + 1, accuracy))
    return curve


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--layouts", default="adjacent,gapped,mixed")
    parser.add_argument("--scale", type=float, default=3.0, help="norm of the random label embeddings")
    parser.add_argument("--lr", type=float, default=2e-3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    for layout in args.layouts.split(","):
        t0 = time.time()
        curve = run(layout, args.steps, args.scale, args.lr)
        points = " ".join(f"{s}:{a:.2f}" for s, a in curve)
        print(f"{layout:9s} (label norm {args.scale}, {time.time() - t0:.0f} s)  step:accuracy  {points}", flush=True)


if __name__ == "__main__":
    main()
