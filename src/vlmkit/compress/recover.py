"""``vlmkit recover``: recover a pruned model with little data (arXiv 2507.20749, §3.3).

Recipes (the student is the pruned model, the teacher the unpruned one):

| recipe | trains | loss |
|---|---|---|
| ``projector`` | the projector | cross-entropy (CE) on answer tokens |
| ``lora`` | LoRA on the language model (+ projector) | CE |
| ``sft`` | the whole language model and projector | CE |
| ``kd-logits`` | the same | τ²·KL(p_T ‖ p_S), τ = 2 |
| ``kd-hidden`` | the same | MSE of the final hidden states |
| ``sft+kd-hidden`` | the same | α·MSE + (1 − α)·CE, α = 0.5 |

KD losses cover every position by default (``mask="all"``, as the official code, which masks
nothing); ``mask="answer"`` restricts them to answer tokens. The KL is summed over the vocabulary
and averaged over the counted positions (the official code divides a sum by the batch size).
Only the final layer is distilled for hidden states (the project page's default), which stays
aligned after layer pruning; the teacher and student must share the hidden size (width pruning
never changes it).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

RECIPES = ("projector", "lora", "sft", "kd-logits", "kd-hidden", "sft+kd-hidden")
Recipe = Literal["projector", "lora", "sft", "kd-logits", "kd-hidden", "sft+kd-hidden"]
TAU = 2.0
ALPHA = 0.5


def kd_logits_loss(student: torch.Tensor, teacher: torch.Tensor, mask: torch.Tensor, tau: float = TAU) -> torch.Tensor:
    """τ² · mean over masked positions of Σ_vocab p_T (log p_T − log p_S); logits ``(B, T, V)``."""
    log_s = F.log_softmax(student.float() / tau, -1)
    log_t = F.log_softmax(teacher.float() / tau, -1)
    per_position = (log_t.exp() * (log_t - log_s)).sum(-1)
    return tau**2 * (per_position * mask).sum() / mask.sum().clamp(min=1)


def kd_hidden_loss(student: torch.Tensor, teacher: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean squared error of hidden states ``(B, T, D)`` over masked positions."""
    per_position = (student.float() - teacher.float()).pow(2).mean(-1)
    return (per_position * mask).sum() / mask.sum().clamp(min=1)


def sft_mode(recipe: Recipe) -> str:
    return {"projector": "projector", "lora": "lora"}.get(recipe, "full")


def distillation(recipe: Recipe, teacher_network, mask_kind: Literal["all", "answer"] = "all"):
    """``(ce_weight, extra_loss)`` for :func:`vlmkit.compress.sft.finetune`."""
    if recipe in ("projector", "lora", "sft"):
        return 1.0, None

    def extra(outputs, batch) -> torch.Tensor:
        inputs = {k: v for k, v in batch.items() if k != "labels"}
        with torch.no_grad():
            teacher = teacher_network(**inputs, output_hidden_states=True)
        mask = batch["attention_mask"].float() if mask_kind == "all" else (batch["labels"] != -100).float()
        if recipe == "kd-logits":
            return kd_logits_loss(outputs.logits, teacher.logits, mask)
        loss = kd_hidden_loss(outputs.hidden_states[-1], teacher.hidden_states[-1], mask)
        return ALPHA * loss if recipe == "sft+kd-hidden" else loss

    return (1 - ALPHA if recipe == "sft+kd-hidden" else 0.0), extra


def check_teacher(student_network, teacher_network, recipe: str, student_name: str, teacher_name: str) -> None:
    """Distillation compares the two models position by position: ``kd-logits`` needs the same
    vocabulary (the logits' width), ``kd-hidden`` the same hidden size (the last hidden
    state's width; the number of layers may differ). A mismatch is a one-line error before any training,
    not an index error in the first loss."""
    from vlmkit.errors import UserError
    from vlmkit.models.chat_blocks import text_config

    student, teacher = text_config(student_network), text_config(teacher_network)  # the language model's sizes
    if recipe.endswith("kd-logits") and student.vocab_size != teacher.vocab_size:
        raise UserError(f"--recipe {recipe} compares logits over the vocabulary, but {student_name} has {student.vocab_size} tokens and "
                        f"the teacher {teacher_name} {teacher.vocab_size}; distil from the model {student_name} was pruned from")
    if recipe.endswith("kd-hidden") and student.hidden_size != teacher.hidden_size:
        raise UserError(f"--recipe {recipe} compares hidden states, but {student_name} is {student.hidden_size} wide and the teacher "
                        f"{teacher_name} {teacher.hidden_size} (pruning never changes it); distil from the model {student_name} was "
                        "pruned from")


def run_recover(
    model_name: str,
    teacher_name: str | None,
    recipe: Recipe,
    data,
    fraction: float,
    out,
    *,
    mask: Literal["all", "answer"] = "all",
    config=None,
    seed: int = 0,
):
    """Recover ``model_name`` on ``fraction`` of the conversations in ``data``; write ``out``."""
    import shutil
    from pathlib import Path

    import numpy as np

    from vlmkit.compress.sft import SFTConfig, finetune
    from vlmkit.data.conversations import load_training_data
    from vlmkit.errors import UserError
    from vlmkit.models.chat_registry import load_chat_model
    from vlmkit.runs.record import Run

    out = Path(out)
    if out.exists() and any(p.name != "work" for p in out.iterdir()):
        raise UserError(f"{out} already holds files; choose a new --out directory")
    if recipe not in RECIPES:
        raise UserError(f"unknown --recipe {recipe!r}; choose one of {', '.join(RECIPES)}")
    if recipe.startswith(("kd", "sft+kd")) and not teacher_name:
        raise UserError(f"--recipe {recipe} distils from the unpruned model: pass it with --teacher")
    conversations = load_training_data(data, seed=seed)
    count = max(1, round(fraction * len(conversations)))
    subset = [conversations[i] for i in sorted(np.random.default_rng(seed).permutation(len(conversations))[:count])]
    student = load_chat_model(model_name)
    teacher = load_chat_model(teacher_name).model if teacher_name and recipe not in ("projector", "lora", "sft") else None
    config = (config or SFTConfig()).model_copy(update={"mode": sft_mode(recipe), "seed": seed})
    if teacher is not None:
        check_teacher(student.model, teacher, recipe, model_name, teacher_name)
    ce_weight, extra = distillation(recipe, teacher, mask)
    run = Run(
        out,
        "recover",
        {
            "model": model_name,
            "teacher": teacher_name,
            "recipe": recipe,
            "data": str(data),
            "fraction": fraction,
            "mask": mask,
            "sft": config.model_dump(),
        },
        seed=seed,
    )
    with run.timer("train"):
        summary = finetune(
            student, subset, config, work=out / "work", extra_loss=extra, ce_weight=ce_weight, describe=f"recovering ({recipe})"
        )
    student.save(out)  # result.json, written last by run.finish, marks the run complete
    shutil.rmtree(out / "work", ignore_errors=True)
    result = {"recipe": recipe, "fraction": fraction, "samples": count, "steps": summary["steps"], "losses": summary["losses"]}
    from vlmkit.report.html import key_values, page, section
    from vlmkit.report.plots import lines

    run.finish(
        result,
        page(
            "vlmkit recover",
            section("Run", key_values({k: v for k, v in result.items() if k != "losses"})),
            section("Loss", lines({"training loss": summary["losses"]}, xlabel="step", ylabel="loss", legend=False)),
        ),
    )
    return out
