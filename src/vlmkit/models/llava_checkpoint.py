"""Reading a LLaVA checkpoint for :mod:`vlmkit.models.llava_numpy`: ``config.json`` parsed into
the specs the NumPy network supports, and the safetensors weights (through ``safetensors.numpy``)
taken by name and shape.

Anything outside the supported set raises :class:`~vlmkit.errors.UnsupportedError`, so the chat
registry can fall back to transformers. Nothing here imports torch.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vlmkit.errors import UnsupportedError
from vlmkit.models.numpy_ops import F32, activation

# -- configuration -----------------------------------------------------------------------------


@dataclass(frozen=True)
class VisionSpec:
    hidden: int
    heads: int
    layers: int
    patch: int
    image_size: int
    channels: int
    eps: float
    act: str


@dataclass(frozen=True)
class TextSpec:
    hidden: int
    heads: int
    kv_heads: int
    head_dim: int
    layers: int
    vocab: int
    eps: float
    act: str
    rope_theta: float
    rope_factor: float  # linear RoPE scaling: positions divided by this (1 for "default")
    attention_bias: bool
    mlp_bias: bool


@dataclass(frozen=True)
class LlavaSpec:
    """What the NumPy network needs from a LLaVA ``config.json``."""

    vision: VisionSpec
    text: TextSpec
    feature_layers: tuple[int, ...]
    feature_concat: bool  # vision_feature_layer was a list
    keep_cls: bool  # strategy "full"
    projector_act: str
    projector_bias: bool
    tied: bool
    image_token_id: int
    image_tokens: int  # features per image


def _need(config: dict, key: str, where: str):
    if key not in config:
        raise UnsupportedError(f"{where} has no {key!r}; the NumPy LLaVA path needs it")
    return config[key]


def _rope(text: dict) -> tuple[float, float]:
    params = text.get("rope_parameters") or {**(text.get("rope_scaling") or {}), "rope_theta": text.get("rope_theta", 10000.0)}
    kind = params.get("rope_type", params.get("type", "default"))
    if params.get("partial_rotary_factor", 1.0) != 1.0:
        raise UnsupportedError("partial rotary embeddings are not implemented in NumPy")
    theta = float(params.get("rope_theta", text.get("rope_theta", 10000.0)))
    if kind == "default":
        return theta, 1.0
    if kind == "linear":
        return theta, float(params["factor"])
    raise UnsupportedError(f"RoPE type {kind!r} is not implemented in NumPy (default and linear are)")


def parse_config(config: dict) -> LlavaSpec:
    """A :class:`LlavaSpec` from a ``config.json`` dict; :class:`UnsupportedError` for anything
    but a LLaVA with a CLIP vision tower and a Llama text model in float32."""
    if config.get("model_type") != "llava":
        raise UnsupportedError(f"model_type {config.get('model_type')!r} is not llava")
    vision, text = config.get("vision_config") or {}, config.get("text_config") or {}
    if vision.get("model_type") != "clip_vision_model":
        raise UnsupportedError(f"vision tower {vision.get('model_type')!r} is not clip_vision_model")
    if text.get("model_type") != "llama":
        raise UnsupportedError(f"text model {text.get('model_type')!r} is not llama")
    for part in (config, vision, text):
        dtype = part.get("dtype", part.get("torch_dtype")) or "float32"
        if dtype != "float32":
            raise UnsupportedError(f"weights in {dtype}; the NumPy path runs float32 checkpoints")
    if text.get("pretraining_tp", 1) != 1:
        raise UnsupportedError("pretraining_tp > 1 is not implemented")
    v = VisionSpec(
        hidden=_need(vision, "hidden_size", "vision_config"),
        heads=_need(vision, "num_attention_heads", "vision_config"),
        layers=_need(vision, "num_hidden_layers", "vision_config"),
        patch=_need(vision, "patch_size", "vision_config"),
        image_size=_need(vision, "image_size", "vision_config"),
        channels=vision.get("num_channels", 3),
        eps=vision.get("layer_norm_eps", 1e-5),
        act=vision.get("hidden_act", "quick_gelu"),
    )
    heads = _need(text, "num_attention_heads", "text_config")
    hidden = _need(text, "hidden_size", "text_config")
    theta, factor = _rope(text)
    t = TextSpec(
        hidden=hidden,
        heads=heads,
        kv_heads=text.get("num_key_value_heads") or heads,
        head_dim=text.get("head_dim") or hidden // heads,
        layers=_need(text, "num_hidden_layers", "text_config"),
        vocab=_need(text, "vocab_size", "text_config"),
        eps=text.get("rms_norm_eps", 1e-6),
        act=text.get("hidden_act", "silu"),
        rope_theta=theta,
        rope_factor=factor,
        attention_bias=bool(text.get("attention_bias", False)),
        mlp_bias=bool(text.get("mlp_bias", False)),
    )
    for name in (v.act, t.act, config.get("projector_hidden_act", "gelu")):
        activation(name)
    layer = config.get("vision_feature_layer", -2)
    layers = tuple(layer) if isinstance(layer, list) else (layer,)
    for index in layers:
        if not -(v.layers + 1) <= index <= v.layers:
            raise UnsupportedError(f"vision_feature_layer {index} is outside the tower's {v.layers + 1} hidden states")
    strategy = config.get("vision_feature_select_strategy", "default")
    if strategy not in ("default", "full"):
        raise UnsupportedError(f"vision_feature_select_strategy {strategy!r} is not default or full")
    patches = (v.image_size // v.patch) ** 2
    image_token_id = config.get("image_token_id", config.get("image_token_index", 32000))
    return LlavaSpec(
        vision=v,
        text=t,
        feature_layers=layers,
        feature_concat=isinstance(layer, list),
        keep_cls=strategy == "full",
        projector_act=config.get("projector_hidden_act", "gelu"),
        projector_bias=bool(config.get("multimodal_projector_bias", True)),
        tied=bool(config.get("tie_word_embeddings") or text.get("tie_word_embeddings")),
        image_token_id=int(image_token_id),
        image_tokens=patches + (1 if strategy == "full" else 0),
    )


# -- weights -----------------------------------------------------------------------------------

VISION_PREFIXES = ("model.vision_tower.vision_model.", "vision_tower.vision_model.", "model.vision_tower.", "vision_tower.")
TEXT_PREFIXES = ("model.language_model.", "language_model.model.", "language_model.")
PROJECTOR_PREFIXES = ("model.multi_modal_projector.", "multi_modal_projector.")
HEAD_KEYS = ("lm_head.weight", "language_model.lm_head.weight")
IGNORED = ("post_layernorm.weight", "post_layernorm.bias", "position_ids")


def read_weights(directory: Path) -> dict[str, np.ndarray]:
    """Every tensor of the directory's safetensors files, as float32 NumPy arrays."""
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    index = directory / "model.safetensors.index.json"
    if index.is_file():
        try:
            files = sorted({directory / name for name in json.loads(index.read_text())["weight_map"].values()})
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:  # a damaged index: transformers reports it
            raise UnsupportedError(f"{index.name} cannot be read ({type(exc).__name__})") from exc
    else:
        files = sorted(directory.glob("*.safetensors"))
    if not files:
        raise UnsupportedError(f"{directory} has no safetensors weights")
    weights: dict[str, np.ndarray] = {}
    for path in files:
        try:
            weights.update(load_file(path))
        except (SafetensorError, TypeError, ValueError, OSError) as exc:  # bf16 has no NumPy dtype; damaged files
            raise UnsupportedError(f"{path.name} cannot be read with safetensors.numpy ({type(exc).__name__})") from exc
    for key, value in weights.items():
        if value.dtype != F32:
            raise UnsupportedError(f"weight {key} is {value.dtype}; the NumPy path runs float32 checkpoints")
    return weights


