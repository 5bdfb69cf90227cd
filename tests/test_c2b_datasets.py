"""C2B's annotated datasets on tiny fixtures: ImageNet-X from its published layout, and CelebA's
boolean attributes as ground-truth biases matched to C2B's proposed classes."""

import json

import pytest

from tests.conftest import write_image
from vlmkit.audit.evaluate import ground_truth_biases, hit_miss
from vlmkit.data.datasets import load_dataset
from vlmkit.errors import DatasetError, UserError


def imagenet_x_fixture(root):
    for wnid, names in (
        ("n01440764", ("ILSVRC2012_val_00000001.JPEG", "ILSVRC2012_val_00000002.JPEG")),
        ("n01443537", ("ILSVRC2012_val_00000003.JPEG",)),
    ):
        for name in names:
            write_image(root / "val" / wnid / name, (9, 9, 9))
    (root / "LOC_synset_mapping.txt").write_text("n01440764 tench, Tinca tinca\nn01443537 goldfish, Carassius auratus\n")
    rows = [{"file_name": "ILSVRC2012_val_00000001.JPEG", "class": 0, "background": 1, "pose": 0, "one_word": "x"},
            {"file_name": "ILSVRC2012_val_00000002.JPEG", "class": 0, "background": 0, "pose": 1},
            {"file_name": "ILSVRC2012_val_00000003.JPEG", "class": 1, "background": 0, "pose": 0, "color": 1},
            {"file_name": "ILSVRC2012_val_00009999.JPEG", "class": 1, "background": 1}]  # not in the folders: skipped
    (root / "imagenet_x_val_multi_factor.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root


def test_imagenet_x_layout(tmp_path):
    data = load_dataset(f"imagenetx:{imagenet_x_fixture(tmp_path)}")
    assert len(data) == 3 and [s.label for s in data.samples] == ["tench", "tench", "goldfish"]
    first = data.samples[0].attributes
    assert first["background"] is True and first["pose"] is False and first["wnid"] == "n01440764" and len(first) == 17
    assert data.samples[2].attributes["color"] is True


def test_imagenet_x_errors_are_one_line(tmp_path):
    with pytest.raises(DatasetError):
        load_dataset(f"imagenetx:{tmp_path}")
    root = imagenet_x_fixture(tmp_path)
    (root / "imagenet_x_val_multi_factor.jsonl").write_text(json.dumps({"file_name": "ILSVRC2012_val_00000001.JPEG", "class": 1}) + "\n")
    with pytest.raises(DatasetError, match="annotated as class 1"):
        load_dataset(f"imagenetx:{root}")
    with pytest.raises(UserError, match="annotation file not found"):
        load_dataset(f"imagenetx:{root}@top")  # no top-factor file


def test_celeba_booleans_as_ground_truth_biases(tmp_path):
    names = [f"{i:06d}.jpg" for i in range(1, 41)]
    for name in names:
        write_image(tmp_path / "img_align_celeba" / name, (5, 5, 5))
    (tmp_path / "list_eval_partition.txt").write_text("".join(f"{n} 2\n" for n in names))
    rows = []
    for i, name in enumerate(names):  # blond half the time; eyeglasses every other pair
        rows.append(f"{name} {1 if i % 2 else -1} {1 if (i // 2) % 2 else -1} -1")
    (tmp_path / "list_attr_celeba.txt").write_text("40\nBlond_Hair Eyeglasses Male\n" + "\n".join(rows) + "\n")
    data = load_dataset(f"celeba:{tmp_path}")
    labels = [s.attributes["hair"] for s in data.samples]
    # the classifier gets hair right except for blond people with eyeglasses
    predictions = [
        "dark" if (s.attributes["hair"] == "blond" and s.attributes["Eyeglasses"]) else s.attributes["hair"] for s in data.samples
    ]
    annotations = [{"Eyeglasses": s.attributes["Eyeglasses"], "Male": s.attributes["Male"]} for s in data.samples]
    _, truth = ground_truth_biases(labels, predictions, annotations)
    assert {(t["target"], t["attribute"], t["bias"], t["phi"]) for t in truth} == {
        ("blond", "Eyeglasses", "True", -1.0),
        ("blond", "Eyeglasses", "False", 1.0),
    }
    detected = [
        {"target": "blond", "attribute": "accessories", "bias": "eyeglasses", "phi": -0.6},
        {"target": "blond", "attribute": "accessories", "bias": "no eyeglasses", "phi": 0.6},
        {"target": "dark", "attribute": "accessories", "bias": "eyeglasses", "phi": 0.3},
    ]
    counts = hit_miss(detected, truth)
    assert (counts["hit"], counts["false_hit"], counts["miss"]) == (2, 1, 0)
