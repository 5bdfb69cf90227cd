"""Personal concepts: an identifier, a category and a few reference images.

On disk (what ``vlmkit r2p build --concepts DIR`` reads), one folder per concept::

    DIR/<id>/concept.json      {"id": "dax", "category": "star"}   (optional; id = folder name)
    DIR/<id>/*.png|*.jpg       the reference images (at most 5 are used, in name order)

R2P (arXiv 2503.18623) uses at most five references per concept; extra images are ignored and
counted in the build log, never silently mixed with test images.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from vlmkit.errors import UserError

MAX_REFERENCES = 5
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-]*$")


@dataclass(frozen=True)
class Concept:
    """One personal concept: ``id`` (a word, e.g. ``dax``), ``category`` (``star``, ``dog``)
    and its reference image paths (1 to :data:`MAX_REFERENCES`)."""

    id: str
    category: str
    references: tuple[Path, ...]

    def __post_init__(self):
        if not ID_PATTERN.match(self.id):
            raise UserError(f"concept id {self.id!r} must be one word of letters, digits, '_' or '-'; rename its folder")
        if not self.references:
            raise UserError(f"concept {self.id!r} has no reference image; put 1 to {MAX_REFERENCES} PNG/JPEG files in its folder")


def read_concepts(directory: str | Path, default_category: str = "object") -> tuple[list[Concept], dict[str, int]]:
    """The concepts under ``directory`` (sorted by id) and, per id, how many extra images were
    ignored beyond :data:`MAX_REFERENCES`."""
    from vlmkit.runs.readers import need_dir, read_json

    fix = "give a folder with one sub-folder of reference images per concept (and optional concept.json with id and category)"
    directory = need_dir(directory, "concepts folder", fix)
    concepts, ignored = [], {}
    for folder in sorted(p for p in directory.iterdir() if p.is_dir() and not p.name.startswith(".")):
        meta = {}
        if (folder / "concept.json").is_file():
            meta = read_json(folder / "concept.json", "concept file", 'write {"id": "<word>", "category": "<category>"}', dict)
        images = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        concept = Concept(str(meta.get("id", folder.name)), str(meta.get("category", default_category)),
                          tuple(images[:MAX_REFERENCES]))
        ignored[concept.id] = max(0, len(images) - MAX_REFERENCES)
        concepts.append(concept)
    if not concepts:
        raise UserError(f"concepts folder {directory} has no concept sub-folder; {fix}")
    ids = [c.id for c in concepts]
    if len(set(ids)) != len(ids):
        raise UserError(f"concepts folder {directory} names a concept id twice; give every concept its own id")
    return concepts, ignored
