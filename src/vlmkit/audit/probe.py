"""Linear probes over a contrastive model's image embeddings: ``probe:<file>`` classifiers.

A probe is multinomial logistic regression on unit image embeddings, ``logits = x W^T + b``
with ``W`` ``(n_classes, dim)``, fitted by L-BFGS with an L2 penalty. It is stored as one
safetensors file (tensors ``weight`` and ``bias``; metadata ``model`` (the contrastive model's
name), ``classes`` (JSON list) and ``format`` = ``vlmkit-probe``), never as a pickle.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from vlmkit.errors import UserError

FORMAT = "vlmkit-probe"


@dataclass
class LinearProbe:
    """``weight`` ``(n_classes, dim)``, ``bias`` ``(n_classes,)``, over ``model``'s embeddings."""

    model: str
    classes: list[str]
    weight: np.ndarray
    bias: np.ndarray

    def logits(self, vectors: np.ndarray) -> np.ndarray:
        """``(n, dim)`` embeddings -> ``(n, n_classes)`` logits."""
        return np.asarray(vectors, np.float32) @ self.weight.T + self.bias

    def predict(self, vectors: np.ndarray) -> list[str]:
        return [self.classes[i] for i in self.logits(vectors).argmax(1)]

    def save(self, path: str | Path) -> Path:
        from safetensors.numpy import save_file

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        save_file({"weight": self.weight.astype(np.float32), "bias": self.bias.astype(np.float32)}, str(tmp),
                  metadata={"format": FORMAT, "model": self.model, "classes": json.dumps(self.classes)})
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> LinearProbe:
        """Read a probe file; anything else is one :class:`UserError` line."""
        from safetensors import safe_open

        from vlmkit.runs.readers import need_file

        fix = "pass a file written by vlmkit.audit.probe.LinearProbe.save"
        path = need_file(path, "probe file", fix)
        try:
            with safe_open(str(path), framework="numpy") as handle:
                meta = handle.metadata() or {}
                tensors = {name: handle.get_tensor(name) for name in handle.keys()}
        except Exception as exc:  # safetensors raises its own error types for damaged files
            raise UserError(f"probe file {path} is not a safetensors file ({type(exc).__name__}); {fix}") from exc
        if meta.get("format") != FORMAT or {"weight", "bias"} - set(tensors) or "model" not in meta:
            raise UserError(f"probe file {path} lacks the weight/bias tensors or the model/classes metadata; {fix}")
        classes = json.loads(meta.get("classes", "[]"))
        if len(classes) != tensors["weight"].shape[0] or tensors["bias"].shape != (len(classes),):
            raise UserError(f"probe file {path}: {len(classes)} classes but a weight of shape {tensors['weight'].shape}; {fix}")
        return cls(meta["model"], classes, tensors["weight"], tensors["bias"])


def fit_probe(vectors: np.ndarray, labels: list[str], model: str, *, l2: float = 1e-3, steps: int = 200, seed: int = 0) -> LinearProbe:
    """Fit a probe on ``(n, dim)`` embeddings and their class names (classes sorted by name).

    Minimises mean cross-entropy + ``l2 * ||W||^2`` with L-BFGS (deterministic under ``seed``).
    """
    classes = sorted(set(labels))
    if len(classes) < 2:
        raise UserError("a probe needs at least two classes among its training labels")
    torch.manual_seed(seed)
    x = torch.as_tensor(np.asarray(vectors, np.float32))
    y = torch.as_tensor([classes.index(label) for label in labels])
    weight = torch.zeros(len(classes), x.shape[1], requires_grad=True)
    bias = torch.zeros(len(classes), requires_grad=True)
    optimizer = torch.optim.LBFGS([weight, bias], lr=1.0, max_iter=steps, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(x @ weight.T + bias, y) + l2 * weight.pow(2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    return LinearProbe(model, classes, weight.detach().numpy().copy(), bias.detach().numpy().copy())
