"""Fine-tune the shipped ``embedded`` model briefly on a shifted shapes world, for ``vlmkit sith compare``.

The shift: a different world seed, object colour spuriously tied to background colour
(p = 0.9), and captions that name the background twice as often as in pre-training. The run is
short (150 steps of 256 images, lr 2e-4; ``--steps``/``--lr`` for a stronger one) and resumable: rerun the same command after an
interruption. About 5 minutes on 2 CPU cores::

    python scripts/finetune_shifted.py --out runs/finetune-shifted
    vlmkit sith compare --base embedded --tuned runs/finetune-shifted/model --vocab world --layers all --out runs/compare-shifted
"""

from __future__ import annotations

import argparse
from pathlib import Path

from vlmkit.models.embedded_train import TrainConfig, train


def shifted_config(threads: int = 2, steps: int = 150, lr: float = 2e-4) -> TrainConfig:
    return TrainConfig(
        init_from="embedded", steps=steps, warmup=10, lr=lr, pool=4000, seed=1, threads=threads,
        spurious="target=color,nuisance=background,p=0.9", caption_background_p=1.0,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--lr", type=float, default=2e-4)
    args = parser.parse_args()
    model = train(shifted_config(args.threads, args.steps, args.lr), args.out, log=lambda line: None)
    print(f"fine-tuned model: {model}")


if __name__ == "__main__":
    main()
