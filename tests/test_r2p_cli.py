"""``vlmkit world personal`` and ``vlmkit r2p build/eval`` end to end on random:llava-tiny and
random:clip-tiny, and their one-line errors (exit 2, nothing left behind)."""

from __future__ import annotations

import json

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
