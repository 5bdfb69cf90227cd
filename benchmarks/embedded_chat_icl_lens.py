"""Would the lens loss teach embedded-chat in-context labelling? Continue a train-chat run with it.

``vlmkit world train-chat`` gives novel-label ICL episodes no lens target, and the shipped model
never learned to copy a context label (docs/chat.md). This script continues a finished run
(``--run DIR``: its ``work/`` checkpoint and cached tower features) with an ICL batch every
step plus a short batch of the last curriculum stage, and, with ``--icl-lens 1``, gives each
episode lens targets: at every context label, the shape of the image it labels; at every reply,
the shape of the queried image. The reply's step (1) is then "which shape is asked", and the
labels carry their shape where a layer-3 head can match it, the adjacent form of induction.
Teacher-forced accuracy on 96 held-out episodes (4-way, held-out labels) and on two short tasks
every ``--every`` steps, one thread:

    python benchmarks/embedded_chat_icl_lens.py --run DIR --icl-lens 1 --steps 400
    python benchmarks/embedded_chat_icl_lens.py --run DIR --icl-lens 0 --steps 400

Nothing is written: the continued network is discarded.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from vlmkit.data import world_chat as wc
from vlmkit.models import embedded_chat_batches as B
from vlmkit.models import embedded_chat_train as T


def with_icl_latents(example: wc.Example) -> wc.Example:
    """``example`` (an ICL episode) with its labels' and replies' shapes as lens targets."""
    shape_of = dict(zip(example.meta["labels"], example.meta["shapes"], strict=True))
    turns = []
    for i, turn in enumerate(example.turns):
        if turn.role == "assistant":
            turns.append(replace(turn, latent=shape_of[turn.parts[0]]))
        else:
            turns.append(replace(turn, word_latents=shape_of if i == 0 else None))
    return replace(example, turns=turns)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True, type=Path, help="a finished `vlmkit world train-chat --out` directory")
    parser.add_argument("--icl-lens", type=float, default=1.0, help="lens weight on ICL episodes (0: none)")
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--every", type=int, default=50)
    args = parser.parse_args()

    torch.set_num_threads(1)
    work = args.run / "work"
    cfg, network = T.load_run(args.run)
    optimizer = T._optimizer(network, cfg)
    encoder = B.Encoder(cfg.image_tokens())
    train_refs = T.pool_refs(T.TRAIN_SEED, cfg.pool, cfg.count_pool)
    valid_refs = T.pool_refs(T.VALID_SEED, cfg.valid_pool, cfg.valid_pool // 2)
    bank = B.FeatureBank()
    bank.add(train_refs, np.load(work / "train-features.npy"))
    bank.add(valid_refs, np.load(work / "valid-features.npy"))
    train_attrs = dict(zip(train_refs, json.loads((work / "train-attributes.json").read_text()), strict=True))
    valid_attrs = dict(zip(valid_refs, json.loads((work / "valid-attributes.json").read_text()), strict=True))
    train_labels, heldout_labels = wc.nonce_split()
    valid_rng = np.random.default_rng(99)
    valid_source = wc.SceneSource(T.VALID_SEED, valid_rng, pool=cfg.valid_pool, count_pool=cfg.valid_pool // 2,
                                  pool_attributes=valid_attrs)
    valid = {"icl4": [wc.make_example("icl", valid_source, valid_rng, heldout_labels, ways=4) for _ in range(96)]}
    valid |= {t: [wc.make_example(t, valid_source, valid_rng, heldout_labels) for _ in range(96)] for t in ("yesno", "mcq")}
    last = T.CURRICULUM[-1]
    lens_cfg = replace(cfg, lens_weight=1.0)
    icl_cfg = replace(cfg, lens_weight=args.icl_lens)
    start = time.time()
    print(f"run {args.run}, ICL lens weight {args.icl_lens}, lr {args.lr}")
    for step in range(args.steps + 1):
        if step % args.every == 0:
            network.eval()
            scores = {task: round(T.answer_accuracy(network, encoder, bank, examples), 3) for task, examples in valid.items()}
            network.train()
            print(f"step {step:4d}  {scores}  {time.time() - start:5.0f} s", flush=True)
        if step == args.steps:
            break
        rng = np.random.default_rng([7, step])
        source = wc.SceneSource(T.TRAIN_SEED, rng, pool=cfg.pool, count_pool=cfg.count_pool, pool_attributes=train_attrs)
        network.resample_nonce(torch.Generator().manual_seed(10**6 + step))
        for group in optimizer.param_groups:
            group["lr"] = args.lr * min(1.0, (step + 1) / 30)
        episodes = [with_icl_latents(e) for e in B.draw_icl(cfg.icl_batch, source, rng, train_labels, cfg.icl_queries)]
        short = B.draw_examples(last.short, cfg.short_batch, source, rng, train_labels, 3)
        loss = T.batch_loss(network, encoder.batch(episodes), bank, icl_cfg) + T.batch_loss(network, encoder.batch(short), bank, lens_cfg)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        network.freeze_nonce_grads()
        torch.nn.utils.clip_grad_norm_(network.parameters(), cfg.grad_clip)
        optimizer.step()


if __name__ == "__main__":
    main()
