"""The weight view of chat checkpoints: every tensor of a saved directory with its *role*.

Methods that work in weight space on LMMs (merging, pruning) read and write checkpoints through
this module and never match key names themselves. A role says what a tensor does:

``vision`` (the vision tower), ``projector`` (vision -> language connector), ``embeddings``
(token embeddings), ``head`` (the LM head), ``norm`` (any normalisation layer), ``attention``
and ``mlp`` (the language model's blocks), ``bias`` is not a role but a flag (the key's last
component), ``other`` (anything else, e.g. rotary buffers).

Roles come from the model's *module classes* (an ``nn.Embedding``, a class named ``*Norm``,
``*Attention``, ``*MLP``), from ``get_input_embeddings`` / ``get_output_embeddings``, and from
the submodule names every transformers 5 LMM uses for its tower and connector (data:
``specs/chat_layouts.json``). The model is built on the meta device (no memory, no weights),
and its in-memory names are mapped to the checkpoint's names with transformers' own
save-time conversion, because transformers 5 still *saves* LLaVA-style checkpoints under their
legacy names (``language_model.model.layers...``) while it *loads* them under new ones. That
mismatch is how mergekit 0.1.5 silently drops LLaVA's language-model tensors.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import cache
from importlib import resources
from pathlib import Path

import torch
from safetensors import safe_open
from torch import Tensor, nn

from vlmkit.errors import UserError

ROLES = ("vision", "projector", "embeddings", "head", "norm", "attention", "mlp", "other")


@cache
def layouts() -> dict:
    return json.loads(resources.files("vlmkit.models").joinpath("specs/chat_layouts.json").read_text())


def read_config(directory: Path) -> dict:
    path = Path(directory) / "config.json"
    try:
        return json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise UserError(f"{directory} has no config.json; pass a save_pretrained checkpoint directory") from exc
    except (OSError, ValueError) as exc:
        raise UserError(f"{path} is not valid JSON ({type(exc).__name__}); re-export the checkpoint") from exc


def meta_model(directory: Path) -> nn.Module:
    """The checkpoint's model class built from its config on the meta device (no weights)."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForImageTextToText

    config = AutoConfig.from_pretrained(directory)
    auto = AutoModelForImageTextToText if "vision_config" in read_config(directory) else AutoModelForCausalLM
    with torch.device("meta"):
        return auto.from_config(config)


def _under(path: str, entries: list[str]) -> bool:
    """``path`` is, or lies inside, a module whose name (or dotted path suffix) is in ``entries``."""
    parts = path.split(".")
    return any(".".join(parts[i : i + entry.count(".") + 1]) == entry for entry in entries for i in range(len(parts)))


def _class_role(module: nn.Module) -> str | None:
    name = type(module).__name__
    if isinstance(module, (nn.LayerNorm, nn.GroupNorm)) or name.endswith("Norm"):
        return "norm"
    if name.endswith("Attention"):
        return "attention"
    if name.endswith(("MLP", "FeedForward")):
        return "mlp"
    return None


def module_roles(model: nn.Module) -> dict[str, str]:
    """In-memory parameter and buffer name -> role (see the module docstring)."""
    layout = layouts()
    modules = dict(model.named_modules())
    owners = {id(model.get_input_embeddings()): "embeddings"}
    head = model.get_output_embeddings()
    if head is not None:
        owners.setdefault(id(head), "head")
    roles: dict[str, str] = {}
    named = list(model.named_parameters(remove_duplicate=False)) + list(model.named_buffers(remove_duplicate=False))
    for name, _ in named:
        owner = name.rsplit(".", 1)[0]
        if _under(owner, layout["projector"]):
            roles[name] = "projector"
        elif _under(owner, layout["vision_tower"]):
            roles[name] = "vision"
        elif id(modules.get(owner)) in owners:
            roles[name] = owners[id(modules[owner])]
        else:
            chain = [owner.rsplit(".", depth)[0] for depth in range(owner.count(".") + 1)]
            roles[name] = next((r for r in (_class_role(modules[p]) for p in chain if p in modules) if r), "other")
    return roles


def checkpoint_files(directory: Path) -> list[Path]:
    """The safetensors files of a directory (sharded or not)."""
    directory = Path(directory)
    files = sorted(directory.glob("*.safetensors"))
    if not files:
        raise UserError(f"{directory} holds no .safetensors weights; pass a save_pretrained directory (vlmkit export writes one)")
    return files


def checkpoint_keys(directory: Path) -> dict[str, Path]:
    """Checkpoint key -> the file holding it."""
    keys = {}
    for path in checkpoint_files(directory):
        try:
            with safe_open(path, "pt") as handle:
                keys.update({key: path for key in handle.keys()})
        except Exception as exc:  # noqa: BLE001 - safetensors raises several types for a bad file
            raise UserError(f"{path} is not a readable safetensors file ({type(exc).__name__}); re-export the checkpoint") from exc
    return keys


def checkpoint_roles(directory: Path) -> dict[str, str]:
    """Checkpoint key -> role, for every tensor stored in ``directory``."""
    from transformers.core_model_loading import revert_weight_conversion

    model = meta_model(directory)
    roles = module_roles(model)
    names = list(model.state_dict())
    tagged = {name: torch.tensor([float(i)]) for i, name in enumerate(names)}
    saved = revert_weight_conversion(model, tagged)
    to_model = {key: names[int(value.item())] for key, value in saved.items()}
    stored = checkpoint_keys(directory)
    out = {}
    for key in stored:
        name = to_model.get(key, key)
        out[key] = roles.get(name, "other")
    return out


def is_bias(key: str) -> bool:
    return key.rsplit(".", 1)[-1] == "bias"


def iter_tensors(directory: Path, keys: list[str] | None = None) -> Iterator[tuple[str, Tensor]]:
    """Stream ``(key, tensor)`` pairs one at a time, memory-mapped from the safetensors files."""
    where = checkpoint_keys(directory)
    for key in keys if keys is not None else list(where):
        if key not in where:
            raise UserError(f"{directory} lacks tensor {key}; the checkpoints to combine must share one architecture")
        with safe_open(where[key], "pt") as handle:
            yield key, handle.get_tensor(key)


def read_tensor(directory: Path, key: str, where: dict[str, Path]) -> Tensor:
    if key not in where:
        raise UserError(f"{directory} lacks tensor {key}; the checkpoints to combine must share one architecture")
    with safe_open(where[key], "pt") as handle:
        return handle.get_tensor(key)


def linear_modules(model: nn.Module, roles: tuple[str, ...] = ("attention", "mlp")) -> list[str]:
    """Paths of the ``nn.Linear`` modules whose weights have one of ``roles`` (LoRA targets)."""
    weight_roles = module_roles(model)
    return [path for path, module in model.named_modules() if isinstance(module, nn.Linear) and weight_roles.get(f"{path}.weight") in roles]


def parameters_with_roles(model: nn.Module, roles: tuple[str, ...]) -> list[tuple[str, nn.Parameter]]:
    """The model's parameters whose role is in ``roles`` (e.g. the projector, for projector-only training)."""
    weight_roles = module_roles(model)
    return [(name, p) for name, p in model.named_parameters() if weight_roles.get(name) in roles]
