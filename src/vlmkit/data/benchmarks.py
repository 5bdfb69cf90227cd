"""The ten classification benchmarks of the open-world and CIRCLE papers, read from local folders
in their usual layouts with the CoOp splits (Zhou et al., "Learning to Prompt for Vision-Language
Models", 2022), and the shapes world with open-world labels.

Name a benchmark ``<name>:<folder>[@<split>]`` (split ``train``, ``val`` or ``test``; default
``test``), e.g. ``dtd:/data/dtd@test``. ``<folder>`` is the dataset folder holding the image folder
and the CoOp split file ``split_zhou_<Name>.json`` (``{"train": [[relative path, label index,
class name], ...], "val": ..., "test": ...}``, paths relative to the image folder):

| name | group | image folder | split file |
|---|---|---|---|
| caltech101 | prototypical | ``101_ObjectCategories/`` | ``split_zhou_Caltech101.json`` |
| sun397 | prototypical | ``SUN397/`` | ``split_zhou_SUN397.json`` |
| dtd | non-prototypical | ``images/`` | ``split_zhou_DescribableTextures.json`` |
| eurosat | non-prototypical | ``2750/`` | ``split_zhou_EuroSAT.json`` |
| ucf101 | non-prototypical | ``UCF-101-midframes/`` | ``split_zhou_UCF101.json`` |
| flowers102 | fine-grained | ``jpg/`` | ``split_zhou_OxfordFlowers.json`` |
| food101 | fine-grained | ``images/`` | ``split_zhou_Food101.json`` |
| oxford_pets | fine-grained | ``images/`` | ``split_zhou_OxfordPets.json`` |
| stanford_cars | very fine-grained | the folder itself | ``split_zhou_StanfordCars.json`` |
| fgvc_aircraft | very fine-grained | ``images/`` | ``images_variant_<split>.txt`` + ``variants.txt`` (its own lists) |

Class names are CoOp's with underscores replaced by spaces. The shapes world is
``world[:<n>][@<split>]`` (default 200 test images): rendered once into the cache, its open-world
label the main object's colour and shape ("red star"), drawn from seed 7001 (test) or 7002 (train).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from vlmkit.data.datasets import ImageDataset, Sample
from vlmkit.errors import DatasetError
from vlmkit.runs.readers import read_json, read_lines


@dataclass(frozen=True)
class Benchmark:
    """A benchmark's layout and its place in the papers' grouping."""

    name: str
    group: str
    image_dir: str
    split_file: str
    domain: str = "object"


BENCHMARKS: dict[str, Benchmark] = {b.name: b for b in (
    Benchmark("caltech101", "prototypical", "101_ObjectCategories", "split_zhou_Caltech101.json"),
    Benchmark("sun397", "prototypical", "SUN397", "split_zhou_SUN397.json"),
    Benchmark("dtd", "non-prototypical", "images", "split_zhou_DescribableTextures.json", "texture"),
    Benchmark("eurosat", "non-prototypical", "2750", "split_zhou_EuroSAT.json"),
    Benchmark("ucf101", "non-prototypical", "UCF-101-midframes", "split_zhou_UCF101.json"),
    Benchmark("flowers102", "fine-grained", "jpg", "split_zhou_OxfordFlowers.json", "flower"),
    Benchmark("food101", "fine-grained", "images", "split_zhou_Food101.json", "food"),
    Benchmark("oxford_pets", "fine-grained", "images", "split_zhou_OxfordPets.json", "pet"),
    Benchmark("stanford_cars", "very fine-grained", ".", "split_zhou_StanfordCars.json", "car"),
    Benchmark("fgvc_aircraft", "very fine-grained", "images", "", "aircraft"),
)}
GROUPS = ("prototypical", "non-prototypical", "fine-grained", "very fine-grained")
SPLITS = ("train", "val", "test")
WORLD_SEEDS = {"test": 7001, "train": 7002, "val": 7003}


@dataclass
class ClassificationData:
    """Samples whose ``label`` is the readable class name, the class list, and the metadata the
    open-world protocol reports by (dataset name, group, domain noun for domain prompts)."""

    dataset: ImageDataset
    classes: list[str]
    name: str
    group: str
    domain: str = "object"


def readable(name: str) -> str:
    return name.replace("_", " ").strip()


def parse_spec(spec: str) -> tuple[str, str, str] | None:
    """``"dtd:/data/dtd@test"`` -> ``("dtd", "/data/dtd", "test")``; ``world:200@train`` ->
    ``("world", "200", "train")``; ``None`` for other sources."""
    name, sep, rest = spec.partition(":")
    if name == "world" and not sep:
        return "world", "", "test"
    if not sep or (name not in BENCHMARKS and name != "world"):
        return None
    where, at, split = rest.rpartition("@") if "@" in rest else (rest, "", "test")
    if split not in SPLITS:
        raise DatasetError(f"{spec}: unknown split {split!r}; use one of {', '.join(SPLITS)}")
    return name, where, split


def _coop_split(bench: Benchmark, root: Path, split: str) -> list[tuple[Path, str]]:
    path = root / bench.split_file
    fix = f"put CoOp's {bench.split_file} (train/val/test lists of [path, label, class name]) in the folder (see docs/openworld.md)"
    splits = read_json(path, f"{bench.name} split file", fix, schema=dict[str, list[tuple[str, int, str]]])
    if split not in splits:
        raise DatasetError(f"{path} has no {split!r} list; {fix}")
    return [(root / bench.image_dir / relative, readable(classname)) for relative, _, classname in splits[split]]


def _aircraft(root: Path, split: str) -> list[tuple[Path, str]]:
    fix = "point at the data/ folder of fgvc-aircraft-2013b (lines '<image id> <variant>')"
    rows = []
    for line in read_lines(root / f"images_variant_{split}.txt", "fgvc_aircraft split listing", fix, comments=False):
        image, _, variant = line.partition(" ")
        rows.append((root / "images" / f"{image}.jpg", readable(variant)))
    return rows


def _class_order(bench: Benchmark, root: Path, rows: list[tuple[Path, str]]) -> list[str]:
    if bench.name == "fgvc_aircraft" and (root / "variants.txt").is_file():
        return [readable(v) for v in (root / "variants.txt").read_text(encoding="utf-8").splitlines() if v.strip()]
    try:  # every split's class names, in label-index order
        splits = json.loads((root / bench.split_file).read_text(encoding="utf-8"))
        index = {int(label): readable(str(name)) for part in splits.values() for _, label, name in part}
        return [index[i] for i in sorted(index)]
    except (OSError, ValueError, TypeError):
        return sorted({label for _, label in rows})


def load_benchmark(name: str, folder: str | Path, split: str = "test") -> ClassificationData:
    """One of :data:`BENCHMARKS` from ``folder`` (its usual layout, CoOp split)."""
    bench = BENCHMARKS[name]
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise DatasetError(f"{name}: dataset folder {root} not found; pass {name}:<folder> with the layout in docs/openworld.md")
    rows = _aircraft(root, split) if name == "fgvc_aircraft" else _coop_split(bench, root, split)
    if not rows:
        raise DatasetError(f"{name}: the {split} split of {root} is empty")
    samples = [Sample(path=path, label=label, extra={"dataset": name}) for path, label in rows]
    return ClassificationData(
        ImageDataset(f"{name}-{split}", root, samples), _class_order(bench, root, rows), name, bench.group, bench.domain
    )


def world_label(attributes: dict) -> str:
    """The open-world label of a world image: the main object's colour and shape."""
    return f"{attributes['color']} {attributes['shape']}"


