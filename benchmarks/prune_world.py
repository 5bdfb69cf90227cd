"""Pruning and recovery of embedded-chat on the shapes world (docs/pruning.md's replication).

    python benchmarks/prune_world.py [--model embedded-chat] [--ratios 0.15,0.3,0.45] [--n 40] [--seed 0]
        [--recipes projector,sft,sft+kd-hidden] [--fractions 0.05,1.0] [--recover-ratio 0.3] [--pool 800] [--out runs/prune-world]

Writes an evaluation suite of fresh world questions (colour, shape, texture, position, count,
yes/no, multiple choice; ``--n`` per task, world seed 9000 + seed) and a pool of ``--pool``
training conversations (world seed 5000 + seed), scores the unpruned model, prunes layerwise
(Block Influence) and widthwise (Taylor) at each ratio without recovery, then recovers the
``--recover-ratio`` models with each recipe on each data fraction. "Retained" is the mean over
tasks of 100 x pruned score / original score (the mean of ratios, as the spec chooses). Prints a
Markdown table and writes ``result.json``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

SUITE_TASKS = ("color", "shape", "texture", "position", "count", "yesno", "mcq")
TRAIN_TASKS = ("color", "shape", "size", "texture", "position", "background", "name", "yesno", "mcq", "count", "multiturn")


def write_conversations(examples, root: Path, name: str) -> Path:
    """Examples of :mod:`vlmkit.data.world_chat` as a LLaVA-layout file with PNG images."""
    from PIL import Image

    from vlmkit.data.world_chat import SceneRef, render_scene

    (root / "images").mkdir(parents=True, exist_ok=True)
    records = []
    for example in examples:
        images, turns = [], []
        for turn in example.turns:
            text = []
            for part in turn.parts:
                if isinstance(part, SceneRef):
                    path = root / "images" / f"{part.seed}-{part.kind}-{part.index}.png"
                    if not path.exists():
                        Image.fromarray(render_scene(part)).save(path)
                    images.append(f"images/{path.name}")
                    text.append("<image>")
                else:
                    text.append(str(part))
            turns.append({"from": "human" if turn.role == "user" else "gpt", "value": " ".join(text)})
        records.append({"image": images, "conversations": turns})
    path = root / f"{name}.json"
    path.write_text(json.dumps(records))
    return path


def world_files(root: Path, n: int, pool: int, seed: int) -> tuple[Path, Path]:
    import numpy as np

    from vlmkit.data.world_chat import SceneSource, make_example

    suite = {}
    for offset, task in enumerate(SUITE_TASKS):
        rng = np.random.default_rng([seed, offset])
        source = SceneSource(9000 + seed * 10 + offset, rng)
        suite[task] = write_conversations([make_example(task, source, rng, []) for _ in range(n)], root, f"eval-{task}").name
    (root / "suite.json").write_text(json.dumps(suite))
    rng = np.random.default_rng([seed, 99])
    source = SceneSource(5000 + seed, rng)
    train = [make_example(TRAIN_TASKS[i % len(TRAIN_TASKS)], source, rng, []) for i in range(pool)]
    return root / "suite.json", write_conversations(train, root, "train")


def retained(scores: dict, original: dict) -> float:
    tasks = [t for t in original if t != "average" and original[t] > 0]
    return 100 * sum(scores[t] / original[t] for t in tasks) / len(tasks) if tasks else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="embedded-chat")
    parser.add_argument("--ratios", default="0.15,0.3,0.45")
    parser.add_argument("--recipes", default="projector,sft,sft+kd-hidden")
    parser.add_argument("--fractions", default="0.05,1.0")
    parser.add_argument("--recover-ratio", type=float, default=0.3)
    parser.add_argument("--n", type=int, default=40)
    parser.add_argument("--pool", type=int, default=800)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("runs/prune-world"))
    args = parser.parse_args()

    from vlmkit.compress.prune_run import PruneOptions, run_prune
    from vlmkit.compress.recover import run_recover
    from vlmkit.compress.sft import SFTConfig
    from vlmkit.compress.suite import evaluate, load_suite
    from vlmkit.models.chat_registry import load_chat_model
    from vlmkit.models.export import export_model

    out = args.out / f"seed{args.seed}"
    out.mkdir(parents=True, exist_ok=True)
    suite_path, train_path = world_files(out / "data", args.n, args.pool, args.seed)
    suite = load_suite(suite_path)
    teacher = out / "teacher"
    if not (teacher / "config.json").exists():
        export_model(args.model, teacher)
    original = evaluate(load_chat_model(str(teacher)), suite)
    rows = [
        {
            "method": "none",
            "ratio": 0.0,
            "recipe": "-",
            "fraction": 0.0,
            "score": original["average"],
            "retained": 100.0,
            "compression": 0.0,
        }
    ]
    pruned_dirs = {}
    for method in ("layer", "width"):
        for ratio in (float(r) for r in args.ratios.split(",")):
            target = out / f"pruned-{method}-{ratio}"
            if not (target / "result.json").exists():
                run_prune(
                    PruneOptions(
                        model=str(teacher),
                        out=target,
                        method=method,
                        ratio=ratio,
                        calibration=train_path,
                        n_calibration=50 if method == "layer" else 10,
                        importance="taylor",
                        seed=args.seed,
                    )
                )
            compression = json.loads((target / "result.json").read_text())["compression"]["language_backbone"]
            scores = evaluate(load_chat_model(str(target)), suite)
            rows.append(
                {
                    "method": method,
                    "ratio": ratio,
                    "recipe": "-",
                    "fraction": 0.0,
                    "score": scores["average"],
                    "retained": retained(scores, original),
                    "compression": compression,
                }
            )
            pruned_dirs[(method, ratio)] = (target, compression)
            print(rows[-1], flush=True)
    for method in ("layer", "width"):
        target, compression = pruned_dirs[(method, args.recover_ratio)]
        for recipe in args.recipes.split(","):
            for fraction in (float(f) for f in args.fractions.split(",")):
                recovered = out / f"recovered-{method}-{recipe}-{fraction}"
                if not (recovered / "result.json").exists():
                    run_recover(
                        str(target),
                        str(teacher),
                        recipe,
                        train_path,
                        fraction,
                        recovered,
                        config=SFTConfig(lr=1e-3, epochs=1.0, batch_size=8),
                        seed=args.seed,
                    )
                scores = evaluate(load_chat_model(str(recovered)), suite)
                rows.append(
                    {
                        "method": method,
                        "ratio": args.recover_ratio,
                        "recipe": recipe,
                        "fraction": fraction,
                        "score": scores["average"],
                        "retained": retained(scores, original),
                        "compression": compression,
                    }
                )
                print(rows[-1], flush=True)
    (out / "result.json").write_text(json.dumps({"original": original, "table": rows}, indent=2))
    print("| method | ratio | backbone compression | recipe | data | score | retained % |\n|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['method']} | {r['ratio']} | {r['compression']:.3f} | {r['recipe']} | {r['fraction']} "
            f"| {r['score']:.3f} | {r['retained']:.1f} |"
        )


if __name__ == "__main__":
    main()
