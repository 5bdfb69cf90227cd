"""Loaders for published fairness and robustness datasets, from local folders in their usual
layouts. Name them as ``<format>:<folder>[@<split>]``, e.g. ``waterbirds:/data/waterbird_complete95_forest2water2@test``.

- ``fairface``: ``fairface_label_{train,val}.csv`` (file, age, gender, race, service_test) beside
  ``train/`` and ``val/``; splits ``train``, ``val`` (default val); attributes age, gender, race.
- ``utkface``: images named ``<age>_<gender>_<race>_<datetime>.jpg`` (aligned and cropped release);
  split ``all``; attributes age, gender (0 male, 1 female), race (White, Black, Asian, Indian, Others).
- ``celeba``: ``img_align_celeba/``, ``list_attr_celeba.txt`` (40 attributes, +-1),
  ``list_eval_partition.txt``; splits ``train``, ``val``, ``test`` (default test); attributes the
  40 attributes (true/false), gender, hair (blond/dark).
- ``waterbirds``: ``metadata.csv`` (img_filename, y, split, place) beside the species folders;
  splits ``train``, ``val``, ``test`` (default test); attributes bird (landbird/waterbird), place
  (land/water); group ``bird|place``.

``imagenetx:<folder>[@multi|top]`` is ImageNet-X (:mod:`vlmkit.data.imagenet_x`).
``ovad:<folder>`` and ``vaw:<folder>[@test|val]`` are the attribute benchmarks
(:mod:`vlmkit.data.attribute_datasets`). Prompts follow the papers that use them: Waterbirds ``"This is a picture of a {}."`` (bird),
CelebA ``"A photo of a celebrity with {} hair."`` (hair).
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

from vlmkit.data.types import ImageDataset, Sample
from vlmkit.errors import DatasetError, UserError
from vlmkit.runs.readers import read_text

FORMATS = ("fairface", "utkface", "celeba", "waterbirds", "ovad", "vaw", "imagenetx")
SPLITS = {"fairface": ("train", "val"), "celeba": ("train", "val", "test"), "waterbirds": ("train", "val", "test"), "utkface": ("all",),
          "ovad": ("all",), "vaw": ("test", "val"), "imagenetx": ("multi", "top")}
DEFAULT_SPLIT = {"fairface": "val", "celeba": "test", "waterbirds": "test", "utkface": "all", "ovad": "all", "vaw": "test",
                 "imagenetx": "multi"}
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


_LAYOUT = "see docs/datasets.md for the expected layout"


def _need(path: Path, what: str) -> Path:
    if not path.exists():
        raise DatasetError(f"{what} not found: {path}; {_LAYOUT}")
    return path


def _read(path: Path, what: str) -> str:
    try:
        return read_text(path, what, _LAYOUT)
    except UserError as exc:
        raise DatasetError(str(exc)) from exc


def _rows(path: Path, columns: tuple[str, ...]) -> list[dict]:
    """The rows of a CSV label file that has (at least) ``columns``."""
    rows = list(csv.DictReader(_read(path, "label file").splitlines()))
    missing = [c for c in columns if not rows or c not in rows[0]]
    if missing:
        raise DatasetError(f"{path} lacks the column(s) {', '.join(missing)}; {_LAYOUT}")
    return rows


def _lines(path: Path, what: str) -> list[str]:
    return _read(path, what).splitlines()


def _field(path: Path, row: dict, convert):
    """``convert(row)``, with a malformed row reported as one line naming the file."""
    try:
        return convert(row)
    except (KeyError, ValueError, IndexError, TypeError) as exc:
        raise DatasetError(f"{path} has a malformed row {dict(list(row.items())[:4])} ({type(exc).__name__}: {exc}); {_LAYOUT}") from exc


def fairface(root: Path, split: str) -> ImageDataset:
    samples = [Sample(root / row["file"], attributes={"age": row["age"], "gender": row["gender"], "race": row["race"]})
               for row in _rows(root / f"fairface_label_{split}.csv", ("file", "age", "gender", "race"))]
    return ImageDataset(f"fairface-{split}", root, samples)


def utkface(root: Path, split: str = "all") -> ImageDataset:
    samples = []
    for path in sorted(_need(root, "UTKFace folder").rglob("*.jpg")):
        match = UTK_NAME.match(path.name)
        if match:  # a few files of the public release lack a field; they are skipped
            age, gender, race = match.groups()
            samples.append(Sample(path,
                                  attributes={"age": int(age), "gender": ("male", "female")[int(gender)], "race": UTK_RACES[int(race)]}))
    return ImageDataset("utkface", root, samples)


def celeba(root: Path, split: str) -> ImageDataset:
    wanted = {"train": "0", "val": "1", "test": "2"}[split]
    partition_path, attribute_path = root / "list_eval_partition.txt", root / "list_attr_celeba.txt"
    partition = dict(_field(partition_path, {"line": line}, lambda r: tuple(r["line"].split()[:2]))
                     for line in _lines(partition_path, "partition file") if line.strip())
    lines = _lines(attribute_path, "attribute file")
    names = lines[1].split() if len(lines) > 1 else []
    if "Male" not in names or "Blond_Hair" not in names:
        raise DatasetError(f"{attribute_path} must hold a count line, then the 40 attribute names (Male, Blond_Hair, ...); {_LAYOUT}")
    samples = []
    for line in lines[2:]:
        fields = line.split()
        if not fields or partition.get(fields[0]) != wanted:
            continue
        if len(fields) != len(names) + 1:
            raise DatasetError(f"{attribute_path}: the row of {fields[0]} has {len(fields) - 1} values for {len(names)} attributes; "
                               f"{_LAYOUT}")
        values = {name: value == "1" for name, value in zip(names, fields[1:], strict=True)}
        derived = {"gender": "male" if values["Male"] else "female", "hair": "blond" if values["Blond_Hair"] else "dark"}
        samples.append(Sample(root / "img_align_celeba" / fields[0], attributes={**values, **derived}))
    return ImageDataset(f"celeba-{split}", root, samples, prompts={"hair": ["A photo of a celebrity with {} hair."]})


def waterbirds(root: Path, split: str) -> ImageDataset:
    wanted = {"train": "0", "val": "1", "test": "2"}[split]
    samples = []
    path = root / "metadata.csv"
    for row in _rows(path, ("img_filename", "y", "split", "place")):
        if row["split"] != wanted:
            continue
        bird, place = _field(path, row, lambda r: (("landbird", "waterbird")[int(r["y"])], ("land", "water")[int(r["place"])]))
        samples.append(Sample(root / row["img_filename"], attributes={"bird": bird, "place": place}, group=f"{bird}|{place}"))
    return ImageDataset(f"waterbirds-{split}", root, samples, prompts={"bird": ["This is a picture of a {}."]})


def _ovad(root: Path, split: str) -> ImageDataset:
    from vlmkit.data.attribute_datasets import ovad

    return ovad(root)


def _vaw(root: Path, split: str) -> ImageDataset:
    from vlmkit.data.attribute_datasets import vaw

    return vaw(root, split)


def _imagenetx(root: Path, split: str) -> ImageDataset:
    from vlmkit.data.imagenet_x import imagenet_x

    return imagenet_x(root, split)


LOADERS = {"fairface": fairface, "utkface": utkface, "celeba": celeba, "waterbirds": waterbirds, "ovad": _ovad, "vaw": _vaw,
           "imagenetx": _imagenetx}


def load_published(spec: str) -> ImageDataset | None:
    parsed = parse_spec(spec)
    if parsed is None:
        return None
    fmt, root, split = parsed
    return LOADERS[fmt](root, split)
