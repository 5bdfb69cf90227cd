"""``vlmkit openworld run/score``, ``vlmkit icl run`` and ``vlmkit circle run`` end to end on
tiny random models (random:llava-tiny answers, random:llama-tiny judges, random:clip-tiny
retrieves), offline; resumption from the response cache; one-line user errors."""

from __future__ import annotations

import json

import pytest

from vlmkit.cli.main import main

WORLD = ["--dataset", "world:4"]
TINY = ["--model", "random:llava-tiny"]


def read(path):
    return json.loads(path.read_text())


@pytest.mark.slow
def test_openworld_run_then_score_with_a_judge_and_elo(tmp_path):
    out = tmp_path / "run"
    main(["openworld", "run", *TINY, *WORLD, "--out", str(out)])
    result = read(out / "result.json")
    assert result["n"] == 4 and result["prompt"] == "base" and result["question"] == "What type of object is in this photo?"
    assert set(result["metrics"]) == {"ti", "em", "ss", "cs_max", "cs_median"} and "world" in result["per_group"]
    rows = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert len(rows) == 4 and all(r["label"].count(" ") == 1 for r in rows)
    assert read(out / "run.json")["cache"]["generated"] == 4
    assert "<img src='data:image/png;base64," in (out / "report.html").read_text()
    again = tmp_path / "again"  # a re-run answers from the response cache
    main(["openworld", "run", *TINY, *WORLD, "--out", str(again)])
    assert read(again / "run.json")["cache"] == {"cached": 4, "generated": 0}
    assert read(again / "result.json")["metrics"] == result["metrics"]

    other = tmp_path / "other.jsonl"
    other.write_text("".join(json.dumps({**r, "model": "labeller", "prediction": r["label"]}) + "\n" for r in rows))
    scored = tmp_path / "scored"
    main(["openworld", "score", "--predictions", str(out / "predictions.jsonl"), "--predictions", str(other),
          "--judge", "random:llama-tiny", "--elo-games", "40", "--elo-rounds", "5", "--out", str(scored)])
    score = read(scored / "result.json")
    assert set(score["models"]) == {"random:llava-tiny", "labeller"}
    assert score["models"]["labeller"]["metrics"]["ti"] == 1.0 and score["models"]["labeller"]["metrics"]["ss"] == pytest.approx(
        1.0, abs=1e-5
    )
    assert set(score["models"]["labeller"]["metrics"]) >= {"li"} and "This is the target value" in score["li_prompt"]
    elo = score["elo"]["world"]
    assert elo["games"] == 40 and set(elo["ratings"]) == {"random:llava-tiny", "labeller"}
    assert len((scored / "scores.jsonl").read_text().splitlines()) == 8


@pytest.mark.slow
def test_icl_and_circle_run_on_random_models(tmp_path):
    common = [*TINY, "--dataset", "world:2", "--retriever", "random:clip-tiny"]
    main(["icl", "run", *common, "--pool", "world:60@train", "--shots", "1", "--out", str(tmp_path / "icl")])
    icl = read(tmp_path / "icl" / "result.json")
    assert icl["shots"] == 1 and icl["n_classes"] == 48 and set(icl["baselines"]) == {"clip_zeroshot", "knn", "tip_adapter"}
    assert 0 <= icl["icl"]["accuracy"] <= icl["icl"]["ti"] + 1e-9 or icl["icl"]["unparsed"] >= 0
    rows = [json.loads(line) for line in (tmp_path / "icl" / "predictions.jsonl").read_text().splitlines()]
    assert all(len(r["shots"]) == 1 for r in rows)
    main(["circle", "run", *common, "--context", "world:60@train", "--m", "2", "--rounds", "1", "--out", str(tmp_path / "circle")])
    circle = read(tmp_path / "circle" / "result.json")
    assert set(circle["methods"]) == {"zero_shot", "pseudo_icl", "circle", "random_context", "clip_retrieval"}
    assert len(circle["context"]["labels_per_round"]) == 2 and circle["calls"]["context"] == 4


def test_user_errors_are_one_line_and_leave_nothing(tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prediction": "a dog"}\n')
    cases = [
        ["openworld", "run", *TINY, *WORLD, "--prompt", "nope"],
        ["openworld", "score", "--predictions", str(tmp_path / "missing.jsonl")],
        ["openworld", "score", "--predictions", str(bad)],
        ["icl", "run", *TINY, "--dataset", str(tmp_path)],
        ["circle", "run", *TINY, *WORLD, "--context", "world:60@train", "--m", "100"],
        ["icl", "run", *TINY, *WORLD, "--pool", "world:4@test"],
    ]
    for i, args in enumerate(cases):
        out = tmp_path / f"out{i}"
        with pytest.raises(SystemExit) as exit_info:
            main([*args, "--out", str(out)])
        err = capsys.readouterr().err.strip()
        assert exit_info.value.code == 2 and err.startswith("error:") and "\n" not in err, (args, err)
        assert not (out / "result.json").exists()
