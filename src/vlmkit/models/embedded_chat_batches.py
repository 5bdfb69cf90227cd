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
GATHER, COPY = 0, 1  # the two kinds of attention route (:func:`attention_routes`)


class Batch(NamedTuple):
    """Padded ``(batch, width)`` ids, labels (-100: not supervised) and attention mask, the refs
    of every image in row-major order, and the lens targets: ``lens`` ``(n, 3)`` rows of (row,
    position, word id): a reply's latent at the position that predicts its first word, and each
    user word's latent (an option's letter) at that word; ``routes`` ``(m, 5)`` rows of (row,
    position, start, end, kind), the attention targets of :func:`attention_routes`."""

    ids: Tensor
    labels: Tensor
    mask: Tensor
    refs: list[wc.SceneRef]
    lens: Tensor
    routes: Tensor


class Encoder:
    """Turns :class:`~vlmkit.data.world_chat.Example` lists into padded id tensors, loss labels
    (assistant words and their ``<|end|>`` only), lens targets and the order of their images."""

    def __init__(self, tokens_per_image: int):
        self.tokenizer = build.build_tokenizer()
        self.core = self.tokenizer.backend_tokenizer
        self.tokens_per_image = tokens_per_image
        self.word_ids = {word: i for i, word in enumerate(build.vocabulary())}
        self.nonce = build.nonce_id_range()

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

    def routes(self, ids: list[int], labels: list[int]) -> list[tuple[int, int, int, int]]:
        return attention_routes(ids, labels, self.tokens_per_image, self.nonce)

    def batch(self, examples: list[wc.Example], full: bool = True) -> Batch:
        """The examples right-padded to their longest (see :class:`Batch`)."""
        rows = [self.encode(e, full) for e in examples]
        width = max(len(r[0]) for r in rows)
        ids = torch.zeros(len(rows), width, dtype=torch.long)
        labels = torch.full((len(rows), width), -100, dtype=torch.long)
        mask = torch.zeros(len(rows), width, dtype=torch.long)
        refs: list[wc.SceneRef] = []
        lens = [(i, pos, word) for i, row in enumerate(rows) for pos, word in row[3]]
        routes = [(i, *route) for i, row in enumerate(rows) for route in self.routes(row[0], row[1])]
        for i, (row_ids, row_labels, row_refs, _) in enumerate(rows):
            ids[i, : len(row_ids)] = torch.tensor(row_ids)
            labels[i, : len(row_labels)] = torch.tensor(row_labels)
            mask[i, : len(row_ids)] = 1
            refs += row_refs
        return Batch(ids, labels, mask, refs, torch.tensor(lens, dtype=torch.long).reshape(-1, 3),
                     torch.tensor(routes, dtype=torch.long).reshape(-1, 5))


def attention_routes(ids: list[int], labels: list[int], tokens_per_image: int, nonce: tuple[int, int]) -> list[tuple[int, int, int, int]]:
    """Where in-context labelling must look, as (position, start, end, kind) rows: the position
    should put its attention on ``[start, end)``. Three steps make an induction circuit over
    images (Olsson et al. 2022), and each is given its own target because, like yes/no's
    perception and comparison (the lens loss), none of them gets a gradient until the others
    work (docs/chat.md):

    - ``GATHER`` at every context label (a nonce word right after an image, in a user turn):
      the first token of the image it labels (the tower's CLS summary), so the label's position
      carries what that image shows;
    - ``GATHER`` at every reply position (the token that predicts a nonce reply word) whose
      turn shows an image: the first token of that query image, so the same head brings both
      sides of the comparison the copy makes;
    - ``COPY`` at every reply position: the context's first occurrence of the reply word
      (images, text induction and repeated pairs alike), whose embedding the head carries to
      the output (tied embeddings make that the word's logit).
    """
    start_nonce, end_nonce = nonce
    images: list[tuple[int, int]] = []  # every image's [start, end), in order
    labelled: set[int] = set()  # ends of the context images, each followed by its label
    routes = []
    run = 0
    for i, token in enumerate(ids):
        run = run + 1 if token == IMAGE_ID else 0
        if run and run % tokens_per_image == 0:
            images.append((i + 1 - tokens_per_image, i + 1))
        elif start_nonce <= token < end_nonce and labels[i] == -100 and images and images[-1][1] == i:
            labelled.add(i)
            routes.append((i, images[-1][0], images[-1][0] + 1, GATHER))
    for p in range(len(ids) - 1):
        word = labels[p + 1]
        if not start_nonce <= word < end_nonce:
            continue
        context = [q for q in range(p + 1) if ids[q] == word and labels[q] == -100]
        if context:
            routes.append((p, context[0], context[0] + 1, COPY))
        shown = [span for span in images if span[1] <= p]
        if shown and shown[-1][1] not in labelled and all(label == -100 for label in labels[shown[-1][1]: p + 1]):
            routes.append((p, shown[-1][0], shown[-1][0] + 1, GATHER))
    return routes


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
