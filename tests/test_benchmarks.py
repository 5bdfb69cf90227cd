"""The ten benchmark loaders on tiny fixtures in their usual layouts with CoOp split files, and
the shapes world with open-world labels."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from vlmkit.data.benchmarks import BENCHMARKS, GROUPS, load_classification, parse_spec
from vlmkit.errors import DatasetError, UserError

CLASSES = ["apple_pie", "Annual Crop Land"]


def make_benchmark(root: Path, name: str) -> Path:
    """A two-class, one-image-per-split fixture of ``name`` in its usual layout."""
    bench = BENCHMARKS[name]
    folder = root / name
    if name == "fgvc_aircraft":
        (folder / "variants.txt").parent.mkdir(parents=True, exist_ok=True)
        (folder / "variants.txt").write_text("707-320\nA300B4\n")
        for split in ("train", "val", "test"):
            lines = []
            for k, variant in enumerate(["707-320", "A300B4"]):
                image = f"{split}{k:05d}"
                path = folder / "images" / f"{image}.jpg"
                path.parent.mkdir(parents=True, exist_ok=True)
                Image.new("RGB", (8, 8), (40 * k, 0, 0)).save(path)
                lines.append(f"{image} {variant}")
            (folder / f"images_variant_{split}.txt").write_text("\n".join(lines) + "\n")
        return folder
    splits = {}
    for split in ("train", "val", "test"):
        rows = []
        for k, cls in enumerate(CLASSES):
            relative = f"{cls.replace(' ', '')}/{split}_{k}.jpg"
            path = folder / bench.image_dir / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.new("RGB", (8, 8), (0, 40 * k, 0)).save(path)
            rows.append([relative, k, cls])
        splits[split] = rows
    (folder / bench.split_file).write_text(json.dumps(splits))
    return folder


@pytest.mark.parametrize("name", sorted(BENCHMARKS))
def test_each_benchmark_reads_its_layout(tmp_path, name):
    folder = make_benchmark(tmp_path, name)
    for split in ("train", "test"):
        data = load_classification(f"{name}:{folder}@{split}")
        assert len(data.dataset) == 2 and data.name == name and data.group in GROUPS
        assert all(s.path.is_file() for s in data.dataset.samples)
        expected = ["707-320", "A300B4"] if name == "fgvc_aircraft" else ["apple pie", "Annual Crop Land"]
        assert [s.label for s in data.dataset.samples] == expected and data.classes == expected
    assert load_classification(f"{name}:{folder}").dataset.name == f"{name}-test"


def test_groups_and_domains_follow_the_papers():
    groups = {g: sorted(n for n, b in BENCHMARKS.items() if b.group == g) for g in GROUPS}
    assert groups == {
        "prototypical": ["caltech101", "sun397"], "non-prototypical": ["dtd", "eurosat", "ucf101"],
        "fine-grained": ["flowers102", "food101", "oxford_pets"], "very fine-grained": ["fgvc_aircraft", "stanford_cars"],
    }
    assert BENCHMARKS["dtd"].domain == "texture" and BENCHMARKS["caltech101"].domain == "object"


def test_bad_benchmark_sources_are_one_line_errors(tmp_path):
    with pytest.raises(DatasetError, match="not found"):
        load_classification(f"dtd:{tmp_path / 'nope'}")
    (tmp_path / "dtd").mkdir()
    with pytest.raises(UserError, match="split_zhou_DescribableTextures.json"):
        load_classification(f"dtd:{tmp_path / 'dtd'}")
    (tmp_path / "dtd" / "split_zhou_DescribableTextures.json").write_text("{\"test\": 3}")
    with pytest.raises(UserError, match="split_zhou_DescribableTextures.json has the wrong shape at 'test'"):
        load_classification(f"dtd:{tmp_path / 'dtd'}")
    with pytest.raises(DatasetError, match="unknown split"):
        parse_spec(f"dtd:{tmp_path}@dev")


def test_world_labels_are_colour_and_shape(tmp_path):
    data = load_classification("world:6@test", cache_dir=tmp_path)
    assert len(data.dataset) == 6 and len(data.classes) == 48 and data.group == "world"
    for sample in data.dataset.samples:
        assert sample.label == f"{sample.attributes['color']} {sample.attributes['shape']}" and sample.label in data.classes
    again = load_classification("world:6", cache_dir=tmp_path)
    assert [s.path for s in again.dataset.samples] == [s.path for s in data.dataset.samples]
    train = load_classification("world:6@train", cache_dir=tmp_path)
    assert train.dataset.samples[0].path != data.dataset.samples[0].path


def test_manifests_use_their_labels_with_underscores_as_spaces(colour_manifest):
    data = load_classification(str(colour_manifest))
    assert data.classes == ["blue", "green", "red"] and len(data.dataset) == 6
