"""A LLaVA network (CLIP vision tower, projector, Llama language model) in NumPy only.

The numerical half of :mod:`vlmkit.models.chat_numpy`: from a Hugging Face
``LlavaForConditionalGeneration`` directory (read by :mod:`vlmkit.models.llava_checkpoint`) it
computes what transformers computes, in float32, without torch:

- the CLIP vision tower (Radford et al., "Learning Transferable Visual Models From Natural Language
  Supervision", ICML 2021): patch embedding, class token, position embeddings, the pre-layernorm,
  pre-LN encoder blocks; the hidden states of ``vision_feature_layer`` (an index or a list, whose
  states are concatenated), with the class token dropped for ``vision_feature_select_strategy``
  ``"default"`` and kept for ``"full"``;
- the two-layer projector of LLaVA (Liu et al., "Visual Instruction Tuning", NeurIPS 2023;
  ``linear_2(act(linear_1(x)))``, biases per ``multimodal_projector_bias``);
- the Llama decoder (Touvron et al., "LLaMA", arXiv 2302.13971): RMSNorm, rotary position
  embeddings (Su et al., "RoFormer", arXiv 2104.09864; ``default`` and ``linear`` scaling),
  grouped-query attention with a key/value cache, the gated MLP, tied or separate output
  embeddings.

Configurations outside this set (another vision or text family, other RoPE scalings, bf16
weights, unknown weight names) raise :class:`~vlmkit.errors.UnsupportedError`: the chat registry
then loads the checkpoint through transformers instead (``backend="auto"``) or reports it
(``backend="numpy"``). Nothing here imports torch.
"""

from __future__ import annotations

import numpy as np

from vlmkit.errors import UnsupportedError
from vlmkit.models.llava_checkpoint import (
    HEAD_KEYS,
    PROJECTOR_PREFIXES,
    TEXT_PREFIXES,
    VISION_PREFIXES,
    LlavaSpec,
    WeightTaker,
    linear_weights,
    split_prefix,
)
from vlmkit.models.numpy_ops import F32, NEG, activation, layer_norm, rms_norm, softmax


def _apply(x: np.ndarray, linear: tuple[np.ndarray, np.ndarray | None]) -> np.ndarray:
    """``x @ W^T + b`` over the last axis, as one matrix product (a stacked ``x`` would run one
    small product per leading index)."""
    weight, bias = linear
    y = (x.reshape(-1, x.shape[-1]) @ weight).reshape(*x.shape[:-1], weight.shape[1])
    if bias is not None:
        y += bias
    return y


# -- the network -------------------------------------------------------------------------------