def load_world(n: int = 200, split: str = "test", cache_dir: Path | None = None) -> ClassificationData:
    """``n`` shapes-world images (rendered once into the cache) labelled "<colour> <shape>"."""
    from vlmkit.data import world as w
    from vlmkit.data.datasets import read_manifest
    from vlmkit.data.world_sample import generate
    from vlmkit.runs.cache import default_cache_dir

    seed = WORLD_SEEDS[split]
    out = Path(cache_dir or default_cache_dir()) / "worlds" / f"openworld-n{n}-seed{seed}"
    manifest = out / "manifest.jsonl"
    if not manifest.is_file():
        generate(out, n, seed)
    world = read_manifest(manifest)
    samples = [
        Sample(path=s.path, label=world_label(s.attributes), attributes=s.attributes, extra={"dataset": "world"}) for s in world.samples
    ]
    classes = [f"{c} {s}" for c in w.COLOURS for s in w.SHAPES]
    return ClassificationData(ImageDataset(f"world-{split}", out, samples), classes, "world", "world", "shape")


def load_classification(spec: str, cache_dir: Path | None = None) -> ClassificationData:
    """A benchmark (``<name>:<folder>[@split]``), the world (``world[:n][@split]``), or any
    manifest / class-per-folder tree whose ``label`` is the class name."""
    from vlmkit.data.datasets import load_dataset

    parsed = parse_spec(spec)
    if parsed is None:
        dataset = load_dataset(spec)
        samples = [Sample(s.path, readable(s.label), s.labels, s.attributes, s.group, s.caption, {**s.extra, "dataset": dataset.name})
                   for s in dataset.samples if s.label]
        if not samples:
            raise DatasetError(f"{spec} has no sample with a \"label\"; open-world classification needs class names")
        dataset = ImageDataset(dataset.name, dataset.root, samples, dataset.prompts)
        return ClassificationData(dataset, sorted({s.label for s in samples}), dataset.name, dataset.name)
    name, where, split = parsed
    if name == "world":
        if where and (not where.isdigit() or int(where) < 1):
            raise DatasetError(f"{spec}: write the world as world:<number of images, at least 1>[@train|test|val], e.g. world:200")
        return load_world(int(where or 200), split, cache_dir)
    return load_benchmark(name, where, split)
