"""Zero-shot classification with a contrastive model (Radford et al., 2021, CLIP §3.1.4).

Each class is embedded as the normalised mean of its normalised template embeddings; an image
is assigned the class of highest cosine similarity.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from vlmkit.embed import embed_texts
from vlmkit.errors import UserError
from vlmkit.metrics.classification import accuracy, confusion_matrix, per_class_accuracy


def class_embeddings(model, classes: list[str], templates: list[str], cache=None) -> np.ndarray:
    """``(n_classes, dim)`` unit vectors: the template-averaged text embedding of each class."""
    prompts = [template.format(name) for name in classes for template in templates]
    vectors = torch.from_numpy(embed_texts(model, prompts, cache=cache).vectors)
    per_class = vectors.reshape(len(classes), len(templates), -1).mean(1)
    return F.normalize(per_class, dim=-1).numpy()


def check_classes(classes: list[str], targets: list[str | None], what: str) -> None:
    """The class list must cover every target in the dataset and have at least two entries."""
    if len(classes) < 2:
        raise UserError(f"zero-shot classification needs at least two classes, got {classes}; pass --classes a,b,...")
    present = {t for t in targets if t is not None}
    missing = sorted(present - set(classes))
    if missing:
        shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
        raise UserError(f"{what} values {shown} are not among --classes; add them to --classes or leave --classes out to use the dataset's "
                        "own")
    if not present:
        raise UserError(f"no sample has a {what}; pass --attribute NAME to classify an attribute, or add \"label\" to the manifest")


@dataclass
class ZeroShotResult:
    classes: list[str]
    y_true: np.ndarray  # (n,) class indices
    y_pred: np.ndarray  # (n,)
    scores: np.ndarray  # (n, n_classes) cosine similarities

    def summary(self) -> dict:
        matrix = confusion_matrix(self.y_true, self.y_pred, len(self.classes))
        per_class = per_class_accuracy(matrix)
        return {
            "n": int(len(self.y_true)), "accuracy": accuracy(self.y_true, self.y_pred),
            "per_class_accuracy": {c: (None if np.isnan(a) else float(a)) for c, a in zip(self.classes, per_class, strict=True)},
            "confusion_matrix": matrix.tolist(), "classes": self.classes,
        }


def zeroshot_classify(image_vectors: np.ndarray, class_vectors: np.ndarray, targets: list[str], classes: list[str]) -> ZeroShotResult:
    """Classify ``(n, dim)`` image embeddings against ``(n_classes, dim)`` class embeddings."""
    scores = image_vectors @ class_vectors.T
    index = {c: i for i, c in enumerate(classes)}
    return ZeroShotResult(classes, np.asarray([index[t] for t in targets]), scores.argmax(1), scores)
