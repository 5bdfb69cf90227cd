"""``vlmkit world personal`` and ``vlmkit r2p build/eval`` end to end on random:llava-tiny and
random:clip-tiny, and their one-line errors (exit 2, nothing left behind)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from vlmkit.cli.main import main
from vlmkit.data.world_personal import make_identities

TINY = ["--model", "random:llava-tiny"]


@pytest.mark.parametrize("ambiguity", ["low", "high"])
def test_world_personal_distractors_share_the_category_and_differ_as_asked(ambiguity):
    concepts, lookalikes = make_identities(4, ambiguity, seed=3, distractors=2)
    assert len(set(concepts)) == 4
    for concept, mine in zip(concepts, lookalikes, strict=True):
        for d in mine:
            assert d.shape == concept.shape and d not in concepts
            changed = [k for k in ("color", "shade", "texture", "size", "mark") if getattr(d, k) != getattr(concept, k)]
            if ambiguity == "high":
                assert len(changed) == 1
            else:
                assert {"color", "texture"} <= set(changed)


def test_more_distractors_than_distinct_look_alikes_is_one_line_not_a_hang(tmp_path, capsys):
    """Only so many look-alikes of a concept exist (about a dozen at high ambiguity); asking for more used to loop forever."""
    with pytest.raises(SystemExit) as info:
        main(["world", "personal", "--out", str(tmp_path / "set"), "--concepts", "2", "--distractors", "40"])
    err = capsys.readouterr().err.strip()
    assert info.value.code == 2 and err.startswith("error: --distractors 40: only") and "lower --distractors" in err
    assert not (tmp_path / "set").exists()


@pytest.mark.slow
def test_r2p_build_and_eval_end_to_end(tmp_path, capsys):
    data, db, out = tmp_path / "set", tmp_path / "db", tmp_path / "eval"
    main(["world", "personal", "--out", str(data), "--concepts", "2", "--references", "2", "--queries", "1", "--distractors", "1",
          "--side", "48", "--seed", "1"])
    rows = [json.loads(line) for line in (data / "manifest.jsonl").read_text().splitlines()]
    assert len(rows) == 4 and sum(r["concept"] is None for r in rows) == 2
    world = json.loads((data / "world.json").read_text())
    assert set(world["concepts"]) == {p.name for p in (data / "concepts").iterdir()}
    # a random model writes no JSON: the paper's fingerprint prompt fails in one line, nothing written
    with pytest.raises(SystemExit) as info:
        main(["r2p", "build", "--concepts", str(data / "concepts"), "--out", str(db), *TINY, "--clip", "random:clip-tiny"])
    assert info.value.code == 2 and not db.exists()
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: random:llava-tiny gave no valid fingerprint") and "\n" not in err
    main(["r2p", "build", "--concepts", str(data / "concepts"), "--out", str(db), *TINY, "--clip", "random:clip-tiny",
          "--fingerprint-mode", "questions"])
    assert (db / "database.json").is_file() and len(list((db / "references").iterdir())) == 2
    main(["r2p", "eval", "--db", str(db), "--dataset", str(data), "--out", str(out), "-k", "2"])
    result = json.loads((out / "result.json").read_text())
    assert result["methods"] == ["clip-retrieval", "retrieval", "vlm-only", "reasoning", "verification", "r2p"]
    for metrics in result["table"].values():
        assert 0 <= metrics["accuracy"] <= 1 and metrics["n_positive"] == 2 and metrics["n_negative"] == 2
        assert metrics["accuracy"] == pytest.approx((metrics["positive_accuracy"] + metrics["negative_accuracy"]) / 2)
    traces = [json.loads(line) for line in (out / "traces.jsonl").read_text().splitlines()]
    assert len(traces) == 4 and all(len(t["candidates"]) == 2 for t in traces)
    assert "R2P" in (out / "report.html").read_text()
    # a query that is a reference image, and a manifest naming an unknown concept: one line each, no --out left
    concept = next((data / "concepts").iterdir())
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "manifest.jsonl").write_text(json.dumps({"path": str(concept / "ref_0.png"), "concept": concept.name}) + "\n")
    with pytest.raises(SystemExit) as info:
        main(["r2p", "eval", "--db", str(db), "--dataset", str(bad), "--out", str(tmp_path / "e2")])
    assert info.value.code == 2 and not (tmp_path / "e2").exists()
    assert "is also a reference image" in capsys.readouterr().err
    (bad / "manifest.jsonl").write_text(json.dumps({"path": str(concept / "ref_0.png"), "concept": "nobody"}) + "\n")
    with pytest.raises(SystemExit) as info:
        main(["r2p", "eval", "--db", str(db), "--dataset", str(bad), "--out", str(tmp_path / "e3")])
    assert info.value.code == 2 and "names concept 'nobody'" in capsys.readouterr().err


def test_prepare_yollava_and_folders_layouts(tmp_path, capsys):
    from tests.conftest import write_image
    from vlmkit.personalize.datasets import split_by_mean

    yl = tmp_path / "yollava-data"
    for name, rgb in (("bo", (200, 120, 40)), ("mam", (90, 90, 90)), ("thao", (20, 20, 200))):
        for k in range(7):
            write_image(yl / "train" / name / f"{k}.png", rgb)
        for k in range(2):
            write_image(yl / "test" / name / f"{k}.png", rgb, size=(41 + k, 30))
    out = tmp_path / "prepared"
    main(["r2p", "prepare", "--data", str(yl), "--out", str(out), "--holdout", "1", "--seed", "0"])
    rows = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    kept = sorted(p.name for p in (out / "concepts").iterdir())
    assert len(kept) == 2 and all(len(list((out / "concepts" / k).glob("ref_*.png"))) == 5 for k in kept)
    held = ({"bo", "mam", "thao"} - set(kept)).pop()
    assert sorted(r["concept"] or "-" for r in rows) == sorted([*kept, *kept, "-", "-"])
    assert all(r["concept"] is None for r in rows if r["source"] == held)
    with pytest.raises(SystemExit) as info:
        main(["r2p", "prepare", "--data", str(yl), "--out", str(tmp_path / "p2"), "--holdout", "3"])
    assert info.value.code == 2 and not (tmp_path / "p2").exists() and "--holdout" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        main(["r2p", "prepare", "--data", str(yl / "test"), "--out", str(tmp_path / "p3")])
    assert info.value.code == 2 and "no concept folder" in capsys.readouterr().err
    # the folders split: the references are the images closest to the mean embedding
    e = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [1.0, 0.05]])
    assert split_by_mean(e, 2) == ([1, 3], [0, 2])  # cosines to the mean: 0.932, 0.967, 0.361, 0.949
    assert split_by_mean(np.eye(2)[:1], 5) == ([0], [])
    folders = tmp_path / "folders"
    for name, rgb in (("cup", (200, 0, 0)), ("pen", (0, 200, 0))):
        for k in range(4):
            write_image(folders / name / f"{k}.png", (rgb[0] + 10 * k, rgb[1], 5 * k))
    main(["r2p", "prepare", "--format", "folders", "--data", str(folders), "--out", str(tmp_path / "pf"), "--references", "3",
          "--model", "random:clip-tiny"])
    rows = [json.loads(line) for line in (tmp_path / "pf" / "manifest.jsonl").read_text().splitlines()]
    assert len(rows) == 2 and {r["concept"] for r in rows} == {"cup", "pen"}
