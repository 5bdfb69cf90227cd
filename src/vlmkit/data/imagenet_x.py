"""ImageNet-X (Idrissi et al., ICLR 2023): per-image factor annotations of ImageNet validation
images, the ground-truth biases C2B is evaluated against on ImageNet (arXiv 2504.20902, §4).

Layout of ``imagenetx:<folder>[@multi|top]``::

    <folder>/val/<wnid>/ILSVRC2012_val_00000001.JPEG   the standard validation folders, one per synset
    <folder>/imagenet_x_val_multi_factor.jsonl          from the imagenet-x release (or _top_factor)
    <folder>/LOC_synset_mapping.txt                     optional: "n01440764 tench, Tinca tinca" lines

Each annotation row holds ``file_name``, ``class`` (the class index, 0-999, in sorted-wnid
order) and one 0/1 column per factor (:data:`FACTORS`). A sample's ``label`` is the class's
first name from ``LOC_synset_mapping.txt`` (its wnid without it), and its attributes are the 16
factors as booleans (``background: True`` when the annotators named background as what makes
the image differ from the class's prototypes) plus ``wnid``. Annotated files missing from the
folders are skipped.
"""

from __future__ import annotations

from pathlib import Path

from vlmkit.data.types import ImageDataset, Sample
from vlmkit.errors import DatasetError

FACTORS = ("pose", "background", "pattern", "color", "smaller", "shape", "partial_view", "subcategory", "texture", "larger",
           "darker", "object_blocking", "person_blocking", "style", "brighter", "multiple_objects")
LAYOUT = "expected <folder>/val/<wnid>/<file>.JPEG and <folder>/imagenet_x_val_<multi|top>_factor.jsonl (see docs/c2b.md)"


def _class_names(root: Path, wnids: list[str]) -> list[str]:
    mapping = root / "LOC_synset_mapping.txt"
    if not mapping.is_file():
        return wnids
    from vlmkit.runs.readers import read_lines

    names = {}
    for line in read_lines(mapping, "synset mapping", LAYOUT):
        wnid, _, rest = line.partition(" ")
        names[wnid] = rest.split(",")[0].strip() or wnid
    return [names.get(w, w) for w in wnids]


def imagenet_x(root: Path, split: str = "multi") -> ImageDataset:
    """The annotated validation images under ``root`` (``split``: ``multi`` or ``top`` factors)."""
    from vlmkit.runs.readers import read_jsonl

    images = root / "val"
    if not images.is_dir():
        raise DatasetError(f"no validation folder {images}; {LAYOUT}")
    wnids = sorted(p.name for p in images.iterdir() if p.is_dir())
    names = _class_names(root, wnids)
    files = {p.name: p for wnid in wnids for p in (images / wnid).iterdir()}
    rows = read_jsonl(root / f"imagenet_x_val_{split}_factor.jsonl", "ImageNet-X annotation file", LAYOUT)
    samples = []
    for number, row in enumerate(rows, start=1):
        if not isinstance(row, dict) or "file_name" not in row or "class" not in row:
            raise DatasetError(f"{root}/imagenet_x_val_{split}_factor.jsonl line {number} lacks file_name or class; {LAYOUT}")
        path = files.get(row["file_name"])
        if path is None:
            continue
        index = int(row["class"])
        if not 0 <= index < len(wnids):
            raise DatasetError(f"{row['file_name']}: class {index} but only {len(wnids)} synset folders under {images}; {LAYOUT}")
        if path.parent.name != wnids[index]:
            raise DatasetError(
                f"{row['file_name']} is annotated as class {index} ({wnids[index]}) but lies in {path.parent.name}; {LAYOUT}"
            )
        attributes = {factor: bool(row.get(factor, 0)) for factor in FACTORS}
        samples.append(Sample(path, label=names[index], attributes={**attributes, "wnid": wnids[index]}))
    if not samples:
        raise DatasetError(f"none of the {len(rows)} annotated files is under {images}; {LAYOUT}")
    return ImageDataset(f"imagenetx-{split}", root, samples)
