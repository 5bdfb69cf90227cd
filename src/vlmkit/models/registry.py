"""The explicit registry of model sources and families.

A model name is resolved in two steps:

1. its *source* by prefix: ``random:<arch>[@seed]``, ``hf:<repo-or-dir>``, or a plain local
   directory;
2. its *family* (the adapter class) from the architecture spec or the checkpoint's
   ``config.json`` ``model_type``.

Adding a family is one entry in :data:`~vlmkit.models.families.FAMILIES` (and
:data:`~vlmkit.models.families.MODEL_TYPES` for checkpoints).
Entries are ``"module:attribute"`` strings imported on first use; importing this module
registers and imports nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from vlmkit.errors import ModelNotFound
from vlmkit.models.families import FAMILIES, MODEL_TYPES, family_class, resolve

__all__ = ["DEFAULT_MODEL", "FAMILIES", "MODEL_TYPES", "NAMED", "SOURCES", "family_class", "list_models", "load_model", "shipped_companion"]

#: names that load a checkpoint shipped inside the package -> (loader, description).
NAMED: dict[str, tuple[str, str]] = {
    "embedded": ("vlmkit.models.embedded:load", "shipped: CLIP ViT trained on the shapes world, frozen MiniLM text tower"),
    "embedded-biased": ("vlmkit.models.embedded:load", "shipped: the same, trained where shape is tied to background colour (p=0.95)"),
    "embedded-textbiased": (
        "vlmkit.models.embedded:load",
        "shipped: embedded's image tower, frozen, with a text adapter trained where shape is tied to background (p=0.95)",
    ),
}

#: name prefix -> loader ``(spec, device) -> model``.
SOURCES: dict[str, str] = {
    "random": "vlmkit.models.random_models:load",
    "hf": "vlmkit.models.hf_loading:load",
}

#: The model every command uses when ``--model`` is not given.
DEFAULT_MODEL = "embedded"


def shipped_companion(model, name: str) -> Path | None:
    """A file or folder shipped beside a named model's weights (e.g. ``"sae"``), or ``None``
    when the model is not a shipped one or ships no such thing. ``model`` is a loaded model or
    its name, so options can be checked before anything is loaded."""
    model_name = model if isinstance(model, str) else model.name
    if model_name not in NAMED:
        return None
    from vlmkit.models.embedded import shipped_dir

    path = shipped_dir(model_name) / name
    return path if path.exists() else None


def load_model(name: str | None = None, *, device: str = "cpu"):
    """Load a contrastive model by name (see :mod:`vlmkit.models` for the grammar).

    Raises:
        ModelNotFound: the name matches no source, or its weights cannot be found.
    """
    name = name or DEFAULT_MODEL
    if name in NAMED:
        return resolve(NAMED[name][0])(name, device=device)
    prefix, sep, rest = name.partition(":")
    if sep and prefix in SOURCES:
        return resolve(SOURCES[prefix])(rest, device=device)
    if Path(name).expanduser().is_dir():
        return resolve(SOURCES["hf"])(name, device=device)
    raise ModelNotFound(
        f"unknown model {name!r}; use {', '.join(NAMED)}, random:<architecture>, hf:<repo-or-dir> or a local checkpoint directory "
        "(`vlmkit models` lists them)"
    )


@dataclass(frozen=True)
class ModelInfo:
    """One row of ``vlmkit models``."""

    name: str
    family: str
    supports: tuple[str, ...]
    description: str


def list_models() -> list[ModelInfo]:
    """Every name that loads without a download, plus the patterns that load checkpoints."""
    from vlmkit.models.random_models import architectures

    rows = [ModelInfo(name, "embedded", tuple(sorted(family_class("embedded").supports)), text) for name, (_, text) in NAMED.items()]
    for arch, spec in architectures().items():
        supports = tuple(sorted(family_class(spec["family"]).supports))
        rows.append(ModelInfo(f"random:{arch}", spec["family"], supports, f"random weights, architecture of {spec['reference']}"))
    for family in sorted(FAMILIES):
        supports = tuple(sorted(family_class(family).supports))
        rows.append(ModelInfo(f"hf:<repo-or-dir> ({family})", family, supports,
                              f"a Hugging Face {family} checkpoint from the hub cache or a local directory"))
    return rows
