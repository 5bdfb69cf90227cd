"""Train a :class:`~vlmkit.debias.sae.MatryoshkaSAE` on embeddings that need not fit in memory.

The embeddings are an ``(N, d_in)`` array, typically a memory-mapped ``.npy``. Each epoch visits
contiguous blocks of ``block_rows`` rows in a seeded random order and shuffles within a block, so
only one block is in memory. A checkpoint (weights, Adam state, step) is written every
``checkpoint_every`` steps; calling :func:`train_sae` again with the same arguments resumes from
it and reaches the same weights as an uninterrupted run. Batches are drawn from
``default_rng([seed, epoch])``, so a resumed run sees the same data in the same order.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from vlmkit.debias.sae import MatryoshkaSAE, SAEConfig
from vlmkit.runs.checkpoint import load_training_state, save_training_state
from vlmkit.runs.progress import track


@dataclass(frozen=True)
class SAETrainConfig:
    """Optimisation of the SAE; the paper's optimiser and schedule are not published (our choice:
    Adam, linear warm-up then cosine decay, gradient clipping at 1)."""

    steps: int = 2000
    batch_size: int = 1024
    lr: float = 1e-3
    warmup: int = 100
    seed: int = 0
    block_rows: int = 65536
    checkpoint_every: int = 200

    def lr_at(self, step: int) -> float:
        if step < self.warmup:
            return self.lr * (step + 1) / self.warmup
        progress = (step - self.warmup) / max(self.steps - self.warmup, 1)
        return self.lr * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))


def epoch_rows(n: int, cfg: SAETrainConfig, epoch: int) -> Iterator[tuple[int, np.ndarray]]:
    """One epoch's batches as ``(block start, row offsets within the block)``.

    The epoch visits every block of ``block_rows`` rows once, in the order drawn from
    ``default_rng([seed, epoch])``, and cuts each block (shuffled) into full batches; a block
    shorter than a batch gives one short batch. Rows left over after a block's last full batch
    wait for a later epoch, whose shuffle differs. Blocks of uneven size are fine: the epoch
    ends when its last block does, never in the middle of one.
    """
    rng = np.random.default_rng([cfg.seed, epoch])
    for start in rng.permutation(np.arange(0, n, cfg.block_rows)):
        size = min(cfg.block_rows, n - start)
        order = rng.permutation(size)
        last = size - cfg.batch_size + 1 if size >= cfg.batch_size else 1
        for first in range(0, last, cfg.batch_size):
            yield int(start), order[first : first + cfg.batch_size]


def batches(data: np.ndarray, cfg: SAETrainConfig, start_step: int = 0) -> Iterator[torch.Tensor]:
    """Endless ``(batch_size, d_in)`` float32 batches, deterministic in ``cfg.seed``, from ``start_step``
    (epochs of :func:`epoch_rows` one after another; only the current block is in memory)."""
    n = data.shape[0]
    step, epoch = 0, 0
    while True:
        loaded_start, block = None, None
        for start, offsets in epoch_rows(n, cfg, epoch):
            if step >= start_step:
                if start != loaded_start:
                    loaded_start, block = start, np.asarray(data[start : min(start + cfg.block_rows, n)], dtype=np.float32)
                yield torch.from_numpy(block[offsets])
            step += 1
        epoch += 1


def train_sae(data: np.ndarray, sae_cfg: SAEConfig, cfg: SAETrainConfig, out: str | Path,
              log: Callable[[dict], None] | None = None, until: int | None = None) -> MatryoshkaSAE:
    """Train (or resume) on ``data`` ``(N, d_in)``; saves the SAE to ``out`` and returns it.

    ``until`` stops after that many steps in all (with a checkpoint), for tests of resumption.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)
    sae = MatryoshkaSAE(sae_cfg)
    with torch.no_grad():  # b_pre starts at the data mean (estimated on the first block)
        sae.b_pre.copy_(torch.from_numpy(np.asarray(data[: cfg.block_rows], dtype=np.float64).mean(0)).float())
    optimizer = torch.optim.Adam(sae.parameters(), lr=cfg.lr)
    checkpoint = out / "checkpoint.safetensors"
    start = 0
    if checkpoint.is_file():
        state, start = load_training_state(checkpoint, optimizer)
        sae.load_state_dict(state)
    stop = min(cfg.steps, until or cfg.steps)
    t0 = time.perf_counter()
    stream = batches(data, cfg, start)
    for step in track(range(start, stop), "training the SAE", total=stop - start):
        x = next(stream)
        for group in optimizer.param_groups:
            group["lr"] = cfg.lr_at(step)
        loss = sae.loss(x)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(sae.parameters(), 1.0)
        optimizer.step()
        if log and (step % 50 == 0 or step == cfg.steps - 1):
            log({"step": step, "loss": round(float(loss.detach()), 6), "lr": cfg.lr_at(step),
                 "elapsed_s": round(time.perf_counter() - t0, 2)})
        if (step + 1) % cfg.checkpoint_every == 0 or step + 1 == stop:
            save_training_state(checkpoint, sae.state_dict(), optimizer, step + 1)
    sae.eval()
    if stop == cfg.steps:
        sae.save(out, extra={"training": asdict(cfg), "trained_on_rows": int(data.shape[0])})
        (out / "train_config.json").write_text(json.dumps(asdict(cfg), indent=2))
    return sae
