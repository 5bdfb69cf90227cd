"""The dataset types every loader returns: :class:`Sample` (one image and its ground truth) and
:class:`ImageDataset`. A leaf module: loaders (:mod:`vlmkit.data.datasets`,
:mod:`vlmkit.data.published`, :mod:`vlmkit.data.attribute_datasets`, ...) import it, it imports
none of them."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Sample:
    """One image and its ground truth."""

    path: Path
    label: str | None = None
    labels: tuple[str, ...] = ()
    attributes: dict = field(default_factory=dict)
    group: str | None = None
    caption: str | None = None
    extra: dict = field(default_factory=dict)

    def target(self, attribute: str | None = None) -> str | None:
        """The class of this sample: ``label``, or the value of ``attribute`` as a string."""
        if attribute is None:
            return self.label
        value = self.attributes.get(attribute)
        return None if value is None else str(value)

    def to_row(self, root: Path) -> dict:
        """The manifest row, with ``path`` relative to ``root`` when it lies below it."""
        try:
            path = str(self.path.relative_to(root))
        except ValueError:
            path = str(self.path)
        row: dict = {"path": path}
        for key in ("label", "group", "caption"):
            if getattr(self, key) is not None:
                row[key] = getattr(self, key)
        if self.labels:
            row["labels"] = list(self.labels)
        if self.attributes:
            row["attributes"] = self.attributes
        return {**row, **self.extra}


@dataclass
class ImageDataset:
    """A list of samples and where they came from."""

    name: str
    root: Path
    samples: list[Sample]
    prompts: dict[str, list[str]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.samples)

    @property
    def paths(self) -> list[Path]:
        return [s.path for s in self.samples]

    def targets(self, attribute: str | None = None) -> list[str | None]:
        return [s.target(attribute) for s in self.samples]

    def classes(self, attribute: str | None = None) -> list[str]:
        """Sorted distinct targets (``None`` excluded)."""
        return sorted({t for t in self.targets(attribute) if t is not None})

    def attribute_names(self) -> list[str]:
        return sorted({name for s in self.samples for name in s.attributes})
