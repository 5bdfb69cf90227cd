"""``random:<architecture>[@seed]``: real architectures with random weights, no download.

The architectures (true layer counts, widths, heads, patch and projection sizes) are data in
``specs/architectures.json``. Texts go through a byte-level tokenizer that needs no vocabulary
file (:mod:`vlmkit.models.tokenizers`). The same name and seed always give the same weights.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources

import torch

from vlmkit.errors import ModelNotFound
from vlmkit.models import preprocess as pp
from vlmkit.models.registry import family_class
from vlmkit.models.tokenizers import clip_byte_tokenizer, siglip_byte_tokenizer

_TOKENIZERS = {"clip": clip_byte_tokenizer, "siglip": siglip_byte_tokenizer}


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


def build(arch: str, seed: int = 0, device: str = "cpu"):
    """Instantiate ``arch`` with weights drawn from ``torch.Generator`` seeded by ``seed``."""
    spec = architectures()[arch]
    family = spec["family"]
    adapter = family_class(family)
    tokenizer = _TOKENIZERS[family](spec["config"]["text_config"]["max_position_embeddings"])
    config = json.loads(json.dumps(spec["config"]))
    special = {"bos_token_id": tokenizer.bos_token_id, "eos_token_id": tokenizer.eos_token_id, "pad_token_id": tokenizer.pad_token_id}
    config["text_config"].update(special)
    hf_config = adapter.config_class(**config)
    fork = torch.random.fork_rng(devices=[])
    with fork:
        torch.manual_seed(seed)
        hf_model = adapter.hf_class(hf_config)
    return adapter(
        hf_model, tokenizer, pp.preset(spec["preprocess"]),
        name=f"random:{arch}" + (f"@{seed}" if seed else ""), fingerprint=f"random:{arch}@{seed}", device=device,
    )


def load(spec: str, device: str = "cpu"):
    arch, seed = parse(spec)
    return build(arch, seed, device=device)
