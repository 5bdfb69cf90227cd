"""How much of each world attribute the frozen ``embedded`` tower's features carry, per image-token budget.

    python benchmarks/embedded_chat_tower_probe.py [--n 1500] [--grids 8 4]

Renders ``n`` scenes of world seed 7, runs the tower as embedded-chat would on a ``grid`` x
``grid`` patch grid (``--mode resize``: the image resized to ``12 * grid`` px, position table
pooled; grid 8 is the tower's own 96 px view) and fits a logistic-regression probe per attribute
on the last layer's CLS token concatenated with the mean patch token (standardised), trained on
the first 1,100 scenes and scored on the rest. docs/chat.md ("embedded-chat") quotes its output:
it is why 17 tokens per image cap embedded-chat's shape and texture accuracy.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from PIL import Image
from sklearn.linear_model import LogisticRegression

from vlmkit.data import world_chat as wc
from vlmkit.models import embedded_chat_build as build
from vlmkit.models.embedded import shipped_dir

ATTRIBUTES = ("shape", "color", "size", "position", "texture", "background")


def probe(n: int, grid: int, mode: str, train: int = 1100) -> dict[str, float]:
    refs = [wc.SceneRef(7, i) for i in range(n)]
    labels = [wc.scene_attributes(r) for r in refs]
    images = [Image.fromarray(wc.render_scene(r)) for r in refs]
    config, state = build.coarse_tower(*build.embedded_tower_state(shipped_dir("embedded")), grid, mode)
    tower = build.vision_model(config, state)
    processor = build.build_processor(grid, mode, "bicubic")
    feats = []
    for start in range(0, n, 250):
        hidden = build.tower_features(tower, build.pixels(images[start: start + 250], processor))
        feats.append(torch.cat([hidden[:, 0], hidden[:, 1:].mean(1)], 1))
    x = torch.cat(feats).numpy()
    x = (x - x.mean(0)) / (x.std(0) + 1e-6)
    scores = {}
    for name in ATTRIBUTES:
        y = [row[name] for row in labels]
        clf = LogisticRegression(max_iter=1000, C=0.5).fit(x[:train], y[:train])
        scores[name] = round(float(clf.score(x[train:], y[train:])), 3)
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1500)
    parser.add_argument("--grids", type=int, nargs="+", default=[8, 4])
    parser.add_argument("--mode", default="resize", choices=["resize", "tile"])
    args = parser.parse_args()
    torch.set_num_threads(1)
    for grid in args.grids:
        print(f"grid {grid} ({1 + grid * grid} tokens, {args.mode}):", probe(args.n, grid, args.mode), flush=True)


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
