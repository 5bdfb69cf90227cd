"""Build Hugging Face models without paying for weight initialisation; load weights memory-mapped.

A model that will receive its weights from a file is built with every initialiser switched off
(``transformers.initialization.no_init_weights``: torch's default inits and the model's own
``_init_weights`` are no-ops), then takes the file's tensors with ``load_state_dict(assign=True)``.
safetensors maps the file copy-on-write, so loading reads nothing up front: a page of weights
is read when a computation first touches it (the weight view of the vision tower touches only
the attention blocks), and an in-place edit copies that page instead of changing the file.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from torch import nn


def empty_model(hf_class, config) -> nn.Module:
    """``hf_class(config)`` with uninitialised parameters (fast; their values are garbage)."""
    from transformers.initialization import no_init_weights

    with no_init_weights():
        return hf_class(config)


def load_mapped(model: nn.Module, path: str | Path) -> nn.Module:
    """Give ``model`` the tensors of the safetensors file ``path``, memory-mapped, in place.

    Raises:
        ValueError: the file's tensor names or shapes differ from the model's state dict.
    """
    from safetensors.torch import load_file

    state = load_file(str(path))
    expected = model.state_dict()
    if set(state) != set(expected):
        extra, missing = sorted(set(state) - set(expected)), sorted(set(expected) - set(state))
        raise ValueError(f"{path}: tensors do not match the model (missing {missing[:3]}, unexpected {extra[:3]})")
    wrong = [name for name, tensor in state.items() if tensor.shape != expected[name].shape or tensor.dtype != expected[name].dtype]
    if wrong:
        raise ValueError(f"{path}: shape or dtype of {wrong[:3]} differs from the model")
    model.load_state_dict(state, strict=True, assign=True)
    return model


def save_weights(model: nn.Module, path: str | Path) -> Path:
    """Write ``model``'s state dict as one safetensors file, atomically."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {name: tensor.detach().contiguous() for name, tensor in model.state_dict().items()}
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        save_file(state, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_checkpoint(hf_class, config_class, directory: str | Path) -> nn.Module:
    """A ``save_pretrained`` directory's model: built without initialisation and given its single
    ``model.safetensors`` memory-mapped when the file's tensors match the model exactly (names,
    shapes, float32); otherwise (sharded or half-precision files, renamed keys) through
    ``from_pretrained``."""
    directory = Path(directory)
    weights = directory / "model.safetensors"
    if weights.is_file():
        try:
            return load_mapped(empty_model(hf_class, config_class.from_pretrained(directory)), weights)
        except ValueError:
            pass
    return hf_class.from_pretrained(directory)
