"""The classifier under audit, seen only through its predictions (image file -> class name).

Specs for ``--classifier``:

- ``zeroshot:<model>``: zero-shot CLIP (Radford et al., 2021) with any contrastive model name of
  :func:`vlmkit.models.load_model` and the class prompts (template-averaged);
- ``hf:<dir>``: a Hugging Face image-classification checkpoint (``AutoModelForImageClassification``
  and its image processor); class names from ``config.id2label``;
- ``probe:<file>``: a linear probe (:mod:`vlmkit.audit.probe`) over a contrastive model's embeddings.

Through the API, any object with ``predict(paths) -> list[str]`` or any callable
``paths -> list[str]`` (:func:`as_classifier`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from vlmkit.errors import UserError

SPEC_HELP = "use zeroshot:<model>, hf:<dir> or probe:<file>"


@runtime_checkable
class Classifier(Protocol):
    """Predicts a class name for each image file."""

    name: str

    def predict(self, paths: Sequence[str]) -> list[str]: ...


@dataclass
class CallableClassifier:
    """Wraps a function ``paths -> class names``."""

    fn: Callable[[Sequence[str]], Sequence[str]]
    name: str = "callable"

    def predict(self, paths: Sequence[str]) -> list[str]:
        out = [str(label) for label in self.fn(list(paths))]
        if len(out) != len(paths):
            raise ValueError(f"classifier {self.name} returned {len(out)} predictions for {len(paths)} images")
        return out


def as_classifier(obj) -> Classifier:
    """A :class:`Classifier` from an object with ``predict`` or a plain callable."""
    if hasattr(obj, "predict"):
        return obj
    if callable(obj):
        return CallableClassifier(obj, getattr(obj, "__name__", "callable"))
    raise TypeError("a classifier is an object with predict(paths) or a callable paths -> class names")


class _EmbeddingClassifier:
    """Shared part of zero-shot and probe classifiers: embed files with a contrastive model."""

    def __init__(self, model, batch_size: int, cache):
        self.model, self.batch_size, self.cache = model, batch_size, cache

    def _embed(self, paths: Sequence[str]) -> np.ndarray:
        from vlmkit.embed import embed_images

        return embed_images(self.model, list(paths), batch_size=self.batch_size, cache=self.cache).vectors


class ZeroShotClassifier(_EmbeddingClassifier):
    """Zero-shot CLIP over ``classes`` with prompt ``templates`` (each with one ``{}``)."""

    def __init__(self, model, classes: Sequence[str], templates: Sequence[str], *, name: str, batch_size: int = 32, cache=None):
        from vlmkit.classify.zeroshot import class_embeddings

        super().__init__(model, batch_size, cache)
        self.name, self.classes = name, list(classes)
        self.class_vectors = class_embeddings(model, self.classes, list(templates), cache=cache)

    def predict(self, paths: Sequence[str]) -> list[str]:
        scores = self._embed(paths) @ self.class_vectors.T
        return [self.classes[i] for i in scores.argmax(1)]


class ProbeClassifier(_EmbeddingClassifier):
    """A :class:`~vlmkit.audit.probe.LinearProbe` over its contrastive model's embeddings."""

    def __init__(self, probe, model, *, name: str, batch_size: int = 32, cache=None):
        super().__init__(model, batch_size, cache)
        self.name, self.probe, self.classes = name, probe, list(probe.classes)

    def predict(self, paths: Sequence[str]) -> list[str]:
        return self.probe.predict(self._embed(paths))


class HFImageClassifier:
    """A Hugging Face image-classification checkpoint (``AutoModelForImageClassification``)."""

    def __init__(self, directory: str, *, device: str = "cpu", batch_size: int = 32):
        from transformers import AutoImageProcessor, AutoModelForImageClassification

        from vlmkit.models.quiet import quiet_transformers

        try:
            with quiet_transformers():
                self.processor = AutoImageProcessor.from_pretrained(directory)
                self.model = AutoModelForImageClassification.from_pretrained(directory).to(device).eval()
        except (OSError, ValueError) as exc:
            raise UserError(f"cannot load an image-classification checkpoint from {directory} ({type(exc).__name__}); "
                            "pass a folder with config.json, weights and preprocessor_config.json") from exc
        self.name, self.device, self.batch_size = f"hf:{directory}", device, batch_size
        self.classes = [self.model.config.id2label[i] for i in range(self.model.config.num_labels)]

    def predict(self, paths: Sequence[str]) -> list[str]:
        import torch

        from vlmkit.data.images import load_image

        out: list[str] = []
        for start in range(0, len(paths), self.batch_size):
            images = [load_image(p) for p in paths[start : start + self.batch_size]]
            inputs = self.processor(images=images, return_tensors="pt").to(self.device)
            with torch.no_grad():
                logits = self.model(**inputs).logits
            out += [self.classes[i] for i in logits.argmax(-1).tolist()]
        return out


def load_classifier(spec: str, classes: Sequence[str], *, templates: Sequence[str] = ("a photo of a {}.",), device: str = "cpu",
                    batch_size: int = 32, cache=None) -> Classifier:
    """The classifier a ``--classifier`` spec names (see the module docstring)."""
    from vlmkit.models import load_model

    kind, sep, rest = spec.partition(":")
    if not sep or not rest:
        raise UserError(f"unknown --classifier {spec!r}; {SPEC_HELP}")
    if kind == "zeroshot":
        return ZeroShotClassifier(load_model(rest, device=device), classes, templates, name=spec, batch_size=batch_size, cache=cache)
    if kind == "probe":
        from vlmkit.audit.probe import LinearProbe

        probe = LinearProbe.load(rest)
        return ProbeClassifier(probe, load_model(probe.model, device=device), name=spec, batch_size=batch_size, cache=cache)
    if kind == "hf":
        if not Path(rest).expanduser().is_dir():
            raise UserError(f"--classifier {spec}: {rest} is not a folder; pass a saved image-classification checkpoint")
        return HFImageClassifier(str(Path(rest).expanduser()), device=device, batch_size=batch_size)
    raise UserError(f"unknown --classifier kind {kind!r}; {SPEC_HELP}")


def check_labels(classifier, targets: Sequence[str]) -> None:
    """One line when a classifier with a known label set cannot predict some target at all."""
    known = getattr(classifier, "classes", None)
    if known is None:
        return
    missing = sorted(set(targets) - set(known))
    if missing:
        raise UserError(f"classifier {classifier.name} cannot predict {', '.join(missing[:5])}: its classes are "
                        f"{', '.join(list(known)[:8])}{' ...' if len(known) > 8 else ''}; pass --classes with its class names")
