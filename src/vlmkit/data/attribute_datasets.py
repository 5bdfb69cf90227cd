"""OVAD and VAW, the attribute-detection benchmarks, read from local folders (box-oracle crops).

Each ground-truth box becomes one sample: the box is cropped from its image once and stored under
the vlmkit cache (``$VLMKIT_CACHE/crops/<dataset digest>/``), and the sample's ``attributes`` map
every attribute name to 1 (positive), 0 (negative) or -1 (unknown) — the format
``vlmkit comca eval`` reads.

- ``ovad:<folder>``: ``<folder>/ovad2000.json`` (COCO format: ``images`` with ``id`` and
  ``file_name``; ``annotations`` with ``image_id``, ``bbox`` [x, y, w, h], ``area``,
  ``category_id`` and ``att_vec`` (1 / 0 / -1 per attribute); ``attributes`` with ``id`` and
  ``name`` ``"<type>:<syn1>/<syn2>"``) and the COCO images in ``<folder>/val2017/``. Boxes of area
  below 50 pixels are skipped, as in the OVAD box-oracle code. The attribute name used is the whole
  ``"<type>:<synonyms>"`` string; its synonyms are the part after the colon.
- ``vaw:<folder>[@split]``: ``<folder>/data/<split>.json`` (or ``<folder>/<split>.json``), a list of
  instances with ``image_id``, ``instance_bbox`` [x, y, w, h], ``object_name``,
  ``positive_attributes`` and ``negative_attributes``, and the Visual Genome images in
  ``VG_100K/`` or ``VG_100K_2/`` as ``<image_id>.jpg``; split ``test`` (default) or ``val``.
  Attributes never labelled for an instance are unknown (-1).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from PIL import Image
from pydantic import BaseModel, ConfigDict
from pydantic import Field as PydField

from vlmkit.data.types import ImageDataset, Sample
from vlmkit.errors import DatasetError
from vlmkit.runs.readers import read_json

MIN_AREA = 50.0


def _crop_dir(source: Path) -> Path:
    from vlmkit.runs.cache import default_cache_dir

    digest = hashlib.sha256(str(source.resolve()).encode()).hexdigest()[:16]
    return default_cache_dir() / "crops" / digest


def _crop(image_path: Path, box, out: Path) -> Path:
    if not out.is_file():
        x, y, w, h = (float(v) for v in box)
        try:
            with Image.open(image_path) as image:
                crop = image.convert("RGB").crop((int(x), int(y), int(x + w), int(y + h)))
        except OSError as exc:
            raise DatasetError(f"cannot read {image_path}: {exc}") from exc
        out.parent.mkdir(parents=True, exist_ok=True)
        crop.save(out)
    return out


class _OvadImage(BaseModel):
    id: int
    file_name: str


class _OvadAnnotation(BaseModel):
    id: int
    image_id: int
    bbox: list[float] = PydField(min_length=4, max_length=4)
    area: float | None = None
    category_id: int
    att_vec: list[int]


class _OvadAttribute(BaseModel):
    id: int
    name: str


class _OvadFile(BaseModel):
    model_config = ConfigDict(extra="allow")

    images: list[_OvadImage]
    annotations: list[_OvadAnnotation]
    attributes: list[_OvadAttribute]


class _VawInstance(BaseModel):
    model_config = ConfigDict(extra="allow")

    image_id: str | int
    instance_id: str | int
    instance_bbox: list[float] = PydField(min_length=4, max_length=4)
    object_name: str
    positive_attributes: list[str] = []
    negative_attributes: list[str] = []


_OVAD_FIX = "see docs/comca.md for OVAD's layout (ovad2000.json in COCO format with att_vec per box)"


def _read_ovad(root: Path) -> _OvadFile:
    return read_json(Path(root) / "ovad2000.json", "OVAD annotations", _OVAD_FIX, _OvadFile)


def ovad(root: Path) -> ImageDataset:
    data = _read_ovad(root)
    names = [a.name for a in sorted(data.attributes, key=lambda a: a.id)]
    files = {image.id: image.file_name for image in data.images}
    crops = _crop_dir(Path(root) / "ovad2000.json")
    samples = []
    for ann in data.annotations:
        if float(ann.area if ann.area is not None else ann.bbox[2] * ann.bbox[3]) < MIN_AREA:
            continue
        if ann.image_id not in files or len(ann.att_vec) != len(names):
            raise DatasetError(f"{root}/ovad2000.json: box {ann.id} names an unknown image or has {len(ann.att_vec)} attribute values "
                               f"for {len(names)} attributes; {_OVAD_FIX}")
        crop = _crop(root / "val2017" / files[ann.image_id], ann.bbox, crops / f"{ann.id}.png")
        samples.append(Sample(crop, label=str(ann.category_id), attributes=dict(zip(names, ann.att_vec, strict=True))))
    return ImageDataset("ovad", root, samples)


def vaw(root: Path, split: str = "test") -> ImageDataset:
    candidates = [root / "data" / f"{split}.json", root / f"{split}.json"]
    path = next((p for p in candidates if p.is_file()), None)
    if path is None:
        raise DatasetError(f"VAW annotations for {split!r} not found in {root}/data/ or {root}/")
    instances = read_json(path, "VAW annotations", "see docs/comca.md for VAW's layout (a list of instances)", list[_VawInstance])
    names = sorted({a for inst in instances for a in (*inst.positive_attributes, *inst.negative_attributes)})
    crops = _crop_dir(path)
    samples = []
    for inst in instances:
        image = next((d / f"{inst.image_id}.jpg" for d in (root / "VG_100K", root / "VG_100K_2") if (d / f"{inst.image_id}.jpg").is_file()),
                     None)
        if image is None:
            raise DatasetError(f"image {inst.image_id}.jpg not found in {root}/VG_100K or VG_100K_2")
        labels = {a: -1 for a in names} | {a: 0 for a in inst.negative_attributes} | {a: 1 for a in inst.positive_attributes}
        crop = _crop(image, inst.instance_bbox, crops / f"{inst.instance_id}.png")
        samples.append(Sample(crop, label=inst.object_name, attributes=labels))
    return ImageDataset(f"vaw-{split}", root, samples)


def ovad_attributes(root: Path) -> list[tuple[str, tuple[str, ...]]]:
    """OVAD's attributes in id order as ``(name, synonyms)``: the full OVAD string (``"color:red"``,
    the dataset's attribute keys) and the synonyms after its colon."""
    attributes = sorted(_read_ovad(root).attributes, key=lambda a: a.id)
    return [(a.name, tuple(s for s in a.name.partition(":")[2].split("/") if s)) for a in attributes]
