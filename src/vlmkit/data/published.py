"""Loaders for published fairness and robustness datasets, from local folders in their usual
layouts. Name them as ``<format>:<folder>[@<split>]``, e.g. ``waterbirds:/data/waterbird_complete95_forest2water2@test``.

| format | folder layout | split (default) | attributes |
|---|---|---|---|
| ``fairface`` | ``fairface_label_{train,val}.csv`` (file, age, gender, race, service_test) beside ``train/`` and ``val/`` | ``train``, ``val`` (val) | age, gender, race |
| ``utkface`` | images named ``<age>_<gender>_<race>_<datetime>.jpg`` (aligned and cropped release) | all | age, gender (0 male, 1 female), race (White, Black, Asian, Indian, Others) |
| ``celeba`` | ``img_align_celeba/``, ``list_attr_celeba.txt`` (40 attributes, +-1), ``list_eval_partition.txt`` | ``train``, ``val``, ``test`` (test) | the 40 attributes (true/false), gender, hair (blond/dark) |
| ``waterbirds`` | ``metadata.csv`` (img_filename, y, split, place) beside the species folders | ``train``, ``val``, ``test`` (test) | bird (landbird/waterbird), place (land/water); group bird\\|place |

``ovad:<folder>`` and ``vaw:<folder>[@test|val]`` are the attribute benchmarks
(:mod:`vlmkit.data.attribute_datasets`). Prompts follow the papers that use them: Waterbirds ``"This is a picture of a {}."`` (bird),
CelebA ``"A photo of a celebrity with {} hair."`` (hair).
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

from vlmkit.data.datasets import ImageDataset, Sample
from vlmkit.errors import DatasetError

FORMATS = ("fairface", "utkface", "celeba", "waterbirds", "ovad", "vaw")
SPLITS = {"fairface": ("train", "val"), "celeba": ("train", "val", "test"), "waterbirds": ("train", "val", "test"), "utkface": ("all",),
          "ovad": ("all",), "vaw": ("test", "val")}
DEFAULT_SPLIT = {"fairface": "val", "celeba": "test", "waterbirds": "test", "utkface": "all", "ovad": "all", "vaw": "test"}
UTK_RACES = ("White", "Black", "Asian", "Indian", "Others")
UTK_NAME = re.compile(r"^(\d+)_([01])_([0-4])_\d+")


def parse_spec(spec: str) -> tuple[str, Path, str] | None:
    """``"<format>:<folder>[@<split>]"`` -> (format, folder, split); ``None`` for other sources."""
    fmt, sep, rest = spec.partition(":")
    if not sep or fmt not in FORMATS:
        return None
    folder, _, split = rest.rpartition("@") if "@" in rest else (rest, "", "")
    split = split or DEFAULT_SPLIT[fmt]
    if split not in SPLITS[fmt]:
        raise DatasetError(f"{fmt} has splits {', '.join(SPLITS[fmt])}, not {split!r}")
    return fmt, Path(folder).expanduser(), split


def _need(path: Path, what: str) -> Path:
    if not path.exists():
        raise DatasetError(f"{what} not found: {path}; see docs/datasets.md for the expected layout")
    return path


def _rows(path: Path) -> list[dict]:
    with _need(path, "label file").open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def fairface(root: Path, split: str) -> ImageDataset:
    samples = [Sample(root / row["file"], attributes={"age": row["age"], "gender": row["gender"], "race": row["race"]})
               for row in _rows(root / f"fairface_label_{split}.csv")]
    return ImageDataset(f"fairface-{split}", root, samples)


def utkface(root: Path, split: str = "all") -> ImageDataset:
    samples = []
    for path in sorted(_need(root, "UTKFace folder").rglob("*.jpg")):
        match = UTK_NAME.match(path.name)
        if match:  # a few files of the public release lack a field; they are skipped
            age, gender, race = match.groups()
            samples.append(Sample(path, attributes={"age": int(age), "gender": ("male", "female")[int(gender)], "race": UTK_RACES[int(race)]}))
    return ImageDataset("utkface", root, samples)


def celeba(root: Path, split: str) -> ImageDataset:
    wanted = {"train": "0", "val": "1", "test": "2"}[split]
    partition = dict(line.split() for line in _need(root / "list_eval_partition.txt", "partition file").read_text().splitlines() if line.strip())
    lines = _need(root / "list_attr_celeba.txt", "attribute file").read_text().splitlines()
    names = lines[1].split()
    samples = []
    for line in lines[2:]:
        fields = line.split()
        if not fields or partition.get(fields[0]) != wanted:
            continue
        values = {name: value == "1" for name, value in zip(names, fields[1:], strict=True)}
        derived = {"gender": "male" if values["Male"] else "female", "hair": "blond" if values["Blond_Hair"] else "dark"}
        samples.append(Sample(root / "img_align_celeba" / fields[0], attributes={**values, **derived}))
    return ImageDataset(f"celeba-{split}", root, samples, prompts={"hair": ["A photo of a celebrity with {} hair."]})


def waterbirds(root: Path, split: str) -> ImageDataset:
    wanted = {"train": "0", "val": "1", "test": "2"}[split]
    samples = []
    for row in _rows(root / "metadata.csv"):
        if row["split"] != wanted:
            continue
        bird, place = ("landbird", "waterbird")[int(row["y"])], ("land", "water")[int(row["place"])]
        samples.append(Sample(root / row["img_filename"], attributes={"bird": bird, "place": place}, group=f"{bird}|{place}"))
    return ImageDataset(f"waterbirds-{split}", root, samples, prompts={"bird": ["This is a picture of a {}."]})


def _ovad(root: Path, split: str) -> ImageDataset:
    from vlmkit.data.attribute_datasets import ovad

    return ovad(root)


def _vaw(root: Path, split: str) -> ImageDataset:
    from vlmkit.data.attribute_datasets import vaw

    return vaw(root, split)


LOADERS = {"fairface": fairface, "utkface": utkface, "celeba": celeba, "waterbirds": waterbirds, "ovad": _ovad, "vaw": _vaw}


def load_published(spec: str) -> ImageDataset | None:
    parsed = parse_spec(spec)
    if parsed is None:
        return None
    fmt, root, split = parsed
    return LOADERS[fmt](root, split)
