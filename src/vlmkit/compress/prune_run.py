"""``vlmkit prune``: prune a chat model's language backbone and write a loadable checkpoint.

Writes ``OUT/`` as a ``save_pretrained`` directory (safetensors, config with the new shapes,
processor, chat template) plus ``result.json`` (method, importance, removed blocks or kept heads
and channels, Block Influence or importance scores, calibration size, parameter counts and the
compression ratio over the language backbone and over the whole model), ``run.json`` and
``report.html``. The directory appears only when complete.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, field_validator

from vlmkit.compress import prune as P
from vlmkit.data.conversations import load_training_data
from vlmkit.errors import UserError
from vlmkit.models import chat_blocks as cb
from vlmkit.runs.files import atomic_directory
from vlmkit.runs.options import OPTIONS_CONFIG, check_out
from vlmkit.runs.record import Run


class PruneOptions(BaseModel):
    model_config = OPTIONS_CONFIG
    model: str
    out: Path
    method: Literal["layer", "width"]
    ratio: float = Field(gt=0, lt=1)
    calibration: Path
    n_calibration: int = Field(50, ge=1)
    importance: P.Importance = "taylor"
    heads: Literal["group", "query"] = "group"
    seed: int = Field(0, ge=0)

    _out = field_validator("out", mode="before")(check_out)


def prune_model(model, conversations, opts: PruneOptions) -> tuple[object, dict]:
    """The pruned network and the record of what was removed and why."""
    before = cb.count_parameters(model.model)
    if opts.method == "layer":
        n_blocks = len(cb.blocks(model.model))
        influence = P.block_influence(model, conversations)
        n = min(n_blocks - 1, max(1, round(opts.ratio * n_blocks)))
        removed = P.layers_to_remove(influence, n)
        pruned = P.prune_layers(model, removed)
        record = {"block_influence": influence.tolist(), "removed_blocks": removed}
    else:
        if opts.importance == "taylor":
            P.accumulate_gradients(model, conversations)
        import torch

        scores = P.group_scores(model, opts.importance, torch.Generator().manual_seed(opts.seed))
        plan, _ = P.plan_for_ratio(model, scores, opts.ratio, opts.heads)
        pruned = cb.keep_width(model.model, plan["heads"], plan["kv_heads"], plan["channels"])
        record = {
            "kept": plan,
            "head_scores": [s["heads"].tolist() for s in scores],
            "kv_group_scores": [s["kv_groups"].tolist() for s in scores],
        }
    after = cb.count_parameters(pruned)
    record["parameters_before"], record["parameters_after"] = before, after
    record["compression"] = {
        "language_backbone": 1 - after["language_backbone"] / before["language_backbone"],
        "whole_model": 1 - after["total"] / before["total"],
    }
    return pruned, record


def run_prune(opts: PruneOptions) -> Path:
    from vlmkit.models.chat_registry import load_chat_model

    out = Path(opts.out)
    if out.exists() and any(out.iterdir()):
        raise UserError(f"{out} already exists and is not empty; choose a new --out directory")
    import numpy as np

    data = load_training_data(opts.calibration, seed=opts.seed)
    ids = sorted(np.random.default_rng(opts.seed).permutation(len(data))[: opts.n_calibration].tolist())
    calibration = [data[i] for i in ids]
    model = load_chat_model(opts.model)
    if not hasattr(model, "training_batch"):
        raise UserError(f"{opts.model} is served remotely; pruning needs an in-process model (its weights)")
    run = Run(out, "prune", opts.model_dump(mode="json"), seed=opts.seed)
    with run.timer("prune"):
        pruned, record = prune_model(model, calibration, opts)
    record.update(
        method=opts.method, importance=opts.importance if opts.method == "width" else None, ratio_asked=opts.ratio, calibration_ids=ids
    )
    with atomic_directory(out) as staging:
        model.model = pruned
        model.save(staging)
        run.out = staging  # the record lands beside the weights, then the folder is renamed
        run.finish(record, _report(record))
    return out


def _report(record: dict) -> str:
    from vlmkit.report.html import key_values, page, section
    from vlmkit.report.plots import bars

    summary = {
        "method": record["method"],
        "importance": record["importance"],
        **{f"compression ({k})": v for k, v in record["compression"].items()},
        "parameters before": record["parameters_before"]["total"],
        "parameters after": record["parameters_after"]["total"],
    }
    blocks = []
    if "block_influence" in record:
        influence = record["block_influence"]
        blocks.append(
            bars(
                [f"{i}" + ("*" if i in record["removed_blocks"] else "") for i in range(len(influence))],
                influence,
                caption="Block Influence per decoder block (* removed: the lowest)",
            )
        )
    else:
        from vlmkit.report.plots import lines

        blocks.append(
            lines(
                {f"block {i}": sorted(s, reverse=True) for i, s in enumerate(record["kv_group_scores"])},
                xlabel="kv group (sorted)",
                ylabel="importance",
                legend=len(record["kv_group_scores"]) <= 8,
                caption="Importance of each block's kv groups, highest first",
            )
        )
    return page("vlmkit prune", section("Summary", key_values(summary)), section("Scores", *blocks))
