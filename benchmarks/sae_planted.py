"""Planted-dictionary recovery by the Matryoshka SAE (the numbers quoted in docs/sem.md).

    python benchmarks/sae_planted.py

Inputs are built from 48 known unit atoms in 32 dimensions (3 active per input, coefficients in
[1, 2], plus a constant offset); an SAE with 96 latents and TopK levels (3, 6) is trained for
1,500 steps, then each planted atom is matched to its closest decoder direction. The same setup
is asserted by ``tests/test_sae.py::test_planted_dictionary_is_recovered``.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from test_sae import planted_data  # noqa: E402
from vlmkit.debias.sae import SAEConfig, quality  # noqa: E402
from vlmkit.debias.sae_train import SAETrainConfig, train_sae  # noqa: E402


def main() -> None:
    data, dictionary = planted_data()
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        sae = train_sae(data, SAEConfig(32, 96, (3, 6)), SAETrainConfig(steps=1500, batch_size=256, lr=3e-3, warmup=50, block_rows=8192),
                        tmp)
    seconds = time.perf_counter() - start
    best = (dictionary @ F.normalize(sae.atoms.detach(), dim=-1).T).max(1).values
    q = quality(sae, [torch.from_numpy(data[:4000])])
    print(json.dumps({"atoms": len(best), "min_cosine": round(float(best.min()), 4), "share_above_0.9": float((best > 0.9).float().mean()),
                      "fvu": round(q.fvu, 4), "cosine": round(q.cosine, 4), "train_s": round(seconds, 1)}, indent=2))


if __name__ == "__main__":
    main()
