"""Structural pruning of an LMM's language backbone (arXiv 2507.20749).

- **Layerwise**: Block Influence BI_i = Σ_tokens [1 − cos(h_i, h_{i+1})] over calibration
  conversations (ShortGPT), from each block's input and output captured by forward hooks, cosine
  computed row-wise per token (the official code's (B·S)² matrix is never built), all positions
  counted (image and text tokens). The blocks with the lowest BI are removed.
- **Widthwise** (LLM-Pruner style): attention heads and MLP channels ranked in every block by the
  summed importance of their coupled weights: q/k/v output rows and o input columns of a head;
  gate/up rows and the down column of a channel. Importance: first-order Taylor |w·g| with
  gradients of the language-modelling loss accumulated over the calibration conversations,
  magnitude (L1 or L2), or random. Under grouped-query attention whole key/value groups are
  pruned (``heads="group"``, the query heads reading them go too) or only query heads, the same
  number per group (``heads="query"``). Every block keeps the same number of heads and channels
  (a transformers config has one of each), so unlike the official layer range [3, 21] all blocks
  are pruned; the fraction is chosen so that the backbone loses ``ratio`` of its parameters.

Model structure is read and changed only through :mod:`vlmkit.models.chat_blocks`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from vlmkit.models import chat_blocks as cb
from vlmkit.models.chat import Message

Importance = Literal["taylor", "l1", "l2", "random"]


def block_influence(model, conversations: Sequence[list[Message]]) -> Tensor:
    """``(n_blocks,)`` Σ over conversations and tokens of 1 − cos(block input, block output)."""
    network = model.model
    blocks = cb.blocks(network)
    totals = torch.zeros(len(blocks), dtype=torch.float64)
    mask_holder: dict[str, Tensor] = {}

    def hook(index):
        def record(module, args, kwargs, output):
            h_in = args[0] if args else kwargs["hidden_states"]
            h_out = output[0] if isinstance(output, tuple) else output
            cos = F.cosine_similarity(h_in.float(), h_out.float(), dim=-1)  # (batch, tokens), row-wise
            totals[index] += float(((1 - cos) * mask_holder["mask"]).sum())

        return record

    handles = [b.module.register_forward_hook(hook(b.index), with_kwargs=True) for b in blocks]
    try:
        with torch.inference_mode():
            for conversation in conversations:
                batch = model.training_batch([conversation])
                batch.pop("labels")
                mask_holder["mask"] = batch["attention_mask"].float()
                network(**batch)
    finally:
        for handle in handles:
            handle.remove()
    return totals


def layers_to_remove(influence: Tensor, n: int) -> list[int]:
    """The ``n`` blocks of lowest influence (ascending index)."""
    if not 0 <= n < len(influence):
        raise ValueError(f"can remove between 0 and {len(influence) - 1} of {len(influence)} blocks, not {n}")
    return sorted(torch.argsort(influence, stable=True)[:n].tolist())


def prune_layers(model, remove: Sequence[int]):
    """The network without blocks ``remove``."""
    n = len(cb.blocks(model.model))
    return cb.keep_layers(model.model, [i for i in range(n) if i not in set(remove)])


def _element_scores(weight: Tensor, grad: Tensor | None, importance: Importance) -> Tensor:
    if importance == "taylor":
        return (weight * grad).abs()
    if importance == "l1":
        return weight.abs()
    if importance == "l2":
        return weight.pow(2)
    raise ValueError(importance)


def accumulate_gradients(model, conversations: Sequence[list[Message]]) -> None:
    """Back-propagate the language-modelling loss of each conversation (batch 1), accumulating
    gradients in the projections' ``.grad``."""
    network = model.model
    for p in network.parameters():
        p.requires_grad_(False)
    for block in cb.blocks(network):
        for linear in (block.q, block.k, block.v, block.o, block.gate, block.up, block.down):
            linear.weight.requires_grad_(True)
            linear.weight.grad = None
    for conversation in conversations:
        batch = model.training_batch([conversation])
        network(**batch).loss.backward()


