"""The canonical weight view and hook points of a Hugging Face ViT image tower.

CLIP, SigLIP and the embedded model share the same block structure (pre-LN blocks with
separate q/k/v/out projections); only where each part lives differs, and that is data
(``specs/vit_layouts.json``). This module converts between the model's ``nn.Linear`` weights
(stored ``(out, in)``) and :class:`~vlmkit.models.base.VisionWeights` (row-vector convention).
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources

import torch
from torch import Tensor, nn

from vlmkit.models.base import AttentionLayerWeights, LayerNormParams, VisionWeights
from vlmkit.models.hooks import HookPoint


@cache
def layouts() -> dict:
    text = resources.files("vlmkit.models").joinpath("specs/vit_layouts.json").read_text()
    return {k: v for k, v in json.loads(text).items() if not k.startswith("_")}


def get_path(root: nn.Module, path: str | None) -> nn.Module | None:
    """Follow a dotted attribute path (``encoder.layers``); ``None`` stays ``None``."""
    if path is None:
        return None
    module = root
    for part in path.split("."):
        module = getattr(module, part)
    return module


def _ln(module: nn.LayerNorm) -> LayerNormParams:
    return LayerNormParams(module.weight.detach().float().cpu().clone(), module.bias.detach().float().cpu().clone(), float(module.eps))


def _write_ln(module: nn.LayerNorm, params: LayerNormParams) -> None:
    module.weight.copy_(params.weight)
    module.bias.copy_(params.bias)


class HFViTView:
    """Reads and writes the weight view of one HF vision tower and exposes its hook points.

    Args:
        model: the full model (the layout's ``tower`` and ``proj`` paths are relative to it).
        layout: one entry of ``specs/vit_layouts.json``.
        n_heads: attention heads per block.
    """

    def __init__(self, model: nn.Module, layout: dict, n_heads: int):
        self.layout = layout
        self.n_heads = n_heads
        self.tower = get_path(model, layout["tower"])
        self.proj = get_path(model, layout["proj"])
        self.ln_pre = get_path(self.tower, layout["ln_pre"])
        self.ln_post = get_path(self.tower, layout["ln_post"])
        self.embeddings = get_path(self.tower, layout["embeddings"])
        self.blocks = list(get_path(self.tower, layout["layers"]))

    def _part(self, block: nn.Module, name: str) -> nn.Module:
        return get_path(block, self.layout["block"][name])

    # ---- weights -------------------------------------------------------------------------
    def _read_linear(self, linear: nn.Linear) -> tuple[Tensor, Tensor]:
        """``(out, in)`` weight -> ``(n_heads, d_in, d_head)`` and bias ``(n_heads, d_head)``."""
        weight = linear.weight.detach().float().cpu()
        d_in = weight.shape[1]
        w = weight.T.reshape(d_in, self.n_heads, -1).permute(1, 0, 2).contiguous()
        b = linear.bias.detach().float().cpu().reshape(self.n_heads, -1).clone()
        return w, b

    def read(self) -> VisionWeights:
        layers = []
        for block in self.blocks:
            (W_Q, b_Q), (W_K, b_K), (W_V, b_V) = (self._read_linear(self._part(block, p)) for p in "qkv")
            out = self._part(block, "o")
            d_model = out.weight.shape[0]
            W_O = out.weight.detach().float().cpu().T.reshape(self.n_heads, -1, d_model).contiguous()
            layers.append(
                AttentionLayerWeights(
                    W_Q=W_Q, W_K=W_K, W_V=W_V, W_O=W_O, b_Q=b_Q, b_K=b_K, b_V=b_V,
                    b_O=out.bias.detach().float().cpu().clone(), ln1=_ln(self._part(block, "ln1")),
                )
            )
        proj = None if self.proj is None else self.proj.weight.detach().float().cpu().T.contiguous()
        return VisionWeights(
            layers=layers, ln_post=_ln(self.ln_post), proj=proj,
            ln_pre=None if self.ln_pre is None else _ln(self.ln_pre), pool=self.layout["pool"],
        )

    @torch.no_grad()
    def write(self, weights: VisionWeights) -> None:
        if weights.n_layers != len(self.blocks):
            raise ValueError(f"weight view has {weights.n_layers} layers, the model {len(self.blocks)}")
        for block, lw in zip(self.blocks, weights.layers, strict=True):
            for name, W, b in (("q", lw.W_Q, lw.b_Q), ("k", lw.W_K, lw.b_K), ("v", lw.W_V, lw.b_V)):
                linear = self._part(block, name)
                linear.weight.copy_(W.permute(1, 0, 2).reshape(W.shape[1], -1).T)
                linear.bias.copy_(b.reshape(-1))
            out = self._part(block, "o")
            out.weight.copy_(lw.W_O.reshape(-1, lw.d_model).T)
            out.bias.copy_(lw.b_O)
            _write_ln(self._part(block, "ln1"), lw.ln1)
        _write_ln(self.ln_post, weights.ln_post)
        if self.ln_pre is not None and weights.ln_pre is not None:
            _write_ln(self.ln_pre, weights.ln_pre)
        if self.proj is not None and weights.proj is not None:
            self.proj.weight.copy_(weights.proj.T)

    # ---- hook points ---------------------------------------------------------------------
    def hook_points(self) -> dict[str, HookPoint]:
        """Dotted names -> hook points. Shapes: ``(batch, pos, d_model)`` unless noted.

        - ``embed``: the residual stream entering block 0 (after ``ln_pre`` when there is one)
        - ``blocks.{i}.ln1`` / ``blocks.{i}.ln2``: LayerNorm outputs read by attention / MLP
        - ``blocks.{i}.attn.z``: per-head mixed values before the output projection,
          ``(batch, pos, n_heads, d_head)``
        - ``blocks.{i}.attn.out``, ``blocks.{i}.mlp.out``: what attention / MLP write
        - ``blocks.{i}.resid_post``: the residual stream leaving block ``i``
        - ``ln_post.in`` / ``ln_post.out``: around the final LayerNorm (CLIP applies it to the
          pooled token only, ``(batch, d_model)``)
        """
        n_heads = self.n_heads

        def split_heads(z: Tensor) -> Tensor:
            return z.reshape(*z.shape[:-1], n_heads, -1)

        points = {"embed": HookPoint(self.ln_pre if self.ln_pre is not None else self.embeddings)}
        for i, block in enumerate(self.blocks):
            points[f"blocks.{i}.ln1"] = HookPoint(self._part(block, "ln1"))
            points[f"blocks.{i}.attn.z"] = HookPoint(self._part(block, "o"), read="input", transform=split_heads)
            points[f"blocks.{i}.attn.out"] = HookPoint(self._part(block, "o"))
            points[f"blocks.{i}.ln2"] = HookPoint(self._part(block, "ln2"))
            points[f"blocks.{i}.mlp.out"] = HookPoint(self._part(block, "mlp"))
            points[f"blocks.{i}.resid_post"] = HookPoint(block)
        points["ln_post.in"] = HookPoint(self.ln_post, read="input")
        points["ln_post.out"] = HookPoint(self.ln_post)
        return points


def read_weight_file(path, layout: dict, n_heads: int, eps: float) -> VisionWeights:
    """:meth:`HFViTView.read` straight from a model's safetensors file, without building the model.

    Tensor names are the state-dict names of the layout's paths (``vision_model.encoder.layers.3.
    self_attn.v_proj.weight``); ``eps`` is every LayerNorm's (the config's ``layer_norm_eps``).
    Reads only what SITH's weight view uses: ``W_V``, ``W_O``, the biases, the LayerNorms and the
    projection. ``W_Q`` and ``W_K`` are views of the file mapped copy-on-write (equal values, not
    contiguous), so their pages are read only if something uses them.
    """
    from safetensors import safe_open
    from safetensors.torch import load_file

    mapped = load_file(str(path))
    tower = layout["tower"]
    block_names = layout["block"]

    def ln(prefix: str) -> LayerNormParams:
        return LayerNormParams(get(f"{prefix}.weight").float(), get(f"{prefix}.bias").float(), float(eps))

    def heads(weight: Tensor) -> Tensor:  # (out, in) -> (n_heads, d_in, d_head), as _read_linear
        return weight.float().T.reshape(weight.shape[1], n_heads, -1).permute(1, 0, 2)

    with safe_open(str(path), framework="pt") as handle:
        get = handle.get_tensor
        n_layers = 1 + max(int(name[len(f"{tower}.{layout['layers']}."):].split(".")[0])
                           for name in handle.keys() if name.startswith(f"{tower}.{layout['layers']}."))
        layers = []
        for i in range(n_layers):
            prefix = f"{tower}.{layout['layers']}.{i}."
            q, k, v, o = (prefix + block_names[p] for p in "qkv" + "o")
            W_O = get(f"{o}.weight").float()
            layers.append(AttentionLayerWeights(
                W_Q=heads(mapped[f"{q}.weight"]), W_K=heads(mapped[f"{k}.weight"]), W_V=heads(get(f"{v}.weight")).contiguous(),
                W_O=W_O.T.reshape(n_heads, -1, W_O.shape[0]).contiguous(),
                b_Q=get(f"{q}.bias").float().reshape(n_heads, -1), b_K=get(f"{k}.bias").float().reshape(n_heads, -1),
                b_V=get(f"{v}.bias").float().reshape(n_heads, -1), b_O=get(f"{o}.bias").float(),
                ln1=ln(prefix + block_names["ln1"]),
            ))
        proj = None if layout["proj"] is None else get(f"{layout['proj']}.weight").float().T.contiguous()
        return VisionWeights(
            layers=layers, ln_post=ln(f"{tower}.{layout['ln_post']}"), proj=proj,
            ln_pre=None if layout["ln_pre"] is None else ln(f"{tower}.{layout['ln_pre']}"), pool=layout["pool"],
        )
