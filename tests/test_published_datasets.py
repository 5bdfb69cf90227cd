"""Each published-dataset loader on a tiny fixture in its published layout."""

import pytest

from tests.conftest import write_image
from vlmkit.data.datasets import load_dataset
from vlmkit.errors import DatasetError


def test_fairface(tmp_path):
    for split in ("train", "val"):
        write_image(tmp_path / split / "1.jpg", (10, 20, 30))
        (tmp_path / f"fairface_label_{split}.csv").write_text(f"file,age,gender,race,service_test\n{split}/1.jpg,20-29,Female,East "
                                                              "Asian,True\n")
    data = load_dataset(f"fairface:{tmp_path}")
    assert data.name == "fairface-val" and data.samples[0].attributes == {"age": "20-29", "gender": "Female", "race": "East Asian"}
    assert load_dataset(f"fairface:{tmp_path}@train").samples[0].path == tmp_path / "train" / "1.jpg"
    with pytest.raises(DatasetError, match="splits train, val"):
        load_dataset(f"fairface:{tmp_path}@test")


def test_utkface_skips_malformed_names(tmp_path):
    write_image(tmp_path / "26_1_2_20170116174525125.jpg.chip.jpg", (1, 2, 3))
    write_image(tmp_path / "61_1_20170109142408075.jpg.chip.jpg", (1, 2, 3))  # race missing, as in the release
    data = load_dataset(f"utkface:{tmp_path}")
    assert len(data) == 1 and data.samples[0].attributes == {"age": 26, "gender": "female", "race": "Asian"}


def test_celeba(tmp_path):
    for name in ("000001.jpg", "000002.jpg", "000003.jpg"):
        write_image(tmp_path / "img_align_celeba" / name, (5, 5, 5))
    (tmp_path / "list_eval_partition.txt").write_text("000001.jpg 0\n000002.jpg 2\n000003.jpg 2\n")
    (tmp_path / "list_attr_celeba.txt").write_text("3\nBlond_Hair Male Smiling\n000001.jpg -1 1 1\n000002.jpg 1 -1 -1\n000003.jpg  -1  1 "
                                                   "1\n")
    data = load_dataset(f"celeba:{tmp_path}")
    assert [s.path.name for s in data.samples] == ["000002.jpg", "000003.jpg"]
    assert data.samples[0].attributes == {"Blond_Hair": True, "Male": False, "Smiling": False, "gender": "female", "hair": "blond"}
    assert data.targets("hair") == ["blond", "dark"] and data.prompts["hair"][0].format("blond").endswith("blond hair.")


def test_waterbirds(tmp_path):
    write_image(tmp_path / "001.Black_footed_Albatross" / "a.jpg", (1, 1, 1))
    write_image(tmp_path / "002.Laysan" / "b.jpg", (1, 1, 1))
    (tmp_path / "metadata.csv").write_text("img_id,img_filename,y,split,place,place_filename\n"
                                          "1,001.Black_footed_Albatross/a.jpg,1,2,0,x\n2,002.Laysan/b.jpg,0,0,1,y\n")
    data = load_dataset(f"waterbirds:{tmp_path}")
    assert len(data) == 1 and data.samples[0].attributes == {"bird": "waterbird",
                                                             "place": "land"} and data.samples[0].group == "waterbird|land"
    with pytest.raises(DatasetError, match="metadata.csv"):
        load_dataset(f"waterbirds:{tmp_path / 'missing'}")


def test_ovad_crops_boxes_and_reads_att_vec(tmp_path):
    import json

    from PIL import Image

    (tmp_path / "val2017").mkdir()
    Image.new("RGB", (40, 30), (200, 10, 10)).save(tmp_path / "val2017" / "000000000001.jpg")
    (tmp_path / "ovad2000.json").write_text(json.dumps({
        "images": [{"id": 1, "file_name": "000000000001.jpg"}],
        "attributes": [{"id": 0, "name": "color:red"}, {"id": 1, "name": "texture:striped/stripy"}],
        "annotations": [{"id": 7, "image_id": 1, "bbox": [5, 5, 20, 10], "area": 200, "category_id": 3, "att_vec": [1, -1]},
                        {"id": 8, "image_id": 1, "bbox": [0, 0, 5, 5], "area": 25, "category_id": 3, "att_vec": [0, 0]}],
    }))
    data = load_dataset(f"ovad:{tmp_path}")
    assert len(data) == 1 and data.samples[0].attributes == {"color:red": 1, "texture:striped/stripy": -1}
    from PIL import Image as I

    with I.open(data.samples[0].path) as crop:
        assert crop.size == (20, 10)


def test_vaw_labels_positive_negative_unknown(tmp_path):
    import json

    write_image(tmp_path / "VG_100K_2" / "11.jpg", (1, 2, 3), size=(50, 50))
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "test.json").write_text(
        json.dumps(
            [
                {
                    "image_id": "11",
                    "instance_id": "a",
                    "instance_bbox": [1, 1, 10, 20],
                    "object_name": "cup",
                    "positive_attributes": ["white"],
                    "negative_attributes": ["red"],
                },
                {
                    "image_id": "11",
                    "instance_id": "b",
                    "instance_bbox": [5, 5, 10, 10],
                    "object_name": "plate",
                    "positive_attributes": ["round"],
                    "negative_attributes": [],
                },
            ]
        )
    )
    data = load_dataset(f"vaw:{tmp_path}")
    assert data.samples[0].attributes == {"red": 0, "round": -1, "white": 1} and data.samples[1].label == "plate"


def test_ovad_attribute_terms_match_the_dataset_keys(tmp_path):
    import json

    from vlmkit.attributes.comca_run import read_terms

    (tmp_path / "ovad2000.json").write_text(json.dumps({"images": [], "annotations": [], "attributes": [
        {"id": 1, "name": "texture:striped/stripy"}, {"id": 0, "name": "color:red"}]}))
    terms = read_terms(f"ovad:{tmp_path}", "attributes")
    assert [(t.name, t.synonyms) for t in terms] == [("color:red", ("red",)), ("texture:striped/stripy", ("striped", "stripy"))]
