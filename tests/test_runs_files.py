"""JSON writing: the direct path and the converting path give the same text."""

import json
import math
from pathlib import Path

import numpy as np
import torch

from vlmkit.runs.files import atomic_write_json, dumps, to_jsonable


def test_plain_data_is_written_as_the_converted_text():
    data = {"a": [1, 2.5, None, True, "x"], "b": {"c": (3, 4)}, "d": [{"e": 0.1 + 0.2}]}
    assert dumps(data) == json.dumps(to_jsonable(data), indent=2)
    assert dumps(data, indent=None) == json.dumps(to_jsonable(data))


def test_numpy_torch_paths_and_non_finite_floats_go_through_the_conversion(tmp_path):
    data = {"n": np.int64(3), "f": np.float32(0.5), "t": torch.tensor([1.0, 2.0]), "p": Path("x/y"), "nan": math.nan,
            "inf": [float("inf")], "nested": {"a": np.arange(3)}}
    text = dumps(data)
    assert json.loads(text) == {"n": 3, "f": 0.5, "t": [1.0, 2.0], "p": "x/y", "nan": None, "inf": [None], "nested": {"a": [0, 1, 2]}}
    written = atomic_write_json(tmp_path / "r.json", data)
    assert written.read_text() == text + "\n"
