"""Does a text-only scaffold phase teach embedded-chat's language model to compare? (docs/chat.md)

Continues a finished ``vlmkit world train-chat --out RUN`` checkpoint with scaffold batches only
(64 text conversations per step: echo, text ICL, text yes/no, text lettered choice; no images, so
about 0.25 s per step on one thread), a fresh AdamW at a constant learning rate after 100 warm-up
steps, and prints teacher-forced exact-answer accuracy on 96 held-out conversations per text task
(world seed 1, held-out nonce labels) every 200 steps. Nothing is written into RUN.

Usage: ``python benchmarks/embedded_chat_scaffold_phase.py --run RUN [--steps 2000] [--lr 2e-3]``
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file

from vlmkit.data import world_chat as wc
from vlmkit.models import embedded_chat_train as T

TASKS = ("text_icl", "text_yesno", "text_mcq")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, required=True, help="a vlmkit world train-chat --out directory")
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--lr", type=float, default=2e-3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    work = args.run / "work"
    cfg = T.ChatTrainConfig(**json.loads((work / "config.json").read_text()))
    state = {k[len("model."):]: v for k, v in load_file(work / "state.safetensors").items() if k.startswith("model.")}
    network = T.ChatNetwork(cfg, state["linear_1.weight"].shape[1], state["feature_mean"], state["feature_std"])
    network.load_state_dict(state, strict=False)
    optimizer = T._optimizer(network, cfg)
    encoder = T.Encoder(cfg.image_tokens())
    bank = T.FeatureBank()
    train_labels, heldout = wc.nonce_split()
    refs = T.pool_refs(T.TRAIN_SEED, cfg.pool, cfg.count_pool)
    pool_attributes = dict(zip(refs, json.loads((work / "train-attributes.json").read_text()), strict=True))
    rng = np.random.default_rng(7)
    source = wc.SceneSource(T.VALID_SEED, rng)
    valid = {t: [wc.make_example(t, source, rng, heldout) for _ in range(96)] for t in TASKS}

    def accuracy() -> dict[str, float]:
        network.eval()
        scores = {t: round(T.answer_accuracy(network, encoder, bank, examples), 3) for t, examples in valid.items()}
        network.train()
        return scores

    print("step 0", accuracy(), flush=True)
    t0 = time.time()
    for step in range(args.steps):
        rng = np.random.default_rng([99, step])
        source = wc.SceneSource(T.TRAIN_SEED, rng, pool=cfg.pool, count_pool=cfg.count_pool, pool_attributes=pool_attributes)
        ids, labels, mask, _ = encoder.batch(T.draw_examples("scaffold", 64, source, rng, train_labels, 3))
        network.resample_nonce(torch.Generator().manual_seed(10_000_000 + step))
        for group in optimizer.param_groups:
            group["lr"] = args.lr * min(1.0, (step + 1) / 100)
        loss = T.masked_loss(network(ids, bank.gather([]), mask), labels)
        optimizer.zero_grad()
        loss.backward()
        network.freeze_nonce_grads()
        torch.nn.utils.clip_grad_norm_(network.parameters(), 1.0)
        optimizer.step()
        if (step + 1) % 200 == 0:
            rate = (time.time() - t0) / (step + 1)
            print(f"step {step + 1} loss {float(loss.detach()):.3f}", accuracy(), f"{rate:.2f} s/step", flush=True)


if __name__ == "__main__":
    main()
