"""Personalisation benchmarks from local folders -> the layout ``vlmkit r2p build/eval`` reads.

Formats (``vlmkit r2p prepare --format F --data DIR --out OUT``):

- ``yollava``: Yo'LLaVA's published layout, ``DIR/train/<name>/*`` (reference images) and
  ``DIR/test/<name>/*`` (test images of that concept); at most 5 references are used.
- ``folders``: one folder per concept with all its images, ``DIR/<name>/*`` (the "usual layout"
  of the spec; MyVLM- and PerVA-style folders fit it once a concept's images sit in one folder).
  References are split off as in the derived R2P code: the ``references`` images whose
  embeddings are closest to the concept's mean embedding; the others are test images
  (so no image is both).

Both write ``OUT/concepts/<name>/`` (copies of the references and ``concept.json`` with the
category from ``--categories`` FILE, a JSON ``{"<name>": "<category>"}``, else ``object``) and
``OUT/manifest.jsonl`` (test images by absolute path). Negatives: the recognition protocol needs
queries showing none of the user's concepts; ``holdout`` concepts (drawn with ``seed``) are left
out of the database and their test images become negative queries (``concept: null``).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from vlmkit.errors import UserError
from vlmkit.personalize.concepts import IMAGE_SUFFIXES, MAX_REFERENCES

FORMATS = ("yollava", "folders")


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES) if folder.is_dir() else []


def _concept_folders(root: Path, fix: str) -> list[Path]:
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")) if root.is_dir() else []
    if not folders:
        raise UserError(f"{root} has no concept folder; {fix}")
    return folders


def read_yollava(root: Path) -> dict[str, tuple[list[Path], list[Path]]]:
    """name -> (references, test images) from ``train/<name>`` and ``test/<name>``."""
    fix = "Yo'LLaVA's layout is DIR/train/<name>/*.png and DIR/test/<name>/*.png"
    out = {}
    for folder in _concept_folders(root / "train", fix):
        refs, tests = _images(folder)[:MAX_REFERENCES], _images(root / "test" / folder.name)
        if not refs:
            raise UserError(f"{folder} holds no image; {fix}")
        out[folder.name] = (refs, tests)
    if not any(tests for _, tests in out.values()):
        raise UserError(f"{root / 'test'} holds no test image of any concept; {fix}")
    return out


def split_by_mean(embeddings: np.ndarray, n_references: int) -> tuple[list[int], list[int]]:
    """Indices of the ``n_references`` rows of ``embeddings (n, d)`` closest (cosine) to their
    renormalised mean, and of the others (test), each in index order. At least one image stays
    for testing when there are two or more."""
    from vlmkit.personalize.database import mean_embedding, unit

    n = len(embeddings)
    keep = min(n_references, n - 1) if n > 1 else n
    similarity = unit(embeddings) @ mean_embedding(embeddings)
    order = np.argsort(-similarity, kind="stable")
    return sorted(int(i) for i in order[:keep]), sorted(int(i) for i in order[keep:])


def read_folders(root: Path, clip, n_references: int, cache=None) -> dict[str, tuple[list[Path], list[Path]]]:
    from vlmkit.embed import embed_images

    fix = "give one folder of images per concept"
    out = {}
    for folder in _concept_folders(root, fix):
        images = _images(folder)
        if not images:
            raise UserError(f"{folder} holds no image; {fix}")
        refs, tests = split_by_mean(embed_images(clip, images, cache=cache).vectors, n_references)
        out[folder.name] = ([images[i] for i in refs], [images[i] for i in tests])
    return out


def write_prepared(concepts: dict[str, tuple[list[Path], list[Path]]], out: str | Path, *, holdout: int = 0, seed: int = 0,
                   categories: dict[str, str] | None = None) -> Path:
    """Write ``out/concepts`` and ``out/manifest.jsonl`` (see the module docstring)."""
    from vlmkit.runs.files import atomic_directory, atomic_write_json, atomic_write_text

    names = sorted(concepts)
    if not 0 <= holdout < len(names):
        raise UserError(f"--holdout must leave at least one of the {len(names)} concepts in the database")
    held = set(np.random.default_rng(seed).permutation(names)[:holdout].tolist()) if holdout else set()
    rows = []
    with atomic_directory(out) as root:
        for name in names:
            refs, tests = concepts[name]
            if name not in held:
                folder = root / "concepts" / name
                folder.mkdir(parents=True)
                for k, ref in enumerate(refs):
                    shutil.copyfile(ref, folder / f"ref_{k}{ref.suffix.lower()}")
                atomic_write_json(folder / "concept.json", {"id": name, "category": (categories or {}).get(name, "object")})
            rows += [{"path": str(p.resolve()), "concept": None if name in held else name, "source": name} for p in tests]
        atomic_write_text(root / "manifest.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    return Path(out) / "manifest.jsonl"
