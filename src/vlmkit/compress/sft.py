"""Supervised fine-tuning of a chat model on conversations: LoRA, full, or projector only.

Used to train the domain experts of the data-mixture study (arXiv 2602.04937: LoRA rank 16 on
every linear layer of the language model, projector trainable, vision tower frozen) and by the
recovery recipes of pruning (arXiv 2507.20749), which add a distillation term through
``extra_loss``. The loss is the cross-entropy of assistant tokens only
(:meth:`HFChatModel.training_batch`). Training is seeded and resumable: the trainable tensors
and the optimizer state are checkpointed every ``save_every`` steps, and a restarted run
continues from the last checkpoint on the same data order. LoRA adapters are merged into dense
weights at the end, so the result is a plain checkpoint.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from pydantic import BaseModel, Field

from vlmkit.errors import UserError
from vlmkit.models import chat_weights as cw
from vlmkit.models.chat import Message
from vlmkit.runs.checkpoint import load_training_state, save_training_state
from vlmkit.runs.options import OPTIONS_CONFIG
from vlmkit.runs.progress import track

Mode = Literal["lora", "full", "projector"]
#: roles each mode trains (LoRA adds adapters on attention and MLP linears and trains these too)
TRAINED_ROLES = {
    "lora": ("projector",),
    "full": ("projector", "attention", "mlp", "norm", "embeddings", "head"),
    "projector": ("projector",),
}


class SFTConfig(BaseModel):
    """Fine-tuning hyper-parameters (defaults: small-data settings that work on the world)."""

    model_config = OPTIONS_CONFIG
    mode: Mode = "lora"
    lr: float = Field(2e-4, gt=0)
    epochs: float = Field(1.0, gt=0)
    max_steps: int | None = Field(None, ge=1)
    batch_size: int = Field(8, ge=1)
    lora_rank: int = Field(16, ge=1)
    lora_alpha: float = Field(32.0, gt=0)
    warmup: float = Field(0.03, ge=0, lt=1)
    seed: int = Field(0, ge=0)
    save_every: int = Field(50, ge=1)


def _attach(model, config: SFTConfig) -> tuple[torch.nn.Module, list[torch.nn.Parameter]]:
    """Set ``requires_grad`` (and wrap with LoRA) for ``config.mode``; returns the module to
    train and its trainable parameters."""
    network = model.model
    for p in network.parameters():
        p.requires_grad_(False)
    if config.mode == "lora":
        from peft import LoraConfig, get_peft_model

        targets = cw.linear_modules(network)
        network = get_peft_model(
            network, LoraConfig(r=config.lora_rank, lora_alpha=config.lora_alpha, target_modules=targets, lora_dropout=0.0)
        )
        for _, p in cw.parameters_with_roles(network.base_model.model, TRAINED_ROLES["lora"]):
            p.requires_grad_(True)
    else:
        for _, p in cw.parameters_with_roles(network, TRAINED_ROLES[config.mode]):
            p.requires_grad_(True)
    return network, [p for p in network.parameters() if p.requires_grad]


def finetune(
    model,
    conversations: Sequence[list[Message]],
    config: SFTConfig,
    *,
    work: Path | None = None,
    extra_loss: Callable[[object, dict], torch.Tensor] | None = None,
    ce_weight: float = 1.0,
    describe: str = "fine-tuning",
) -> dict:
    """Fine-tune ``model`` (an :class:`HFChatModel`, changed in place) on ``conversations``.

    Args:
        extra_loss: ``(outputs, batch) -> loss`` added to the cross-entropy (distillation).
        ce_weight: weight of the cross-entropy (0 for distillation alone).
        work: folder for the resumable checkpoint (``sft-state.safetensors``).

    Returns:
        ``{"steps", "losses", "trainable_parameters"}``.
    """
    if not conversations:
        raise UserError("no training conversations; check the data file")
    torch.manual_seed(config.seed)
    network, trainable = _attach(model, config)
    steps_per_epoch = math.ceil(len(conversations) / config.batch_size)
    total = config.max_steps or max(1, round(config.epochs * steps_per_epoch))
    optimizer = torch.optim.AdamW(trainable, lr=config.lr, weight_decay=0.0)
    warmup = max(1, int(config.warmup * total))
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(1.0, s / total)))
    )
    names = [n for n, p in network.named_parameters() if p.requires_grad]
    state_path = Path(work) / "sft-state.safetensors" if work else None
    start = 0
    if state_path is not None and state_path.is_file():
        tensors, start = load_training_state(state_path, optimizer)
        with torch.no_grad():
            for name, p in network.named_parameters():
                if name in tensors:
                    p.copy_(tensors[name])
        with warnings.catch_warnings():  # fast-forwarding the schedule before any optimizer step
            warnings.simplefilter("ignore", UserWarning)
            for _ in range(start):
                schedule.step()
    rng = np.random.default_rng(config.seed)
    order = np.concatenate([rng.permutation(len(conversations)) for _ in range(math.ceil(total / steps_per_epoch) + 1)])
    network.train()
    losses = []
    for step in track(range(start, total), describe, total=total - start):
        indices = order[step * config.batch_size : (step + 1) * config.batch_size]
        try:
            batch = model.training_batch([conversations[i] for i in indices])
        except UserError as exc:  # e.g. an image that no longer decodes: the saved state lets the run resume
            if state_path is not None and state_path.is_file():
                exc.resumable = state_path
            raise
        outputs = network(**batch, output_hidden_states=extra_loss is not None)
        loss = ce_weight * outputs.loss + (extra_loss(outputs, batch) if extra_loss is not None else 0.0)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        optimizer.step()
        schedule.step()
        losses.append(loss.item())
        if state_path is not None and ((step + 1) % config.save_every == 0 or step + 1 == total):
            state_path.parent.mkdir(parents=True, exist_ok=True)
            params = dict(network.named_parameters())
            save_training_state(state_path, {n: params[n] for n in names}, optimizer, step + 1)
    network.eval()
    if config.mode == "lora":
        model.model = network.merge_and_unload()
    for p in model.model.parameters():
        p.requires_grad_(False)
    return {"steps": total, "resumed_at": start, "losses": losses, "trainable_parameters": int(sum(p.numel() for p in trainable))}
