"""Concept vocabularies: one concept (a word or short phrase) per line.

Shipped names: ``default`` (20,000 English lemmas built from word frequencies by
``scripts/build_vocab.py``) and ``world`` (the shapes world's attribute values plus distractors).
Any other value is read as a text file; blank lines and lines starting with ``#`` are ignored,
and duplicates keep their first occurrence.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from vlmkit.errors import UserError
from vlmkit.runs.readers import read_text

SHIPPED = ("default", "world")


def parse_vocabulary(text: str) -> list[str]:
    seen: dict[str, None] = {}
    for line in text.splitlines():
        concept = line.strip()
        if concept and not concept.startswith("#"):
            seen.setdefault(concept, None)
    return list(seen)


def load_vocabulary(spec: str) -> list[str]:
    """A shipped vocabulary by name, or a text file; raises :class:`UserError` when unusable."""
    if spec in SHIPPED:
        text = resources.files("vlmkit.interpret").joinpath(f"vocab/{spec}.txt").read_text()
    else:
        path = Path(spec)
        if not path.exists():
            raise UserError(f"vocabulary {spec!r} is neither a shipped one ({', '.join(SHIPPED)}) nor a file")
        text = read_text(path, "vocabulary file", "write one concept per line (UTF-8)")
    concepts = parse_vocabulary(text)
    if len(concepts) < 2:
        raise UserError(f"vocabulary {spec!r} has {len(concepts)} concept(s); give at least 2, one per line")
    return concepts


def vocabulary_name(spec: str) -> str:
    """A short name for run records and artefact keys: the shipped name or the file's stem."""
    return spec if spec in SHIPPED else Path(spec).stem
