"""Conversations as training tensors for ``embedded-chat`` (``embedded_chat_train``).

:class:`Encoder` turns :class:`~vlmkit.data.world_chat.Example` lists into padded ids, reply
labels and lens targets (:class:`Batch`); :class:`FeatureBank` holds the frozen tower's
precomputed features by scene; :func:`draw_examples` and :func:`draw_icl` sample the
conversations of one step.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor

from vlmkit.data import world_chat as wc
from vlmkit.models import embedded_chat_build as build

IMAGE_ID = build.vocabulary().index(build.IMAGE_TOKEN)


class Batch(NamedTuple):
    """Padded ``(batch, width)`` ids, labels (-100: not supervised) and attention mask, the refs
    of every image in row-major order, and the lens targets: ``lens`` ``(n, 3)`` rows of (row,
    position, word id): a reply's latent at the position that predicts its first word, and each
    user word's latent (an option's letter) at that word."""

    ids: Tensor
    labels: Tensor
    mask: Tensor
    refs: list[wc.SceneRef]
    lens: Tensor


class Encoder:
    """Turns :class:`~vlmkit.data.world_chat.Example` lists into padded id tensors, loss labels
    (assistant words and their ``<|end|>`` only), lens targets and the order of their images."""

    def __init__(self, tokens_per_image: int):
        self.tokenizer = build.build_tokenizer()
        self.core = self.tokenizer.backend_tokenizer
        self.tokens_per_image = tokens_per_image
        self.word_ids = {word: i for i, word in enumerate(build.vocabulary())}

    def encode(self, example: wc.Example, full: bool = True) -> tuple[list[int], list[int], list[wc.SceneRef], list[tuple[int, int]]]:
        turns = example.turns if full else example.prompt
        ids: list[int] = []
        labels: list[int] = []
        refs: list[wc.SceneRef] = []
        lens: list[tuple[int, int]] = []
        for turn in turns:
            if turn.latent is not None:  # the turn's first token, <|assistant|>, predicts its first word
                lens.append((len(ids), self.word_ids[turn.latent]))
            turn_ids = self.core.encode(build.render_text([turn]), add_special_tokens=False).ids
            expanded = []
            for t in turn_ids:
                expanded += [t] * (self.tokens_per_image if t == IMAGE_ID else 1)
            for word, latent in (turn.word_latents or {}).items():  # at the word's last occurrence in the turn
                last = max(i for i, t in enumerate(expanded) if t == self.word_ids[word])
                lens.append((len(ids) + last, self.word_ids[latent]))
            ids += expanded
            if turn.role == "assistant":
                labels += [-100] + expanded[1:]
            else:
                labels += [-100] * len(expanded)
            refs += [p for p in turn.parts if isinstance(p, wc.SceneRef)]
        if not full:
            prompt = self.core.encode("<|assistant|>", add_special_tokens=False).ids
            ids += prompt
            labels += [-100] * len(prompt)
        return ids, labels, refs, lens

    def batch(self, examples: list[wc.Example], full: bool = True) -> Batch:
        """The examples right-padded to their longest (see :class:`Batch`)."""
        rows = [self.encode(e, full) for e in examples]
        width = max(len(r[0]) for r in rows)
        ids = torch.zeros(len(rows), width, dtype=torch.long)
        labels = torch.full((len(rows), width), -100, dtype=torch.long)
        mask = torch.zeros(len(rows), width, dtype=torch.long)
        refs: list[wc.SceneRef] = []
        lens = [(i, pos, word) for i, row in enumerate(rows) for pos, word in row[3]]
        for i, (row_ids, row_labels, row_refs, _) in enumerate(rows):
            ids[i, : len(row_ids)] = torch.tensor(row_ids)
            labels[i, : len(row_labels)] = torch.tensor(row_labels)
            mask[i, : len(row_ids)] = 1
            refs += row_refs
        return Batch(ids, labels, mask, refs, torch.tensor(lens, dtype=torch.long).reshape(-1, 3))


class FeatureBank:
    """Precomputed tower features by scene reference."""

    def __init__(self):
        self.index: dict[wc.SceneRef, tuple[np.ndarray, int]] = {}

    def add(self, refs: list[wc.SceneRef], feats: np.ndarray) -> None:
        for i, ref in enumerate(refs):
            self.index[ref] = (feats, i)

    def gather(self, refs: list[wc.SceneRef]) -> Tensor:
        """``(len(refs) * tokens, d)`` float32."""
        if not refs:
            return torch.zeros(0, 1)
        rows = [self.index[r][0][self.index[r][1]] for r in refs]
        return torch.from_numpy(np.stack(rows).astype(np.float32)).flatten(0, 1)


def draw_icl(n: int, source: wc.SceneSource, rng: np.random.Generator, labels: list[str], queries: int) -> list[wc.Example]:
    """``n`` in-context labelling episodes of ``queries`` query turns each."""
    return [wc.make_example("icl", source, rng, labels, icl_queries=queries) for _ in range(n)]


def draw_examples(
    mix: dict[str, float], n: int, source: wc.SceneSource, rng: np.random.Generator, labels: list[str], icl_queries: int
) -> list[wc.Example]:
    """``n`` training conversations of tasks drawn from ``mix`` (task -> weight)."""
    names = list(mix)
    weights = np.array([mix[t] for t in names], dtype=float)
    tasks = rng.choice(names, n, p=weights / weights.sum())
    return [wc.make_example(str(t), source, rng, labels, icl_queries=3) for t in tasks]
