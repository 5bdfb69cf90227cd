"""Hugging Face processors without torchvision: multimodal processors minus their video slot.

Several LMM processors (LLaVA-OneVision, Qwen2-VL/2.5-VL, SmolVLM, InternVL...) take a video
processor beside the image processor and the tokenizer, and transformers' video processors need
torchvision: without it the processor can neither be built nor loaded (``AutoProcessor`` fails
with "Can't load video processor"). vlmkit sends images only, so :func:`without_video` derives a
subclass whose ``__init__`` omits ``video_processor`` and keeps every other named argument (so
``save_pretrained`` still writes options such as ``num_image_tokens``). The subclass keeps the
base class's name, so a saved directory names the real processor class and loads anywhere
(transformers, ``transformers serve``, vLLM); :func:`load_processor` loads such a directory,
picking the video-free variant only where torchvision is missing. Nothing here knows a family:
the video slot is found from the processor's constructor signature.
"""

from __future__ import annotations

import inspect
import json
from functools import cache
from pathlib import Path

from vlmkit.errors import UnsupportedError

VIDEO_SLOT = "video_processor"


class AbsentVideoProcessor:
    """Stands in for the missing video processor: every setting reads as ``None``.

    Some processors read video defaults (frame count, fps) while rendering any chat template,
    video or not; this answers them without pretending to process videos."""

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        return None

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        return "AbsentVideoProcessor()"


def has_video_slot(processor_class: type) -> bool:
    return VIDEO_SLOT in inspect.signature(processor_class.__init__).parameters


@cache
def without_video(processor_class: type) -> type:
    """``processor_class`` minus its video slot (the class itself when it has none).

    The subclass's ``__init__`` takes the base's parameters without ``video_processor`` and
    passes ``None`` for it. It is generated as real code, not a ``*args`` wrapper: transformers
    reads a processor's parts from its ``__init__`` signature and the options it may pass back
    on loading from ``__init__.__code__``'s argument names.
    """
    if not has_video_slot(processor_class):
        return processor_class
    kept = [p for name, p in inspect.signature(processor_class.__init__).parameters.items() if name not in ("self", VIDEO_SLOT)]
    header, call, defaults = [], [], {}
    for p in kept:
        if p.kind is p.VAR_POSITIONAL or p.kind is p.POSITIONAL_ONLY:
            raise TypeError(f"{processor_class.__name__}.__init__ takes positional-only arguments; vlmkit cannot drop its video slot")
        if p.kind is p.VAR_KEYWORD:
            header.append(f"**{p.name}")
            call.append(f"**{p.name}")
            continue
        if p.kind is p.KEYWORD_ONLY and "*" not in header:
            header.append("*")
        if p.default is p.empty:
            header.append(p.name)
        else:
            defaults[p.name] = p.default
            header.append(f"{p.name}=_defaults[{p.name!r}]")
        call.append(f"{p.name}={p.name}")
    source = (
        f"def __init__(self, {', '.join(header)}):\n"
        f"    _base.__init__(self, {VIDEO_SLOT}=None, {', '.join(call)})\n"
    )
    namespace = {"_base": processor_class, "_defaults": defaults}
    exec(compile(source, f"<{processor_class.__name__} without video>", "exec"), namespace)  # noqa: S102 - generated from a signature
    return type(
        processor_class.__name__,
        (processor_class, _positional_video_dropper(processor_class)),
        {
            "__init__": namespace["__init__"],
            VIDEO_SLOT: AbsentVideoProcessor(),
            "__module__": __name__,
            "__doc__": f"{processor_class.__name__} without its video processor (see vlmkit.models.hf_processors).",
        },
    )


def _positional_video_dropper(processor_class: type) -> type:
    """A class that sits between ``processor_class`` and ``ProcessorMixin`` in the method
    resolution order and removes the video argument the base passes on to
    ``ProcessorMixin.__init__`` (by position: the parts are passed positionally, in signature order)."""
    from transformers.processing_utils import ProcessorMixin

    index = processor_class.get_attributes().index(VIDEO_SLOT)

    class DropVideoArgument(ProcessorMixin):
        def __init__(self, *args, **kwargs):
            args = list(args)
            if len(args) > index:
                del args[index]
            kwargs.pop(VIDEO_SLOT, None)
            ProcessorMixin.__init__(self, *args, **kwargs)

    return DropVideoArgument


def torchvision_available() -> bool:
    from transformers.utils import is_torchvision_available

    return is_torchvision_available()


def saved_processor_class(directory: Path) -> type | None:
    """The processor class a ``save_pretrained`` directory names, or ``None``."""
    from transformers.models.auto.processing_auto import processor_class_from_name

    for filename in ("processor_config.json", "preprocessor_config.json", "tokenizer_config.json"):
        path = Path(directory) / filename
        if path.is_file():
            name = json.loads(path.read_text()).get("processor_class")
            if name:
                return processor_class_from_name(name)
    return None


def load_processor(directory: Path):
    """``AutoProcessor.from_pretrained(directory)``, through :func:`without_video` when the
    saved processor has a video slot and torchvision is missing."""
    from transformers import AutoProcessor

    processor_class = saved_processor_class(directory)
    if processor_class is not None and has_video_slot(processor_class) and not torchvision_available():
        return without_video(processor_class).from_pretrained(directory)
    try:
        return AutoProcessor.from_pretrained(directory)
    except ImportError as exc:  # an image processor or processor that exists only with torchvision
        if "torchvision" not in str(exc).lower():
            raise
        import torch

        raise UnsupportedError(
            f"{directory}: this checkpoint's processor ({getattr(processor_class, '__name__', 'unknown')}) needs torchvision; "
            f"install the torchvision release that matches torch {torch.__version__.split('+')[0]}"
        ) from exc
