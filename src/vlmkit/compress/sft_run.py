"""``vlmkit sft``: fine-tune a chat model on a conversation or mixture file; resumable.

``OUT/work/`` holds the training state while the run lasts; the checkpoint (a
``save_pretrained`` directory), ``result.json`` (losses, data counts) and ``run.json`` are
written at the end, ``result.json`` last, and ``work/`` is removed. Running the same command
again after an interruption resumes from the last saved step.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from vlmkit.compress.sft import SFTConfig, finetune
from vlmkit.data.conversations import is_mixture, load_conversations, load_mixture
from vlmkit.errors import UserError
from vlmkit.runs.record import Run


def run_sft(model_name: str, data: Path, out: Path, config: SFTConfig, *, device: str = "cpu") -> Path:
    from vlmkit.models.chat_registry import load_chat_model

    out = Path(out)
    if (out / "result.json").exists():
        raise UserError(f"{out} already holds a finished run; choose a new --out directory")
    if is_mixture(data):
        conversations, counts = load_mixture(data, seed=config.seed)
    else:
        conversations = load_conversations(data)
        counts = {str(data): len(conversations)}
    model = load_chat_model(model_name, device=device)
    if not hasattr(model, "training_batch"):
        raise UserError(
            f"{model_name} is not an in-process model; fine-tuning needs its weights (hf:, a directory, random:, embedded-chat)"
        )
    run = Run(out, "sft", {"model": model_name, "data": str(data), **config.model_dump()}, seed=config.seed)
    with run.timer("train"):
        summary = finetune(model, conversations, config, work=out / "work", describe=f"fine-tuning ({config.mode})")
    model.save(out)
    losses = summary["losses"]
    result = {
        "model": model_name,
        "data": str(data),
        "counts": counts,
        "mode": config.mode,
        "steps": summary["steps"],
        "resumed_at": summary["resumed_at"],
        "trainable_parameters": summary["trainable_parameters"],
        "first_loss": losses[0] if losses else None,
        "last_loss": losses[-1] if losses else None,
        "losses": losses,
    }
    run.finish(result, _report(result))
    shutil.rmtree(out / "work", ignore_errors=True)
    return out


def _report(result: dict) -> str:
    from vlmkit.report.html import key_values, page, section
    from vlmkit.report.plots import lines

    summary = {k: v for k, v in result.items() if k != "losses"}
    return page(
        "vlmkit sft",
        section("Run", key_values(summary)),
        section("Training loss", lines({"training loss": result["losses"]}, xlabel="step", ylabel="loss", legend=False)),
    )
