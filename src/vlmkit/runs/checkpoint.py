"""Resumable training state in one safetensors file: model tensors, optimizer state, step.

Written to a temporary file and renamed, so an interruption never leaves a torn checkpoint.
Used by every trainer (the embedded model, sparse autoencoders) for exact resumption.
"""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch import Tensor


def save_training_state(path: Path, model_state: dict[str, Tensor], optimizer: torch.optim.Optimizer, step: int) -> None:
    tensors = {f"model.{k}": v.detach().contiguous() for k, v in model_state.items()}
    for index, state in optimizer.state_dict()["state"].items():
        for name, value in state.items():
            tensors[f"opt.{index}.{name}"] = torch.as_tensor(value).contiguous()
    tmp = Path(path).with_suffix(".tmp")
    save_file(tensors, tmp, metadata={"step": str(step)})
    tmp.replace(path)


def load_training_state(path: Path, optimizer: torch.optim.Optimizer) -> tuple[dict[str, Tensor], int]:
    """Restore ``optimizer`` in place; return the model tensors and the step to resume from."""
    tensors = load_file(path)
    state: dict[int, dict] = {}
    for key, value in tensors.items():
        if key.startswith("opt."):
            _, index, name = key.split(".", 2)
            state.setdefault(int(index), {})[name] = value
    optimizer.load_state_dict({"state": state, "param_groups": optimizer.state_dict()["param_groups"]})
    with safe_open(path, "pt") as handle:
        step = int(handle.metadata()["step"])
    return {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}, step