def group_scores(model, importance: Importance, generator: torch.Generator | None = None) -> list[dict[str, Tensor]]:
    """Per block: ``heads`` ``(n_heads,)``, ``kv_groups`` ``(n_kv,)`` (a kv head plus the query
    heads reading it) and ``channels`` ``(intermediate,)`` importance scores."""
    out = []
    for block in cb.blocks(model.model):
        d, group = block.head_dim, block.n_heads // block.n_kv_heads
        if importance == "random":
            gen = generator or torch.Generator().manual_seed(0)
            heads = torch.rand(block.n_heads, generator=gen)
            kv = torch.rand(block.n_kv_heads, generator=gen)
            channels = torch.rand(block.gate.out_features, generator=gen)
            out.append({"heads": heads, "kv_groups": kv, "channels": channels})
            continue
        s = {
            name: _element_scores(lin.weight.detach(), lin.weight.grad, importance)
            for name, lin in (
                ("q", block.q),
                ("k", block.k),
                ("v", block.v),
                ("o", block.o),
                ("gate", block.gate),
                ("up", block.up),
                ("down", block.down),
            )
        }
        heads = s["q"].view(block.n_heads, d, -1).sum((1, 2)) + s["o"].view(-1, block.n_heads, d).sum((0, 2))
        kv_own = s["k"].view(block.n_kv_heads, d, -1).sum((1, 2)) + s["v"].view(block.n_kv_heads, d, -1).sum((1, 2))
        kv = kv_own + heads.view(block.n_kv_heads, group).sum(1)
        channels = s["gate"].sum(1) + s["up"].sum(1) + s["down"].sum(0)
        out.append({"heads": heads, "kv_groups": kv, "channels": channels})
    return out


def width_plan(model, scores: list[dict[str, Tensor]], fraction: float, heads: Literal["group", "query"] = "group") -> dict:
    """Which heads, kv heads and channels every block keeps when a ``fraction`` of each is pruned
    (rounded to whole kv groups, or to whole query heads per group, and down to a head count that
    divides the hidden size, which transformers' config validation requires)."""
    blocks = cb.blocks(model.model)
    b0 = blocks[0]
    group = b0.n_heads // b0.n_kv_heads
    n_channels = b0.gate.out_features
    keep_channels = max(1, round(n_channels * (1 - fraction)))
    hidden = b0.q.in_features
    if heads == "group":
        keep_kv, keep_per_group = max(1, round(b0.n_kv_heads * (1 - fraction))), group
        # transformers configs require hidden_size % num_attention_heads == 0: round down to a count that divides
        while keep_kv > 1 and hidden % (keep_kv * group):
            keep_kv -= 1
    else:
        keep_kv, keep_per_group = b0.n_kv_heads, max(1, round(group * (1 - fraction)))
        while keep_per_group > 1 and hidden % (keep_kv * keep_per_group):
            keep_per_group -= 1
    plan = {"heads": [], "kv_heads": [], "channels": []}
    for score in scores:
        kv = sorted(torch.argsort(score["kv_groups"], descending=True, stable=True)[:keep_kv].tolist())
        q = []
        for g in kv:
            members = torch.arange(g * group, (g + 1) * group)
            best = members[torch.argsort(score["heads"][members], descending=True, stable=True)[:keep_per_group]]
            q += sorted(best.tolist())
        plan["heads"].append(q)
        plan["kv_heads"].append(kv)
        plan["channels"].append(sorted(torch.argsort(score["channels"], descending=True, stable=True)[:keep_channels].tolist()))
    return plan


def backbone_parameters_after(model, plan: dict) -> int:
    """Language-backbone parameters once ``plan`` is applied (computed without building it)."""
    blocks = cb.blocks(model.model)
    before = cb.count_parameters(model.model)["language_backbone"]
    removed = 0
    for block, q, kv, ch in zip(blocks, plan["heads"], plan["kv_heads"], plan["channels"], strict=True):
        hidden = block.q.in_features
        removed += (block.n_heads - len(q)) * block.head_dim * hidden * 2 + (block.n_kv_heads - len(kv)) * block.head_dim * hidden * 2
        removed += (block.gate.out_features - len(ch)) * hidden * 3
        biased = (
            (block.q, block.n_heads - len(q), block.head_dim),
            (block.k, block.n_kv_heads - len(kv), block.head_dim),
            (block.v, block.n_kv_heads - len(kv), block.head_dim),
            (block.gate, block.gate.out_features - len(ch), 1),
            (block.up, block.gate.out_features - len(ch), 1),
        )
        removed += sum(n * size for lin, n, size in biased if lin.bias is not None)
    return before - removed


def plan_for_ratio(model, scores, ratio: float, heads: Literal["group", "query"] = "group") -> tuple[dict, float]:
    """The width plan whose backbone compression is closest to ``ratio`` (searched over the
    pruned fraction); returns the plan and its achieved ratio."""
    before = cb.count_parameters(model.model)["language_backbone"]
    best = None
    for step in range(0, 101):
        fraction = step / 100
        plan = width_plan(model, scores, fraction, heads)
        achieved = 1 - backbone_parameters_after(model, plan) / before
        if best is None or abs(achieved - ratio) < abs(best[1] - ratio):
            best = (plan, achieved)
    return best
