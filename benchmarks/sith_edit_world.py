"""Validate SITH edits the way the paper validates on Waterbirds, on the shapes world.

    python benchmarks/sith_edit_world.py [--model embedded-biased] [--n 3000] [--oracle-n 1000]

``embedded-biased`` was trained where shape is tied to background colour (p = 0.95). On a fresh
balanced split (world seed 1000) the script measures zero-shot shape accuracy, worst-group and
mean-group accuracy over the 36 shape x background groups, and background accuracy, for the
model and for edits that suppress background-colour directions (write or read side, several
relevance thresholds) or amplify shape directions. An oracle then ablates each head in turn
(every singular value set to 0) to show what the best single-head edit could reach. Prints
markdown tables.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch

from vlmkit.classify.world_eval import evaluate_world, world_split
from vlmkit.data.datasets import load_dataset
from vlmkit.data.world import BACKGROUNDS, SHAPES
from vlmkit.interpret.concepts import build_dictionary
from vlmkit.interpret.edit import edit_by_concepts, rescale_layer
from vlmkit.interpret.image_mean import resolve_image_mean
from vlmkit.interpret.sith import SithConfig, explain
from vlmkit.interpret.vocab import load_vocabulary
from vlmkit.models import load_model
from vlmkit.runs.cache import EmbeddingCache

BACKGROUND_CONCEPTS = [*BACKGROUNDS, "background"]
SHAPE_CONCEPTS = [*SHAPES, "shape"]
#: (label, concepts, factor, side, threshold)
EDITS = [
    ("suppress background, write side, t=0.5", BACKGROUND_CONCEPTS, 0.0, "right", 0.5),
    ("suppress background, write side, t=0.3", BACKGROUND_CONCEPTS, 0.0, "right", 0.3),
    ("suppress background, write side, t=0.2", BACKGROUND_CONCEPTS, 0.0, "right", 0.2),
    ("suppress background, read side, t=0.5", BACKGROUND_CONCEPTS, 0.0, "left", 0.5),
    ("suppress background, read side, t=0.3", BACKGROUND_CONCEPTS, 0.0, "left", 0.3),
    ("amplify shape x2, write side, t=0.3", SHAPE_CONCEPTS, 2.0, "right", 0.3),
]


def row(label: str, summary: dict, edited: int | str = "-") -> str:
    groups = summary["shape_groups"]
    acc = summary["accuracy"]
    return (f"| {label} | {edited} | {acc['shape']:.3f} | {groups['worst_group_accuracy']:.3f} | "
            f"{groups['mean_group_accuracy']:.3f} | {acc['background']:.3f} | {acc['color']:.3f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="embedded-biased")
    parser.add_argument("--n", type=int, default=3000)
    parser.add_argument("--oracle-n", type=int, default=1000)
    parser.add_argument("--vocab", default="world")
    args = parser.parse_args()
    cache = EmbeddingCache()
    with tempfile.TemporaryDirectory() as tmp:
        dataset = load_dataset(world_split(Path(tmp) / "eval", args.n, 1000, None))
        model = load_model(args.model)
        concepts = load_vocabulary(args.vocab)
        dictionary = build_dictionary(model, concepts, cache=cache)
        image_mean, _ = resolve_image_mean(model, "auto", cache=cache)
        original = model.vision_weights()
        layers = list(range(original.n_layers))
        print(f"{args.model}, fresh balanced split of {args.n} images, vocabulary {args.vocab}, all layers, COMP K=5 lambda=0.3\n")
        print("| model | vectors edited | shape acc. | worst group | mean group | background acc. | colour acc. "
              "|\n|---|---|---|---|---|---|---|")
        print(row("unedited", evaluate_world(model, dataset, cache)), flush=True)
        for label, targets, factor, side, threshold in EDITS:
            cfg = SithConfig(side=side)
            weights = original.clone()
            explanations = explain(weights, layers, dictionary, image_mean, cfg)
            edited = edit_by_concepts(weights, explanations, dictionary, dictionary.center(model.encode_texts(targets)), threshold, factor,
                                      cfg)
            model.set_vision_weights(weights)
            print(row(label, evaluate_world(model, dataset, cache), len(edited)), flush=True)

        oracle = load_dataset(world_split(Path(tmp) / "oracle", args.oracle_n, 1001, None))
        print(f"\nOracle: each head ablated alone, on a second split of {args.oracle_n} images (world seed 1001)\n")
        print("| model | vectors edited | shape acc. | worst group | mean group | background acc. | colour acc. "
              "|\n|---|---|---|---|---|---|---|")
        model.set_vision_weights(original)
        print(row("unedited", evaluate_world(model, oracle, cache)), flush=True)
        for layer in layers:
            for head in range(original.n_heads):
                weights = original.clone()
                alphas = torch.ones(original.n_heads, original.d_head)
                alphas[head] = 0
                rescale_layer(weights, layer, alphas, SithConfig())
                model.set_vision_weights(weights)
                print(row(f"layer {layer} head {head} ablated", evaluate_world(model, oracle, cache), original.d_head), flush=True)


if __name__ == "__main__":
    main()
