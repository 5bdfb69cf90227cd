"""Manifests and folder datasets, and their errors."""

import json

import pytest

from vlmkit.data.datasets import Sample, load_dataset, write_manifest
from vlmkit.errors import DatasetError


def test_manifest_fields(colour_manifest):
    dataset = load_dataset(colour_manifest)
    assert len(dataset) == 6
    first = dataset.samples[0]
    assert first.path == colour_manifest.parent / "img/red0.png" and first.path.is_file()
    assert first.label == "red" and first.group == "red|0"
    assert dataset.classes() == ["blue", "green", "red"]
    assert dataset.classes("size") == ["large", "small"]
    assert dataset.attribute_names() == ["color", "size"]


def test_folder_dataset(colour_folder):
    dataset = load_dataset(colour_folder)
    assert len(dataset) == 9 and dataset.classes() == ["blue", "green", "red"]


def test_folder_with_manifest_reads_the_manifest(tmp_path, colour_manifest):
    (tmp_path / "manifest.jsonl").write_text(colour_manifest.read_text())
    assert len(load_dataset(tmp_path)) == 6


def test_write_then_read_round_trip(tmp_path):
    samples = [Sample(path=tmp_path / "a.png", label="x", labels=("x", "y"), attributes={"n": 1}, group="g", caption="c", extra={"id": 7})]
    path = write_manifest(samples, tmp_path / "m.jsonl")
    assert json.loads(path.read_text())["path"] == "a.png"
    assert load_dataset(path).samples == samples


@pytest.mark.parametrize(
    "line, message",
    [
        ("{not json", "line 2 is not valid JSON"),
        ('["a list"]', "line 2 is not a JSON object"),
        ('{"label": "x"}', 'line 2 has no "path"'),
        ('{"path": "a.png", "labels": "x"}', '"labels" must be a list'),
        ('{"path": "a.png", "attributes": {"a": [1]}}', '"attributes" must be an object'),
        ('{"path": "a.png", "label": 3}', '"label" must be a string'),
    ],
)
def test_malformed_lines_are_named(tmp_path, line, message):
    path = tmp_path / "m.jsonl"
    path.write_text('{"path": "ok.png"}\n' + line + "\n")
    with pytest.raises(DatasetError, match=message):
        load_dataset(path)


def test_missing_and_empty_datasets(tmp_path):
    with pytest.raises(DatasetError, match="dataset not found"):
        load_dataset(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="has no images"):
        load_dataset(tmp_path / "empty")
    (tmp_path / "blank.jsonl").write_text("\n\n")
    with pytest.raises(DatasetError, match="has no images"):
        load_dataset(tmp_path / "blank.jsonl")
