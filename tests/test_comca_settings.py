"""The ``weak-zero-shot`` setting of the ComCa world benchmark: caption rewriting, retrieval
through captions, and the bench end to end on a tiny random model."""

import json
from pathlib import Path

import pytest

from vlmkit.attributes.world_bench import (
    attribute_terms,
    caption_index,
    rare_attribute_terms,
    rewrite_caption,
)
from vlmkit.data.datasets import ImageDataset, Sample


@pytest.mark.parametrize(("text", "expected"), [
    ("an orange star with dots", "a tangerine star with dots"),
    ("a big striped red circle on the left", "a huge lined crimson circle on the left"),
    ("A little checkerboard cross", "A tiny grid cross"),
    ("a small plain orange shape in a single solid colour", "a tiny uniform tangerine shape in a single uniform colour"),
    ("an image of a large blue polka-dot hexagon on a gray background", "an image of a huge azure speckled hexagon on a gray background"),
])
def test_captions_are_rewritten_with_the_rare_words(text, expected):
    assert rewrite_caption(text, rare_attribute_terms()) == expected


def test_the_world_words_leave_captions_unchanged():
    text = "an orange star with a checkered pattern, big and plain"
    assert rewrite_caption(text, attribute_terms()) == text
    assert [t.name for t in rare_attribute_terms()] == [t.name for t in attribute_terms()]


def test_caption_index_searches_text_and_keeps_images_that_share_a_caption(tmp_path, clip_tiny):
    captions = ["a crimson star", "a huge azure circle", "a crimson star", "a tiny lemon cross"]
    samples = [Sample(path=tmp_path / f"{i}.png", caption=c) for i, c in enumerate(captions)]
    index = caption_index(clip_tiny, ImageDataset("pool", tmp_path, samples))
    hits = index.search(clip_tiny.encode_texts(["a crimson star", "a tiny lemon cross"]).numpy(), k=2)
    assert {Path(h.path).name for h in hits[0]} == {"0.png", "2.png"}  # identical captions, two images: both kept
    assert Path(hits[1][0].path).name == "3.png" and hits[1][0].score == pytest.approx(1.0, abs=1e-5)


def test_bench_weak_zero_shot_setting_runs_end_to_end(tmp_path):
    from vlmkit.cli.main import main

    out = tmp_path / "bench"
    main(
        [
            "comca",
            "bench",
            "--model",
            "random:clip-tiny",
            "--setting",
            "weak-zero-shot",
            "--pool",
            "60",
            "--n",
            "30",
            "--k",
            "2",
            "--out",
            str(out),
        ]
    )
    result = json.loads((out / "result.json").read_text())
    assert result["setting"] == "weak-zero-shot" and result["retrieval"].startswith("captions")
    assert "red:crimson" in result["attributes"]
    assert sum(result["cooccurrence"]["red"].values()) > 0  # the pool's captions use the rare words
    assert all(0 <= row["mAP"] <= 1 for row in result["table"].values())
    pool_captions = [json.loads(line)["caption"] for line in (out / "pool" / "manifest.jsonl").read_text().splitlines()]
    assert not any(" red " in f" {c} " for c in pool_captions)


def test_bench_refuses_an_unknown_setting(tmp_path, capsys):
    from vlmkit.cli.main import main

    with pytest.raises(SystemExit) as exit_info:
        main(["comca", "bench", "--model", "random:clip-tiny", "--setting", "strong", "--out", str(tmp_path / "o")])
    assert exit_info.value.code == 2 and "unknown setting" in capsys.readouterr().err
    assert not (tmp_path / "o" / "result.json").exists()
