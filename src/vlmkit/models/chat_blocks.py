"""The decoder-block view of a chat model's language backbone, for structural pruning.

Methods see a language model as a list of :class:`Block` objects (attention projections q, k, v,
o; MLP projections gate, up, down; head counts and head size) and change its structure through
two functions that return a *new* model whose config matches its shapes, so that
``save_pretrained`` output loads in plain transformers:

- :func:`keep_layers` drops whole decoder blocks (``num_hidden_layers``, per-layer lists such
  as ``layer_types`` and the KV-cache layer indices follow);
- :func:`keep_width` keeps chosen query heads, key/value heads and MLP channels in every block
  (``num_attention_heads``, ``num_key_value_heads``, ``head_dim``, ``intermediate_size``).
  A transformers config holds one head count and one MLP width for all layers, so every block
  keeps the same *number* of heads and channels (which ones may differ per block).

Projection attribute names are data (``specs/chat_layouts.json``); the language model is found
through ``get_decoder()``, which every transformers 5 LMM and causal LM provides.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn

from vlmkit.errors import UnsupportedError
from vlmkit.models.chat_weights import layouts


@dataclass
class Block:
    """One decoder block: its module and projections (``nn.Linear``, weights ``(out, in)``)."""

    index: int
    module: nn.Module
    q: nn.Linear
    k: nn.Linear
    v: nn.Linear
    o: nn.Linear
    gate: nn.Linear
    up: nn.Linear
    down: nn.Linear
    n_heads: int
    n_kv_heads: int
    head_dim: int


def text_config(model: nn.Module):
    return model.config.get_text_config()


def decoder(model: nn.Module) -> nn.Module:
    """The language model's decoder (the module holding ``layers``)."""
    found = model.get_decoder() if hasattr(model, "get_decoder") else None
    if found is None or not isinstance(getattr(found, "layers", None), nn.ModuleList):
        raise UnsupportedError(
            f"{type(model).__name__}: no decoder with a list of layers; structural pruning supports decoder-only language models"
        )
    return found


def blocks(model: nn.Module) -> list[Block]:
    """Every decoder block of the language model, first to last."""
    config = text_config(model)
    names = layouts()
    n_heads, n_kv = config.num_attention_heads, getattr(config, "num_key_value_heads", None) or config.num_attention_heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // n_heads
    out = []
    for index, layer in enumerate(decoder(model).layers):
        attention = next((m for m in layer.children() if type(m).__name__.endswith("Attention")), None)
        mlp = next((m for m in layer.children() if type(m).__name__.endswith("MLP")), None)
        try:
            projections = {role: getattr(attention, attr) for role, attr in names["attention"].items()}
            projections |= {role: getattr(mlp, attr) for role, attr in names["mlp"].items()}
        except AttributeError as exc:
            raise UnsupportedError(
                f"{type(layer).__name__} has no separate q/k/v/o and gate/up/down projections (fused layers are not supported yet)"
            ) from exc
        out.append(Block(index, layer, n_heads=n_heads, n_kv_heads=n_kv, head_dim=head_dim, **projections))
    return out


def _rebuild(model: nn.Module, config, state: dict[str, torch.Tensor], rename=lambda key: key) -> nn.Module:
    """A model of ``type(model)`` built from ``config`` (on the meta device: no random init)
    holding ``state``; buffers outside the state dict (rotary frequencies) come from ``model``
    through ``rename`` (old name -> new name, ``None`` for dropped)."""
    with torch.device("meta"):
        new = type(model)(config)
    new.load_state_dict(state, strict=True, assign=True)
    old_buffers = {rename(name): b for name, b in model.named_buffers()}
    for name, buffer in list(new.named_buffers()):
        if buffer.is_meta:
            owner, _, attr = name.rpartition(".")
            module = new.get_submodule(owner) if owner else new
            module._buffers[attr] = old_buffers[name].clone()
    new.tie_weights()
    new.generation_config = copy.deepcopy(model.generation_config)
    return new.eval()


def _prefix(model: nn.Module, module: nn.Module) -> str:
    return next(name for name, m in model.named_modules() if m is module)


