"""``random:<architecture>[@seed]``: real architectures with random weights, no download.

The architectures (true layer counts, widths, heads, patch and projection sizes) are data in
``specs/architectures.json``. Texts go through a byte-level tokenizer that needs no vocabulary
file (:mod:`vlmkit.models.tokenizers`). The same name and seed always give the same weights.

Drawing the weights of a large architecture takes seconds to minutes (ViT-L/14: 428M parameters,
each initialised twice by torch and transformers), so architectures above
:data:`CACHE_MIN_PARAMETERS` keep their drawn weights in the vlmkit cache
(``$VLMKIT_CACHE/random-weights/``, one safetensors file per architecture, seed and library
versions). Later loads build the model without initialisation and map that file
(:mod:`vlmkit.models.fast_init`): the weights are bit-identical to drawing them again, and only
the pages a command touches are read. ``VLMKIT_RANDOM_WEIGHTS_CACHE=0`` turns the cache off.
"""

from __future__ import annotations

import json
import os
from functools import cache
from importlib import resources
from pathlib import Path

import torch

from vlmkit.errors import ModelNotFound
from vlmkit.models import preprocess as pp
from vlmkit.models.families import family_class

#: family -> byte-level tokenizer factory in vlmkit.models.tokenizers (imported when a model is built: it imports transformers)
_TOKENIZERS = {"clip": "clip_byte_tokenizer", "siglip": "siglip_byte_tokenizer"}

#: architectures with at least this many parameters keep their drawn weights in the cache
CACHE_MIN_PARAMETERS = 50_000_000


@cache
def architectures() -> dict[str, dict]:
    text = resources.files("vlmkit.models").joinpath("specs/architectures.json").read_text()
    return {k: v for k, v in json.loads(text).items() if not k.startswith("_")}


def parse(spec: str) -> tuple[str, int]:
    """``"clip-vit-b32@3"`` -> ``("clip-vit-b32", 3)``; the seed defaults to 0."""
    arch, _, seed = spec.partition("@")
    if arch not in architectures():
        raise ModelNotFound(f"unknown random architecture {arch!r}; choose one of: {', '.join(architectures())}")
    if seed and not seed.isdigit():
        raise ModelNotFound(f"bad seed {seed!r} in random:{spec}; write random:{arch}@<integer>")
    return arch, int(seed or 0)


def weights_file(arch: str, seed: int) -> Path | None:
    """Where the drawn weights of ``arch@seed`` are cached, or ``None`` when caching is off.

    The name holds the torch and transformers versions: either may change the random streams
    or the initialisers, and then the weights are drawn (and cached) again.
    """
    if os.environ.get("VLMKIT_RANDOM_WEIGHTS_CACHE", "1") == "0":
        return None
    from importlib.metadata import version

    from vlmkit.runs.cache import default_cache_dir

    tag = f"torch{torch.__version__}-transformers{version('transformers')}"  # as transformers.__version__, without importing it
    return default_cache_dir() / "random-weights" / f"{arch}@{seed}-{tag}.safetensors"


def _draw(adapter, hf_config, seed: int):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return adapter.hf_class(hf_config)


def build(arch: str, seed: int = 0, device: str = "cpu"):
    """Instantiate ``arch`` with weights drawn from ``torch.Generator`` seeded by ``seed``
    (read back from the weight cache when they were drawn before)."""
    from vlmkit.models import tokenizers
    from vlmkit.models.fast_init import empty_model, load_mapped, save_weights

    spec = architectures()[arch]
    family = spec["family"]
    adapter = family_class(family)
    tokenizer = getattr(tokenizers, _TOKENIZERS[family])(spec["config"]["text_config"]["max_position_embeddings"])
    config = json.loads(json.dumps(spec["config"]))
    special = {"bos_token_id": tokenizer.bos_token_id, "eos_token_id": tokenizer.eos_token_id, "pad_token_id": tokenizer.pad_token_id}
    config["text_config"].update(special)
    hf_config = adapter.config_class(**config)
    path = weights_file(arch, seed)
    if path is not None and path.is_file():
        try:
            hf_model = load_mapped(empty_model(adapter.hf_class, hf_config), path)
        except Exception:  # a damaged or foreign file: draw again and replace it
            hf_model = None
    else:
        hf_model = None
    if hf_model is None:
        hf_model = _draw(adapter, hf_config, seed)
        if path is not None and sum(p.numel() for p in hf_model.parameters()) >= CACHE_MIN_PARAMETERS:
            try:
                save_weights(hf_model, path)
            except OSError:
                pass  # a read-only or full cache only costs speed
    return adapter(
        hf_model, tokenizer, pp.preset(spec["preprocess"]),
        name=f"random:{arch}" + (f"@{seed}" if seed else ""), fingerprint=f"random:{arch}@{seed}", device=device,
    )


def load(spec: str, device: str = "cpu"):
    """``build``, deferred when the weights are cached and the model stays on the CPU: the
    network is built on first use, and the vision weight view is read from the cached file
    without building it (:class:`~vlmkit.models.deferred.DeferredModel`)."""
    arch, seed = parse(spec)
    path = weights_file(arch, seed)
    if path is None or not path.is_file() or device != "cpu":
        return build(arch, seed, device=device)
    from vlmkit.models.deferred import DeferredModel

    spec_ = architectures()[arch]
    adapter = family_class(spec_["family"])
    return DeferredModel(lambda: build(arch, seed, device=device), path, adapter, spec_["config"]["vision_config"],
                         name=f"random:{arch}" + (f"@{seed}" if seed else ""), fingerprint=f"random:{arch}@{seed}",
                         preprocess=pp.preset(spec_["preprocess"]))