class LlavaNumpy:
    """A LLaVA network's forward passes in float32 NumPy.

    Args:
        spec: from :func:`parse_config`.
        weights: the checkpoint's tensors (:func:`read_weights`).
    """

    def __init__(self, spec: LlavaSpec, weights: dict[str, np.ndarray]):
        self.spec = spec
        v, t = spec.vision, spec.text
        _, vis = split_prefix(weights, VISION_PREFIXES, "embeddings.patch_embedding.weight")
        take = WeightTaker(vis, "vision tower")
        n = (v.image_size // v.patch) ** 2
        kernel = take("embeddings.patch_embedding.weight", (v.hidden, v.channels, v.patch, v.patch))
        self.patch_kernel = np.ascontiguousarray(kernel.reshape(v.hidden, -1).T)  # (3 p p, d)
        self.class_embedding = take("embeddings.class_embedding", (v.hidden,))
        self.vision_positions = take("embeddings.position_embedding.weight", (n + 1, v.hidden))
        self.pre_norm = (take("pre_layrnorm.weight", (v.hidden,)), take("pre_layrnorm.bias", (v.hidden,)))
        self.vision_layers = [self._vision_layer(take, f"encoder.layers.{i}.") for i in range(v.layers)]
        take.check_all_used()

        _, proj = split_prefix(weights, PROJECTOR_PREFIXES, "linear_1.weight")
        take = WeightTaker(proj, "projector")
        d_in = v.hidden * len(spec.feature_layers)
        self.projector = (
            linear_weights(take, "linear_1", d_in, t.hidden, spec.projector_bias),
            linear_weights(take, "linear_2", t.hidden, t.hidden, spec.projector_bias),
        )
        take.check_all_used()

        _, lm = split_prefix(weights, TEXT_PREFIXES, "embed_tokens.weight")
        take = WeightTaker(lm, "language model")
        self.embed_tokens = take("embed_tokens.weight", (t.vocab, t.hidden))
        self.text_layers = [self._text_layer(take, f"layers.{i}.") for i in range(t.layers)]
        self.final_norm = take("norm.weight", (t.hidden,))
        take.check_all_used()
        head = next((weights[k] for k in HEAD_KEYS if k in weights), None)
        if spec.tied or head is None:
            if not spec.tied:
                raise UnsupportedError("no lm_head weight and the config does not tie embeddings")
            head = self.embed_tokens
        if head.shape != (t.vocab, t.hidden):
            raise UnsupportedError(f"lm_head has shape {head.shape}")
        self.lm_head = np.ascontiguousarray(head.T)  # (d, vocab)
        known = {k for k in weights if k.startswith(VISION_PREFIXES + TEXT_PREFIXES + PROJECTOR_PREFIXES) or k in HEAD_KEYS}
        if len(known) != len(weights):
            raise UnsupportedError(f"unknown weights: {', '.join(sorted(set(weights) - known)[:3])}")
        inv_freq = F32(1.0) / (F32(t.rope_theta) ** (np.arange(0, t.head_dim, 2, dtype=F32) / F32(t.head_dim)))
        self.inv_freq = (inv_freq / F32(t.rope_factor)).astype(F32)
        self.vision_act, self.text_act = activation(v.act), activation(t.act)
        self.projector_act = activation(spec.projector_act)
        self.n_parameters = sum(value.size for value in weights.values())

    def _vision_layer(self, take: WeightTaker, p: str) -> dict:
        d = self.spec.vision.hidden
        m = take(f"{p}mlp.fc1.weight").shape[0]
        return {
            "ln1": (take(f"{p}layer_norm1.weight", (d,)), take(f"{p}layer_norm1.bias", (d,))),
            "ln2": (take(f"{p}layer_norm2.weight", (d,)), take(f"{p}layer_norm2.bias", (d,))),
            **{name: linear_weights(take, f"{p}self_attn.{name}", d, d, True) for name in ("q_proj", "k_proj", "v_proj", "out_proj")},
            "fc1": linear_weights(take, f"{p}mlp.fc1", d, m, True),
            "fc2": linear_weights(take, f"{p}mlp.fc2", m, d, True),
        }

    def _text_layer(self, take: WeightTaker, p: str) -> dict:
        t = self.spec.text
        d, q, kv = t.hidden, t.heads * t.head_dim, t.kv_heads * t.head_dim
        m = take(f"{p}mlp.gate_proj.weight").shape[0]
        return {
            "ln1": take(f"{p}input_layernorm.weight", (d,)),
            "ln2": take(f"{p}post_attention_layernorm.weight", (d,)),
            "q_proj": linear_weights(take, f"{p}self_attn.q_proj", d, q, t.attention_bias),
            "k_proj": linear_weights(take, f"{p}self_attn.k_proj", d, kv, t.attention_bias),
            "v_proj": linear_weights(take, f"{p}self_attn.v_proj", d, kv, t.attention_bias),
            "o_proj": linear_weights(take, f"{p}self_attn.o_proj", q, d, t.attention_bias),
            "gate_proj": linear_weights(take, f"{p}mlp.gate_proj", d, m, t.mlp_bias),
            "up_proj": linear_weights(take, f"{p}mlp.up_proj", d, m, t.mlp_bias),
            "down_proj": linear_weights(take, f"{p}mlp.down_proj", m, d, t.mlp_bias),
        }

    # -- vision ------------------------------------------------------------------------------
    def image_features(self, pixels: np.ndarray) -> np.ndarray:
        """pixels ``(n, 3, H, W)`` (preprocessed) -> projected features ``(n, image_tokens, d_text)``."""
        v = self.spec.vision
        n, c, h, w = pixels.shape
        if (h, w) != (v.image_size, v.image_size) or c != v.channels:
            raise UnsupportedError(f"pixels of shape {pixels.shape[1:]} do not fit the tower's {v.image_size} px input")
        g = v.image_size // v.patch
        patches = pixels.reshape(n, c, g, v.patch, g, v.patch).transpose(0, 2, 4, 1, 3, 5).reshape(n, g * g, -1)
        x = np.concatenate([np.broadcast_to(self.class_embedding, (n, 1, v.hidden)), patches @ self.patch_kernel], axis=1)
        x = layer_norm(x + self.vision_positions, *self.pre_norm, v.eps)
        states = [x]
        wanted = [i % (v.layers + 1) for i in self.spec.feature_layers]
        for layer in self.vision_layers[: max(wanted)]:
            x = self._vision_block(layer, x)
            states.append(x)
        chosen = [states[i] if self.spec.keep_cls else states[i][:, 1:] for i in wanted]
        features = np.concatenate(chosen, axis=-1) if self.spec.feature_concat else chosen[0]
        first, second = self.projector
        return _apply(self.projector_act(_apply(features, first)), second)

    def _vision_block(self, layer: dict, x: np.ndarray) -> np.ndarray:
        v = self.spec.vision
        n, s, d = x.shape
        hd = d // v.heads
        h = layer_norm(x, *layer["ln1"], v.eps)
        q, k, val = (_apply(h, layer[name]).reshape(n, s, v.heads, hd).transpose(0, 2, 1, 3) for name in ("q_proj", "k_proj", "v_proj"))
        attn = softmax((q @ k.transpose(0, 1, 3, 2)) * F32(hd**-0.5))
        x = x + _apply((attn @ val).transpose(0, 2, 1, 3).reshape(n, s, d), layer["out_proj"])
        h = layer_norm(x, *layer["ln2"], v.eps)
        return x + _apply(self.vision_act(_apply(h, layer["fc1"])), layer["fc2"])

    # -- language ----------------------------------------------------------------------------
    def embed(self, ids: np.ndarray, image_features: np.ndarray | None = None) -> np.ndarray:
        """ids ``(B, T)`` -> embeddings ``(B, T, d)``; the image-token positions, in row-major
        order, take the rows of ``image_features`` ``(n_images, image_tokens, d)`` in order."""
        x = self.embed_tokens[ids]
        slots = ids == self.spec.image_token_id
        count = 0 if image_features is None else image_features.shape[0] * image_features.shape[1]
        if int(slots.sum()) != count:
            raise ValueError(f"{int(slots.sum())} image tokens in the text but {count} image features")
        if count:
            x[slots] = image_features.reshape(count, -1)
        return x

    def new_cache(self, batch: int, length: int) -> list[list[np.ndarray]]:
        """Empty keys and values per layer: ``[k, v]`` each ``(B, kv_heads, length, head_dim)``."""
        t = self.spec.text
        return [[np.zeros((batch, t.kv_heads, length, t.head_dim), F32) for _ in range(2)] for _ in range(t.layers)]

    def forward(
        self, x: np.ndarray, positions: np.ndarray, key_mask: np.ndarray, cache: list, offset: int, *, last: bool = False
    ) -> np.ndarray:
        """Run the decoder over new positions.

        Args:
            x: ``(B, T, d)`` input embeddings of the new positions.
            positions: ``(B, T)`` RoPE positions.
            key_mask: ``(B, offset + T)`` bool, False at padding.
            cache: from :meth:`new_cache`; positions ``[offset, offset + T)`` are written.
            offset: how many positions the cache holds already.
            last: return the logits of the last position only.
        Returns:
            logits ``(B, T, vocab)`` (``(B, 1, vocab)`` with ``last``).
        """
        t = self.spec.text
        b, n, _ = x.shape
        end = offset + n
        angles = positions[..., None].astype(F32) * self.inv_freq  # (B, T, hd/2)
        angles = np.concatenate([angles, angles], -1)[:, None]  # (B, 1, T, hd)
        cos, sin = np.cos(angles), np.sin(angles)
        causal = np.arange(end)[None, :] <= (offset + np.arange(n))[:, None]  # (T, end)
        mask = np.where(causal[None, None] & key_mask[:, None, None, :end], F32(0), NEG).astype(F32)  # (B,1,T,end)
        groups = t.heads // t.kv_heads
        for layer, (k_cache, v_cache) in zip(self.text_layers, cache, strict=True):
            h = rms_norm(x, layer["ln1"], t.eps)
            q = _apply(h, layer["q_proj"]).reshape(b, n, t.heads, t.head_dim).transpose(0, 2, 1, 3)
            k = _apply(h, layer["k_proj"]).reshape(b, n, t.kv_heads, t.head_dim).transpose(0, 2, 1, 3)
            k_cache[:, :, offset:end] = _rope_apply(k, cos, sin)
            v_cache[:, :, offset:end] = _apply(h, layer["v_proj"]).reshape(b, n, t.kv_heads, t.head_dim).transpose(0, 2, 1, 3)
            q = _rope_apply(q, cos, sin).reshape(b, t.kv_heads, groups, n, t.head_dim)
            keys, values = k_cache[:, :, None, :end], v_cache[:, :, None, :end]
            scores = (q @ keys.transpose(0, 1, 2, 4, 3)) * F32(t.head_dim**-0.5) + mask[:, :, None]
            out = (softmax(scores) @ values).reshape(b, t.heads, n, t.head_dim).transpose(0, 2, 1, 3).reshape(b, n, -1)
            x = x + _apply(out, layer["o_proj"])
            h = rms_norm(x, layer["ln2"], t.eps)
            x = x + _apply(self.text_act(_apply(h, layer["gate_proj"])) * _apply(h, layer["up_proj"]), layer["down_proj"])
        if last:
            x = x[:, -1:]
        return rms_norm(x, self.final_norm, t.eps) @ self.lm_head


def _rope_apply(x: np.ndarray, cos: np.ndarray, sin: np.ndarray) -> np.ndarray:
    """``x * cos + rotate_half(x) * sin`` over the last axis (the Llama/HF layout of RoPE)."""
    half = x.shape[-1] // 2
    rotated = np.concatenate([-x[..., half:], x[..., :half]], -1)
    return x * cos + rotated * sin