def keep_layers(model: nn.Module, keep: list[int]) -> nn.Module:
    """A copy of ``model`` with only decoder blocks ``keep`` (in order)."""
    layers = decoder(model).layers
    if not keep or any(i < 0 or i >= len(layers) for i in keep) or sorted(set(keep)) != list(keep):
        raise ValueError(f"keep must be increasing block indices in [0, {len(layers)})")
    path = _prefix(model, layers)

    def rename(key: str) -> str | None:
        if not key.startswith(path + "."):
            return key
        index, _, rest = key[len(path) + 1 :].partition(".")
        return f"{path}.{keep.index(int(index))}.{rest}" if int(index) in keep else None

    state = {rename(k): v for k, v in model.state_dict().items() if rename(k) is not None}
    config = copy.deepcopy(model.config)
    text = config.get_text_config()
    text.num_hidden_layers = len(keep)
    for name in ("layer_types",):
        if isinstance(getattr(text, name, None), list):
            setattr(text, name, [getattr(text, name)[i] for i in keep])
    return _rebuild(model, config, state, rename)


def keep_width(model: nn.Module, heads: list[list[int]], kv_heads: list[list[int]], channels: list[list[int]]) -> nn.Module:
    """A copy of ``model`` keeping, in block ``i``, query heads ``heads[i]``, key/value heads
    ``kv_heads[i]`` and MLP channels ``channels[i]`` (sorted indices, same count in every block).

    Query head ``h`` reads key/value head ``h // (n_heads / n_kv_heads)``; the kept query heads
    must read only kept key/value heads, in equal numbers (grouped-query attention stays valid).
    """
    all_blocks = blocks(model)
    if not (len(heads) == len(kv_heads) == len(channels) == len(all_blocks)):
        raise ValueError("give one list of heads, kv heads and channels per block")
    if len({len(h) for h in heads}) != 1 or len({len(k) for k in kv_heads}) != 1 or len({len(c) for c in channels}) != 1:
        raise ValueError("every block must keep the same number of heads, kv heads and channels")
    state = model.state_dict()
    paths = {id(m): name for name, m in model.named_modules()}
    for block, q_keep, kv_keep, c_keep in zip(all_blocks, heads, kv_heads, channels, strict=True):
        group = block.n_heads // block.n_kv_heads
        readers = [[h for h in q_keep if h // group == kv] for kv in kv_keep]
        if sum(len(r) for r in readers) != len(q_keep) or len({len(r) for r in readers}) != 1 or not readers[0]:
            raise ValueError(f"block {block.index}: kept query heads must read kept kv heads in equal numbers")
        q_rows = torch.tensor([h * block.head_dim + d for h in q_keep for d in range(block.head_dim)])
        kv_rows = torch.tensor([h * block.head_dim + d for h in kv_keep for d in range(block.head_dim)])
        c_index = torch.tensor(c_keep)
        for linear, rows in ((block.q, q_rows), (block.k, kv_rows), (block.v, kv_rows), (block.gate, c_index), (block.up, c_index)):
            name = paths[id(linear)]
            state[f"{name}.weight"] = state[f"{name}.weight"][rows]
            if linear.bias is not None:
                state[f"{name}.bias"] = state[f"{name}.bias"][rows]
        for linear, cols in ((block.o, q_rows), (block.down, c_index)):
            name = paths[id(linear)]
            state[f"{name}.weight"] = state[f"{name}.weight"][:, cols]
    config = copy.deepcopy(model.config)
    text = config.get_text_config()
    text.head_dim = all_blocks[0].head_dim
    text.num_attention_heads = len(heads[0])
    text.num_key_value_heads = len(kv_heads[0])
    text.intermediate_size = len(channels[0])
    return _rebuild(model, config, {k: v.clone() for k, v in state.items()})


def count_parameters(model: nn.Module) -> dict[str, int]:
    """Parameters of the whole model, of the language backbone (decoder blocks and final norm,
    no embeddings or head) and of the language model with embeddings and head."""
    unique = {id(p): p for p in model.parameters()}
    dec = decoder(model)
    embeddings = {id(p) for p in model.get_input_embeddings().parameters()}
    head = model.get_output_embeddings()
    head_ids = {id(p) for p in head.parameters()} if head is not None else set()
    backbone = {id(p): p for p in dec.parameters() if id(p) not in embeddings}
    language = {**{id(p): p for p in dec.parameters()}, **{i: unique[i] for i in head_ids if i in unique}}
    return {
        "total": sum(p.numel() for p in unique.values()),
        "language_backbone": sum(p.numel() for p in backbone.values()),
        "language_model": sum(p.numel() for p in language.values()),
    }
