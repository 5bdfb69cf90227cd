"""``vlmkit export``: write any loadable model as a self-contained Hugging Face directory.

Chat models are written with ``save_pretrained`` (safetensors, processor, chat template), so
transformers, ``transformers serve`` and vLLM load the directory as is; contrastive models use
their own ``save``. The directory appears only when complete (written beside it, then renamed).
"""

from __future__ import annotations

from pathlib import Path

from vlmkit.errors import UserError
from vlmkit.runs.files import atomic_directory


def _is_chat_name(name: str) -> bool:
    from vlmkit.models.chat_random import architectures
    from vlmkit.models.chat_registry import NAMED_CHAT

    if name in NAMED_CHAT or name.startswith("openai:"):
        return True
    prefix, _, rest = name.partition(":")
    return prefix == "random" and rest.partition("@")[0] in architectures()


def export_model(name: str, out: Path) -> Path:
    """Write model ``name`` to directory ``out`` (which must not exist, or be empty)."""
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UserError(f"{out} already exists and is not empty; choose a new --out directory")
    if name.startswith("openai:"):
        raise UserError(f"{name} is served remotely; vlmkit cannot export its weights (export the checkpoint the server loads instead)")
    if _is_chat_name(name):
        from vlmkit.models.chat_registry import load_chat_model

        model = load_chat_model(name)
    else:
        from vlmkit.models import load_model

        model = load_model(name)
    if not hasattr(model, "save"):
        raise UserError(f"{name} cannot be exported: its backend has no weights to write")
    with atomic_directory(out) as staging:
        model.save(staging)
    return out
