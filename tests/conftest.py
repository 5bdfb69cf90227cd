"""Shared fixtures: tiny real models, small image datasets, an isolated cache, no network."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

os.environ["VLMKIT_PROGRESS"] = "0"
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_VERBOSITY"] = "error"
os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"

COLOURS = {"red": (220, 30, 30), "green": (30, 170, 60), "blue": (30, 70, 220)}


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("VLMKIT_CACHE", str(tmp_path_factory.mktemp("cache")))
    monkeypatch.setenv("VLMKIT_RANDOM_WEIGHTS_CACHE", "0")  # no 100s-of-MB weight files per test; test_fast_load turns it on


def write_image(path: Path, rgb, size=(40, 30)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, rgb).save(path)
    return path


@pytest.fixture
def colour_folder(tmp_path) -> Path:
    """``root/<colour>/<i>.png``: three classes, three images each."""
    root = tmp_path / "colours"
    for name, rgb in COLOURS.items():
        for i in range(3):
            write_image(root / name / f"{i}.png", rgb, size=(40 + 7 * i, 30 + 5 * i))
    return root


@pytest.fixture
def colour_manifest(tmp_path) -> Path:
    """A manifest with labels, attributes and groups over images in ``img/``."""
    rows = []
    for name, rgb in COLOURS.items():
        for i in range(2):
            write_image(tmp_path / "img" / f"{name}{i}.png", rgb)
            rows.append({"path": f"img/{name}{i}.png", "label": name, "attributes": {"color": name, "size": ["small", "large"][i]},
                         "group": f"{name}|{i}"})
    path = tmp_path / "data.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture(scope="session")
def clip_tiny():
    from vlmkit.models import load_model

    return load_model("random:clip-tiny")


@pytest.fixture(scope="session")
def clip_b32():
    from vlmkit.models import load_model

    return load_model("random:clip-vit-b32")


@pytest.fixture(scope="session")
def rng():
    return np.random.default_rng(0)
