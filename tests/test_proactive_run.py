"""ProactiveBench end to end: the CLI on world and release fixtures, OEG with a scripted judge, the RL reward."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.proactive_fixtures import ScriptedChat, write_release
from vlmkit.cli.main import main
from vlmkit.proactive.metrics import oeg_metrics
from vlmkit.proactive.oeg import run_oeg
from vlmkit.proactive.train import advantages, reward, training_states
from vlmkit.proactive.world import world_environments


def test_oeg_with_scripted_model_and_judge():
    episodes = world_environments("occlusion", 3, seed=0)
    model = ScriptedChat(lambda text: "please move the grey block")
    judge = ScriptedChat(lambda text: "The output asks to move the block.\n1, 0, 0")
    rows = run_oeg(model, judge, episodes)
    assert [r["bits"] for r in rows] == [[1, 0, 0]] * 3
    m = oeg_metrics(rows)
    assert m["ps"] == 100.0 and m["cc"] == 0.0 and m["agg"] == 100.0
    bad = run_oeg(model, ScriptedChat(lambda text: "I think yes"), episodes)
    assert oeg_metrics(bad)["judge_unreadable_rate"] == 1.0


def test_reward_and_advantages():
    env = world_environments("corruption", 1, seed=2)[0]
    assert reward(env, env.answer, 0.5) == 1.0
    assert reward(env, env.entry["quality_answer"], 0.5) == 0.5
    assert reward(env, "I cannot tell what the object is.", 0.5) == 0.0
    assert env.num_turns == 0  # reading a reply does not act
    occl = world_environments("occlusion", 1, seed=2)[0]
    assert reward(occl, occl.answer, 0.75) == 0.0  # no category on the fully occluded frame
    a = advantages(np.array([1.0, 0.0, 0.5, 0.5]))
    assert abs(a.mean()) < 1e-9 and a[0] > a[2] > a[1]
    states = training_states(["occlusion", "drawing"], 10, seed=0)
    assert len(states) == 10 and not any(s.done for s in states)


@pytest.mark.slow
def test_cli_run_world_and_release_and_train(tmp_path):
    out = tmp_path / "world"
    tiny = ["--model", "random:llava-tiny"]
    main(["proactive", "run", *tiny, "--scenarios", "occlusion,camera", "--n", "2", "--out", str(out), "--no-cache"])
    result = json.loads((out / "result.json").read_text())
    for name in ("occlusion", "camera"):
        assert set(result["metrics"][name]) >= {"acc", "psr", "accuracy", "proactive_rate"}
    assert "turn 1" in (out / "report.html").read_text()
    release = write_release(tmp_path / "release")
    out2 = tmp_path / "release-run"
    main(["proactive", "run", *tiny, "--scenarios", "ROD,CIT,COCO", "--data", str(release), "--out", str(out2), "--no-cache"])
    result = json.loads((out2 / "result.json").read_text())
    assert set(result["metrics"]) == {"ROD", "CIT", "COCO"}
    assert "average_without_coco" in result
    out3 = tmp_path / "train"
    main(["proactive", "train", *tiny, "--prompts", "2", "--rollouts", "2", "--batch-size", "2", "--out", str(out3)])
    assert (out3 / "model" / "config.json").is_file()
    assert json.loads((out3 / "result.json").read_text())["held_out"] == ["camera"]


def test_cli_bad_data_dir_is_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["proactive", "run", "--model", "random:llava-tiny", "--data", str(tmp_path / "nope"), "--out", str(tmp_path / "o")])
    assert exc.value.code == 2
    assert not (tmp_path / "o").exists()