def split_prefix(weights: dict[str, np.ndarray], prefixes: tuple[str, ...], probe: str) -> tuple[str, dict[str, np.ndarray]]:
    for prefix in prefixes:
        if prefix + probe in weights:
            return prefix, {k[len(prefix) :]: v for k, v in weights.items() if k.startswith(prefix)}
    raise UnsupportedError(f"no weight named like {prefixes[0]}{probe}")


class WeightTaker:
    """Reads named tensors once each, so unknown leftovers can be refused."""

    def __init__(self, tensors: dict[str, np.ndarray], where: str):
        self.tensors, self.where, self.used = tensors, where, set()

    def __call__(self, key: str, shape: tuple[int, ...] | None = None, *, transpose: bool = False) -> np.ndarray:
        if key not in self.tensors:
            raise UnsupportedError(f"{self.where} has no weight {key!r}")
        self.used.add(key)
        value = self.tensors[key]
        if shape is not None and value.shape != shape:
            raise UnsupportedError(f"{self.where} weight {key} has shape {value.shape}, the config says {shape}")
        return np.ascontiguousarray(value.T) if transpose else value

    def optional(self, key: str, present: bool, shape: tuple[int, ...]) -> np.ndarray | None:
        return self(key, shape) if present else None

    def check_all_used(self) -> None:
        left = [k for k in self.tensors if k not in self.used and not k.endswith(IGNORED)]
        if left:
            raise UnsupportedError(f"{self.where} has weights the NumPy path does not know: {', '.join(sorted(left)[:3])}")


def linear_weights(take: WeightTaker, name: str, d_in: int, d_out: int, bias: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """``(W^T (d_in, d_out), b (d_out,) or None)`` of an ``nn.Linear``."""
    return take(f"{name}.weight", (d_out, d_in), transpose=True), take.optional(f"{name}.bias", bias, (d_out,))
