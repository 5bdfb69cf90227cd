"""``make demo``: the main job, offline, in under a minute.

Until the embedded model lands, the demo classifies a small generated colour dataset zero-shot
with the model given (a ``random:`` architecture by default, so accuracy is near chance: the
point is that the whole path runs offline and writes its report).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

COLOURS = {"red": (220, 30, 30), "green": (30, 170, 60), "blue": (30, 70, 220), "yellow": (240, 220, 40)}


def make_colour_folder(root: Path, per_class: int = 4, size: int = 96, seed: int = 0) -> Path:
    """A class-per-folder dataset of noisy solid-colour images: ``root/<colour>/<i>.png``."""
    rng = np.random.default_rng(seed)
    for name, rgb in COLOURS.items():
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            pixels = np.clip(np.asarray(rgb) + rng.normal(0, 12, (size, size, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(root / name / f"{i}.png")
    return root


def run_demo(out: Path, model: str) -> Path:
    from vlmkit.classify.zeroshot_run import ZeroShotOptions, run_zeroshot

    data = make_colour_folder(Path(out) / "data")
    return run_zeroshot(ZeroShotOptions(model=model, dataset=str(data), out=Path(out), templates=["a {} image."]))
