"""Each published-dataset loader on a tiny fixture in its published layout."""

import pytest

from tests.conftest import write_image
from vlmkit.data.datasets import load_dataset
from vlmkit.errors import DatasetError


def test_fairface(tmp_path):
    for split in ("train", "val"):
        write_image(tmp_path / split / "1.jpg", (10, 20, 30))
        (tmp_path / f"fairface_label_{split}.csv").write_text(f"file,age,gender,race,service_test\n{split}/1.jpg,20-29,Female,East Asian,True\n")
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
    (tmp_path / "list_attr_celeba.txt").write_text("3\nBlond_Hair Male Smiling\n000001.jpg -1 1 1\n000002.jpg 1 -1 -1\n000003.jpg  -1  1 1\n")
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
    assert len(data) == 1 and data.samples[0].attributes == {"bird": "waterbird", "place": "land"} and data.samples[0].group == "waterbird|land"
    with pytest.raises(DatasetError, match="metadata.csv"):
        load_dataset(f"waterbirds:{tmp_path / 'missing'}")
