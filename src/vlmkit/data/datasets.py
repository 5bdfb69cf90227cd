"""Image datasets: JSONL manifests and class-per-folder trees.

Manifest format (one JSON object per line; see ``docs/datasets.md``)::

    {"path": "img/0001.png", "label": "circle", "attributes": {"color": "red"}, "group": "circle|blue"}

- ``path`` (required): relative to the manifest's folder, or absolute.
- ``label`` (optional): the class of a single-label task.
- ``labels`` (optional): a list of labels for multi-label tasks.
- ``attributes`` (optional): name -> value (string, number or boolean) ground truth.
- ``group`` (optional): the group used for worst-group accuracy.
- ``caption`` (optional): a text describing the image.

Other keys are kept in :attr:`Sample.extra`. Blank lines are ignored.

A dataset may carry its own prompt templates: a ``prompts.json`` beside the manifest maps a
target (``label`` or an attribute name) to a list of templates with ``{}``. Zero-shot
classification uses them when no ``--templates`` are given.
"""

from __future__ import annotations

import json
from pathlib import Path

from vlmkit.data.images import IMAGE_SUFFIXES
from vlmkit.data.types import ImageDataset, Sample
from vlmkit.errors import DatasetError
from vlmkit.runs.readers import read_json, read_text

MANIFEST_NAME = "manifest.jsonl"
PROMPTS_NAME = "prompts.json"
_KNOWN_KEYS = {"path", "label", "labels", "attributes", "group", "caption"}

__all__ = ["ImageDataset", "Sample", "load_dataset", "read_image_folder", "read_manifest", "write_manifest"]


def _parse_row(row: object, where: str, root: Path) -> Sample:
    if not isinstance(row, dict):
        raise DatasetError(f"{where} is not a JSON object; each manifest line must look like {{\"path\": \"img.png\", \"label\": \"cat\"}}")
    if not isinstance(row.get("path"), str) or not row["path"]:
        raise DatasetError(f"{where} has no \"path\" string; add the image path (relative to the manifest's folder)")
    labels = row.get("labels", [])
    if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
        raise DatasetError(f"{where}: \"labels\" must be a list of strings")
    attributes = row.get("attributes", {})
    if not isinstance(attributes, dict) or not all(isinstance(v, (str, int, float, bool)) or v is None for v in attributes.values()):
        raise DatasetError(f"{where}: \"attributes\" must be an object of name -> string/number/boolean")
    for key in ("label", "group", "caption"):
        if key in row and row[key] is not None and not isinstance(row[key], str):
            raise DatasetError(f"{where}: \"{key}\" must be a string")
    path = Path(row["path"])
    return Sample(
        path=path if path.is_absolute() else root / path,
        label=row.get("label"), labels=tuple(labels), attributes=attributes,
        group=row.get("group"), caption=row.get("caption"),
        extra={k: v for k, v in row.items() if k not in _KNOWN_KEYS},
    )


def read_manifest(path: str | Path) -> ImageDataset:
    """Read a JSONL manifest. Raises :class:`DatasetError` naming the first bad line."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"manifest not found: {path}; pass an existing .jsonl file or an image folder")
    root = path.parent
    samples = []
    text = read_text(path, "manifest", "write one JSON object per line (UTF-8), see docs/datasets.md", allow_empty=True)
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path} line {number}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DatasetError(f"{where} is not valid JSON ({exc.msg}); fix or remove that line") from exc
        samples.append(_parse_row(row, where, root))
    name = path.stem if path.name != MANIFEST_NAME else root.name
    return ImageDataset(name=name, root=root, samples=samples, prompts=_read_prompts(root / PROMPTS_NAME))


def _read_prompts(path: Path) -> dict[str, list[str]]:
    if not path.is_file():
        return {}
    prompts = read_json(path, "prompt file", "map each target name to a list of templates, or delete it")
    if not isinstance(prompts, dict) or not all(isinstance(v, list) and all(isinstance(t, str) for t in v) for v in prompts.values()):
        raise DatasetError(f"{path} must map each target name to a list of templates, e.g. {{\"color\": [\"a {{}} shape.\"]}}")
    return prompts


def read_image_folder(root: str | Path) -> ImageDataset:
    """A class-per-folder tree: ``root/<class>/<image>``; the folder name is the label."""
    root = Path(root)
    samples = [
        Sample(path=image, label=class_dir.name, attributes={"class": class_dir.name})
        for class_dir in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
        for image in sorted(class_dir.iterdir())
        if image.suffix.lower() in IMAGE_SUFFIXES
    ]
    return ImageDataset(name=root.name, root=root, samples=samples)


def load_dataset(source: str | Path) -> ImageDataset:
    """Load a manifest file, a folder holding ``manifest.jsonl``, a class-per-folder tree, or a
    published dataset as ``<format>:<folder>[@<split>]`` (:mod:`vlmkit.data.published`).

    Raises:
        DatasetError: the source is missing, malformed, or holds no images.
    """
    from vlmkit.data.published import load_published

    published = load_published(str(source))
    if published is not None:
        if not published.samples:
            raise DatasetError(f"{source} holds no images for that split")
        return published
    source = Path(source).expanduser()
    if source.is_file():
        dataset = read_manifest(source)
    elif (source / MANIFEST_NAME).is_file():
        dataset = read_manifest(source / MANIFEST_NAME)
    elif source.is_dir():
        dataset = read_image_folder(source)
    else:
        raise DatasetError(f"dataset not found: {source}; pass a manifest .jsonl file or a folder of class sub-folders")
    if not dataset.samples:
        raise DatasetError(
            f"dataset {source} has no images; a folder dataset needs <class>/<image> sub-folders "
            f"(image suffixes {', '.join(sorted(IMAGE_SUFFIXES))}), a manifest needs at least one line"
        )
    return dataset


def write_manifest(samples: list[Sample], path: str | Path) -> Path:
    """Write samples as a JSONL manifest (atomically), paths relative to its folder."""
    from vlmkit.runs.files import atomic_write_text

    path = Path(path)
    lines = [json.dumps(s.to_row(path.parent), sort_keys=True) for s in samples]
    return atomic_write_text(path, "\n".join(lines) + "\n")
