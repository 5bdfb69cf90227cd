"""The concept database of R2P: concepts, fingerprints and their contrastive embeddings.

For concept ``c`` (arXiv 2503.18623, §3.1):

- ``f_c^V``: the mean of the L2-normalised embeddings of its reference images, renormalised
  (the paper's choice for several references is not published; this one is documented here);
- ``f_c^T``: the embedding of its fingerprint description, truncated to
  :data:`MAX_DESCRIPTION_WORDS` words first (CLIP reads 77 tokens; truncations are logged).

The database also stores the rejection thresholds of the retrieval-only methods, calibrated on
the references alone (:func:`leave_one_out_threshold`), so evaluation never looks at test images.

Saved as a folder: ``database.json`` (concepts, fingerprints, thresholds, the models' names),
``embeddings.npz`` (``image``, ``text``: ``(n_concepts, d)`` float32) and ``references/<id>/``
(copies of the reference images, so the folder is self-contained).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vlmkit.errors import UserError
from vlmkit.personalize.concepts import Concept
from vlmkit.personalize.fingerprint import Fingerprint

MAX_DESCRIPTION_WORDS = 50
FORMAT = "vlmkit-r2p-db/1"


def unit(x: np.ndarray) -> np.ndarray:
    """Rows of ``x`` scaled to unit L2 norm (zero rows stay zero)."""
    x = np.asarray(x, np.float64)
    norm = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.where(norm > 0, norm, 1.0)


def mean_embedding(references: np.ndarray) -> np.ndarray:
    """``(n_refs, d)`` -> the renormalised mean of the unit rows, ``(d,)``."""
    return unit(unit(references).mean(axis=0))


def truncate_words(text: str, limit: int = MAX_DESCRIPTION_WORDS) -> tuple[str, bool]:
    words = text.split()
    return (" ".join(words[:limit]), True) if len(words) > limit else (text, False)


def leave_one_out_threshold(reference_embeddings: list[np.ndarray], text: np.ndarray | None = None) -> float | None:
    """The lowest retrieval score a held-out reference gets from its own concept.

    For every concept with at least two references, each reference is scored against the mean of
    the others (image-image cosine; averaged with its cosine to the description when ``text``
    ``(n_concepts, d)`` is given, as the retrieval score ``s_c`` is). The minimum over all of them
    is the threshold below which the retrieval-only methods answer "none of my concepts".
    ``None`` when no concept has two references (those methods then never reject).
    """
    scores = []
    for c, refs in enumerate(reference_embeddings):
        refs = unit(refs)
        for r in range(len(refs)) if len(refs) > 1 else ():
            rest = mean_embedding(np.delete(refs, r, axis=0))
            s = float(refs[r] @ rest)
            if text is not None:
                s = 0.5 * (s + float(refs[r] @ unit(text[c])))
            scores.append(s)
    return min(scores) if scores else None


@dataclass
class ConceptDatabase:
    """Concepts with fingerprints and embeddings ``image``/``text`` ``(n_concepts, d)``."""

    concepts: list[Concept]
    fingerprints: list[Fingerprint]
    image: np.ndarray
    text: np.ndarray
    thresholds: dict[str, float | None] = field(default_factory=dict)
    info: dict = field(default_factory=dict)

    @property
    def ids(self) -> list[str]:
        return [c.id for c in self.concepts]

    def index(self, concept_id: str) -> int:
        return self.ids.index(concept_id)

    def save(self, out: str | Path, extra: dict[str, object] | None = None) -> Path:
        """Write the folder atomically (``out`` must not exist or be empty); ``extra``: more
        JSON files to write in it (name -> data), e.g. the build log."""
        from vlmkit.runs.files import atomic_directory, atomic_save_npz, atomic_write_json

        with atomic_directory(out) as staging:
            rows = []
            for concept, fp in zip(self.concepts, self.fingerprints, strict=True):
                folder = staging / "references" / concept.id
                folder.mkdir(parents=True)
                names = []
                for k, path in enumerate(concept.references):
                    name = f"{k:02d}{Path(path).suffix.lower()}"
                    shutil.copyfile(path, folder / name)
                    names.append(f"references/{concept.id}/{name}")
                rows.append({"id": concept.id, "category": concept.category, "references": names, "fingerprint": fp.to_json()})
            atomic_save_npz(staging / "embeddings.npz", image=self.image.astype(np.float32), text=self.text.astype(np.float32))
            for name, data in (extra or {}).items():
                atomic_write_json(staging / name, data)
            atomic_write_json(staging / "database.json", {"format": FORMAT, "concepts": rows, "thresholds": self.thresholds, **self.info})
        return Path(out)

    @classmethod
    def load(cls, folder: str | Path) -> ConceptDatabase:
        from vlmkit.runs.readers import need_dir, need_file, read_json, read_npz

        fix = "build one with `vlmkit r2p build --concepts DIR --out DB`"
        folder = need_dir(folder, "concept database", fix)
        meta = read_json(folder / "database.json", "concept database file", fix, dict)
        if meta.get("format") != FORMAT:
            raise UserError(f"{folder} is not a vlmkit R2P database (format {meta.get('format')!r}); {fix}")
        arrays = read_npz(folder / "embeddings.npz", "concept embeddings", fix, ("image", "text"))
        try:
            concepts = [Concept(r["id"], r["category"], tuple(folder / p for p in r["references"])) for r in meta["concepts"]]
            fingerprints = [Fingerprint.from_json(r["fingerprint"]) for r in meta["concepts"]]
        except (KeyError, TypeError) as exc:
            raise UserError(f"{folder / 'database.json'} lacks {exc} in a concept entry; {fix}") from exc
        for concept in concepts:  # the pairwise step shows a reference: each must still be there
            for path in concept.references:
                need_file(path, f"reference image of concept {concept.id!r}", fix)
        if arrays["image"].shape[0] != len(concepts) or arrays["text"].shape != arrays["image"].shape:
            raise UserError(f"{folder / 'embeddings.npz'} does not match its {len(concepts)} concepts; {fix}")
        info = {k: v for k, v in meta.items() if k not in ("format", "concepts", "thresholds")}
        return cls(concepts, fingerprints, arrays["image"], arrays["text"], dict(meta.get("thresholds", {})), info)


def build_database(chat, clip, concepts: list[Concept], *, mode: str = "json", retries: int = 2, seed: int = 0,
                   cache=None, batch_size: int = 32) -> tuple[ConceptDatabase, list[list[dict]]]:
    """Fingerprint every concept with ``chat`` and embed it with ``clip``; returns the database and
    the fingerprint attempts (for the build log)."""
    from vlmkit.embed import embed_images, embed_texts
    from vlmkit.personalize.fingerprint import fingerprints_json, fingerprints_questions

    if mode == "json":
        fingerprints, attempts = fingerprints_json(chat, concepts, retries=retries, seed=seed)
    elif mode == "questions":
        fingerprints, attempts = fingerprints_questions(chat, concepts)
    else:
        raise UserError(f"unknown fingerprint mode {mode!r}; use json or questions")
    paths = [p for c in concepts for p in c.references]
    flat = embed_images(clip, paths, batch_size=batch_size, cache=cache).vectors
    refs, at = [], 0
    for c in concepts:
        refs.append(flat[at: at + len(c.references)])
        at += len(c.references)
    image = np.stack([mean_embedding(r) for r in refs]).astype(np.float32)
    texts, truncated = zip(*(truncate_words(fp.description) for fp in fingerprints), strict=True)
    text = unit(embed_texts(clip, list(texts), cache=cache).vectors).astype(np.float32)
    thresholds = {"clip-retrieval": leave_one_out_threshold(refs), "retrieval": leave_one_out_threshold(refs, text)}
    info = {"chat_model": chat.name, "clip_model": clip.name, "fingerprint_mode": mode,
            "truncated_descriptions": [c.id for c, t in zip(concepts, truncated, strict=True) if t]}
    return ConceptDatabase(list(concepts), fingerprints, image, text, thresholds, info), attempts
