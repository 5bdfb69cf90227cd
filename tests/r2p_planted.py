"""Planted models for the R2P tests: a contrastive model whose image embedding is the unit mean
colour of the image and whose text embeddings are given, and a chat model whose replies and
yes/no log-probabilities are functions the test controls."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from vlmkit.models.chat import conversation_images, open_image


class _Pre:
    def __call__(self, image):
        return torch.tensor(np.asarray(image.convert("RGB"), np.float32).reshape(-1, 3).mean(0) / 255.0)

    def key(self) -> str:
        return "mean-rgb"


class PlantedClip:
    """Image -> unit mean RGB ``(3,)``; text -> ``texts[text]`` or a fixed hashed unit vector."""

    name = fingerprint = "planted-clip"
    family = "planted"
    embed_dim = 3
    supports = frozenset()

    def __init__(self, texts: dict[str, list[float]] | None = None):
        self.texts = texts or {}
        self.preprocess = _Pre()

    def encode_images(self, pixels, normalize=True):
        return torch.nn.functional.normalize(pixels.float(), dim=-1)

    def encode_texts(self, texts, normalize=True):
        rows = []
        for t in texts:
            if t in self.texts:
                rows.append(self.texts[t])
            else:
                seed = int(hashlib.sha256(t.encode()).hexdigest()[:8], 16)
                rows.append(np.random.default_rng(seed).normal(size=3).tolist())
        return torch.nn.functional.normalize(torch.tensor(rows, dtype=torch.float32), dim=-1)


def mean_rgb(image) -> tuple[int, int, int]:
    pil = open_image(image)
    return tuple(int(round(v)) for v in np.asarray(pil, np.float32).reshape(-1, 3).mean(0))


class PlantedChat:
    """``reply(conversation, temperature) -> str``; ``yes(query_rgb, reference_rgb) -> (l_yes, l_no)``."""

    name = "planted-chat"
    fingerprint = "planted-chat"
    capabilities = frozenset({"images", "multi_image", "score"})

    def __init__(self, reply=None, yes=None):
        self.reply, self.yes = reply, yes
        self.calls: list[tuple[str, float]] = []
        self.scored: list[tuple] = []

    def generate(self, conversations, *, max_new_tokens=64, temperature=0.0, seed=0):
        out = []
        for c in conversations:
            out.append(self.reply(c, temperature))
            self.calls.append((c[-1].text, temperature))
        return out

    def score(self, conversation, options):
        query, reference = conversation_images(conversation)[:2]
        self.scored.append((mean_rgb(query), mean_rgb(reference)))
        return list(self.yes(mean_rgb(query), mean_rgb(reference)))


def solid(path: Path, rgb) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 8), tuple(rgb)).save(path)
    return path
