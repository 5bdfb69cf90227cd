"""Does the lens loss let embedded-chat's language model learn to verify? A text-only probe.

The task is yes/no about a described scene, the text stand-in for an image that the training
scaffold ``text_yesno`` uses: ``"a small red striped star on the left , navy background . is
the shape red ?"`` -> ``"yes"``. The reply must pick the asked attribute out of the description
and compare it with the question's word, the two steps an image yes/no needs. The network is
embedded-chat's (4 Llama layers, width 128, ``ChatNetwork``), freshly initialised; every step
draws 64 new conversations; accuracy is teacher-forced on 192 held-out conversations of another
world seed. ``--lens 0`` trains on the reply alone; ``--lens 1`` adds the lens loss (the asked
attribute's true value read through the logit lens of layer 2 at the reply's position,
``embedded_chat_train.batch_loss``).

    python benchmarks/embedded_chat_lens_probe.py --lens 0 --steps 1500
    python benchmarks/embedded_chat_lens_probe.py --lens 1 --steps 1500

Also ``--task text_mcq`` (lettered choice; the lens adds each option's letter at its word).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from vlmkit.data import world_chat as wc
from vlmkit.models import embedded_chat_batches as B
from vlmkit.models import embedded_chat_train as T


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="text_yesno", choices=("text_yesno", "text_mcq"))
    parser.add_argument("--lens", type=float, default=1.0, help="lens loss weight (0: reply only)")
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--every", type=int, default=100, help="evaluate every this many steps")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    cfg = T.ChatTrainConfig(lens_weight=args.lens)
    network = T.ChatNetwork(cfg, 128, torch.zeros(128), torch.ones(128))  # text only: the projector is unused
    optimizer = T._optimizer(network, cfg)
    encoder = B.Encoder(cfg.image_tokens())
    bank = B.FeatureBank()
    valid_rng = np.random.default_rng([args.seed, 1])
    valid_source = wc.SceneSource(1, valid_rng)
    valid = [wc.make_example(args.task, valid_source, valid_rng, []) for _ in range(192)]
    start = time.time()
    print(f"task {args.task}, lens weight {args.lens}")
    for step in range(args.steps + 1):
        if step % args.every == 0:
            network.eval()
            accuracy = T.answer_accuracy(network, encoder, bank, valid)
            network.train()
            print(f"step {step:5d}  accuracy {accuracy:.3f}  {time.time() - start:5.0f} s", flush=True)
        if step == args.steps:
            break
        rng = np.random.default_rng([args.seed, 0, step])
        source = wc.SceneSource(0, rng, pool=6000)
        for group in optimizer.param_groups:
            group["lr"] = args.lr * min(1.0, (step + 1) / 100)
        examples = B.draw_examples({args.task: 1.0}, 64, source, rng, [], 1)
        loss = T.batch_loss(network, encoder.batch(examples), bank, cfg)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(network.parameters(), cfg.grad_clip)
        optimizer.step()


if __name__ == "__main__":
    main()
