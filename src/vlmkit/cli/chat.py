"""``vlmkit chat`` and ``vlmkit export``: talk to any chat model; write one as an HF directory."""

from __future__ import annotations

from pathlib import Path

import typer

from vlmkit.models.chat_registry import DEFAULT_CHAT_MODEL

ChatModelOpt = typer.Option(
    DEFAULT_CHAT_MODEL,
    "--model",
    "-m",
    help="embedded-chat, smollm2-135m, random:<arch>[@seed], hf:<repo-or-dir>, a directory, FILE.gguf, or openai:<model>",
)
BaseUrlOpt = typer.Option(None, help="server URL for openai:<model> (default $OPENAI_BASE_URL)")
ApiKeyOpt = typer.Option(None, help="API key for openai:<model> (default $OPENAI_API_KEY)")
ConcurrencyOpt = typer.Option(8, min=1, help="requests in flight at once for openai:<model>")
DtypeOpt = typer.Option("auto", help="weights dtype for in-process models: auto, float32, bfloat16, float16")
DeviceOpt = typer.Option("cpu", help="cpu, cuda, cuda:N, mps or auto (spread over GPUs)")


TimeoutOpt = typer.Option(120.0, min=0.001, help="seconds to wait for one response of openai:<model> (retried up to 5 times)")
ResponseCacheOpt = typer.Option(
    True, "--cache/--no-cache", help="keep openai:<model> answers in the on-disk response cache (re-runs cost nothing)"
)


def chat_options(base_url: str | None, api_key: str | None, concurrency: int, timeout: float = 120.0, cache: bool = True) -> dict:
    """The served-backend options the registry passes to ``openai:`` models."""
    return {"base_url": base_url, "api_key": api_key, "concurrency": concurrency, "timeout": timeout, "cache": cache}


def chat_cmd(
    prompt: str = typer.Argument(..., help="the user's message"),
    model: str = ChatModelOpt,
    image: list[Path] = typer.Option([], "--image", "-i", help="an image to show the model (repeatable; shown before the prompt)"),
    system: str | None = typer.Option(None, help="a system message"),
    max_new_tokens: int = typer.Option(128, min=1, help="most tokens to generate"),
    temperature: float = typer.Option(0.0, min=0.0, help="0 for greedy decoding"),
    seed: int = typer.Option(0, help="sampling seed"),
    base_url: str | None = BaseUrlOpt,
    api_key: str | None = ApiKeyOpt,
    concurrency: int = ConcurrencyOpt,
    timeout: float = TimeoutOpt,
    cache: bool = ResponseCacheOpt,
    device: str = DeviceOpt,
    dtype: str = DtypeOpt,
    backend: str = typer.Option(
        "auto",
        help="auto: NumPy for a local LLaVA (CLIP + Llama) checkpoint on cpu in float32, such as embedded-chat "
        "(no torch import, fast start), else transformers; hf: always transformers; numpy: NumPy or an error",
    ),
) -> None:
    """Ask a chat model one question, optionally about images, and print its answer."""
    from vlmkit.errors import UserError
    from vlmkit.models import chat as c
    from vlmkit.models.chat_registry import load_chat_model

    for path in image:
        if not path.is_file():
            raise UserError(f"image {path} does not exist; pass an existing PNG or JPEG file to --image")
    images = [c.open_image(path) for path in image]  # unreadable files fail here, before the model loads
    conversation = ([c.system(system)] if system else []) + [c.user(*images, prompt)]
    options = chat_options(base_url, api_key, concurrency, timeout, cache)
    chat_model = load_chat_model(model, device=device, dtype=dtype, backend=backend, **options)
    (answer,) = chat_model.generate([conversation], max_new_tokens=max_new_tokens, temperature=temperature, seed=seed)
    typer.echo(answer)


def export_cmd(
    model: str = typer.Argument(..., help="a chat model name (embedded-chat, random:<arch>, ...) or a contrastive one"),
    out: Path = typer.Option(..., "--out", "-o", help="directory to write (must not exist or be empty)"),
) -> None:
    """Write a model as a Hugging Face directory (safetensors, processor, chat template) that
    transformers, `transformers serve` and vLLM load as is."""
    from vlmkit.models.export import export_model

    export_model(model, out)
    typer.echo(f"wrote {out}; load it with transformers' from_pretrained or serve it with `transformers serve`")
