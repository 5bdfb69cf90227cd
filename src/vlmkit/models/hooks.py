"""Named hook points on a model's modules, read with forward hooks (never by patching ``forward``).

A hook point is a dotted name, in the spirit of TransformerLens (``blocks.3.attn.z``), bound to a
module and to whether its input or output is read. :func:`capture` registers the hooks for the
requested names, runs the caller's code, and returns what was read.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import Tensor, nn


@dataclass(frozen=True)
class HookPoint:
    """Read the ``"input"`` or ``"output"`` of ``module``, optionally reshaped by ``transform``."""

    module: nn.Module
    read: str = "output"
    transform: Callable[[Tensor], Tensor] | None = None


def _first_tensor(value) -> Tensor:
    if isinstance(value, Tensor):
        return value
    if isinstance(value, (tuple, list)) and value and isinstance(value[0], Tensor):
        return value[0]
    if hasattr(value, "last_hidden_state"):
        return value.last_hidden_state
    raise TypeError(f"cannot read a tensor from {type(value).__name__}")


@contextmanager
def capture(points: Mapping[str, HookPoint], names: Sequence[str]) -> Iterator[dict[str, Tensor]]:
    """Collect activations at ``names`` while the ``with`` body runs the model.

    Raises:
        KeyError: a name that is not a hook point of this model, listing the valid patterns.
    """
    unknown = [n for n in names if n not in points]
    if unknown:
        raise KeyError(f"unknown hook point(s) {unknown}; valid: {describe(points)}")
    store: dict[str, Tensor] = {}
    handles = []
    for name in names:
        point = points[name]

        def save(value, name=name, point=point):
            tensor = _first_tensor(value).detach()
            store[name] = point.transform(tensor) if point.transform else tensor

        if point.read == "input":
            handles.append(point.module.register_forward_pre_hook(lambda _m, args, save=save: save(args)))
        else:
            handles.append(point.module.register_forward_hook(lambda _m, _a, out, save=save: save(out)))
    try:
        yield store
    finally:
        for handle in handles:
            handle.remove()


def describe(points: Mapping[str, HookPoint]) -> str:
    """Collapse ``blocks.0.x, blocks.1.x, ...`` into ``blocks.{i}.x`` for error messages."""
    import re

    patterns = sorted({re.sub(r"\.\d+\.", ".{i}.", name) for name in points})
    return ", ".join(patterns)


@torch.no_grad()
def run_and_capture(points: Mapping[str, HookPoint], names: Sequence[str], fn: Callable[[], object]) -> dict[str, Tensor]:
    """Run ``fn()`` under :func:`capture` and return the activations."""
    with capture(points, names) as store:
        fn()
    return store
