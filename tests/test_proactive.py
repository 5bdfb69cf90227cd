"""ProactiveBench: answer parsing, the published format's transitions, world scenarios, the MCQA
loop and metrics against scripted models whose behaviour is known."""

from __future__ import annotations

import pytest

from tests.proactive_fixtures import ScriptedChat, options_of, write_release
from vlmkit.errors import UserError
from vlmkit.proactive import answers, published
from vlmkit.proactive.mcqa import run_mcqa
from vlmkit.proactive.metrics import mcqa_metrics, oeg_scores
from vlmkit.proactive.oeg import parse_bits
from vlmkit.proactive.world import WORLD_SCENARIOS, world_environments


def test_judge_full_text_then_letter():
    opts = ["Rotate the object.", "I cannot answer."]
    assert answers.judge("B. Rotate the object.", ["Rotate the object."], opts) == ("correct", "Rotate the object.")
    assert answers.judge("  rotate the object. ", ["Rotate the object."], opts)[0] == "correct"
    # the release's rule drops everything up to the last "<capital>." -- kept as published
    assert answers.judge("rotate the OBJECT.", ["Rotate the object."], opts)[0] == "mismatch"
    assert answers.judge("A", ["Rotate the object."], opts) == ("correct", "Rotate the object.")
    assert answers.judge("b", ["Rotate the object."], opts) == ("wrong", "I cannot answer.")
    assert answers.judge("hello there", ["Rotate the object."], opts) == ("mismatch", "")
    cats = ["Apple.", "Banana."]
    assert answers.judge("D", ["Banana."], cats, shift=2) == ("correct", "Banana.")  # letters follow the options
    assert answers.judge("A", ["Banana."], cats, shift=2)[0] == "mismatch"


@pytest.fixture
def release(tmp_path):
    return write_release(tmp_path / "test")


def test_release_filter_and_strong_occlusions(release):
    assert len(published.load_records(release, "ROD")) == 2  # id -1 filtered out
    assert len(published.load_records(release, "ROD", filtered=False)) == 3
    assert len(published.load_records(release, "VSOD")) == 1  # strong_occlusions False dropped
    with pytest.raises(UserError, match="not found"):
        published.load_records(release / "nowhere", "ROD")


def test_bad_record_is_one_line(tmp_path):
    (tmp_path / "QuickDraw_preprocessed.jsonl").write_text('{"id": 1}\n')
    with pytest.raises(UserError, match="lacks"):
        published.load_records(tmp_path, "QD")


def test_rod_wraps_and_refuses_a_first_turn_answer(release):
    env = published.environments(release, "ROD")[0]
    assert env.frame().size == (32, 32)
    env.step("A")  # left from frame 0 wraps to 13
    assert env.image_id == 13 and not env.done
    env.step("B")
    assert env.image_id == 0
    env2 = published.environments(release, "ROD")[0]
    env2.step("Banana.")  # a category at turn 1 is not accepted (fully occluded frame)
    assert env2.done and not env2.success


def test_rod_step_limit(release):
    env = published.environments(release, "ROD")[0]
    while not env.done:
        env.step("B")
    assert env.num_turns == 14 and not env.success and env.proactive_moves == 13


def test_changeit_clamps_and_removes_options(release):
    env = published.environments(release, "CIT")[0]
    assert "Rewind the video." not in env.valid_options()  # frame 0: cannot rewind
    env.step("Wait for the object to appear.")
    env.step("Wait for the object to appear.")
    env.step("Wait for the object to appear.")
    assert env.image_id == 9
    assert not any("Wait" in o for o in env.valid_options())  # end of the video
    env.step("Rewind the video.")
    assert env.image_id == 6


def test_mvpn_phrasings_are_one_action_and_last_view_informative(release):
    env = published.environments(release, "MVP-N")[0]
    env.step("A")
    env.step("Show a different angle.")
    assert [t.action for t in env.turns] == ["rotate", "rotate"]
    env.step("A")
    assert env.frame_path().endswith("1_0003.png")  # the last view is the informative one
    env.step("A")  # no request left on the last view
    assert env.done and not env.success and env.turns[-1].action is None


def test_imagenet_c_only_matching_enhancement(release):
    env = published.environments(release, "IN-C")[0]
    env.step("Deblur the image.")
    assert env.image_id == 4
    env.step("Denoise the image.")
    assert env.done and not env.success
    good = published.environments(release, "IN-C")[1]
    for _ in range(4):
        good.step("B")
    assert good.image_id == 1
    good.step("Banana.")
    assert good.success and good.proactive_moves == 4


def test_coco_crop_grows_and_exhausts(release):
    right, zoom = published.environments(release, "COCO")
    assert right.crop_box() == (20, 30, 70, 90)
    right.step("A")
    assert right.crop_box() == (20, 30, 80, 90)
    right.step("A")
    assert right.valid_options() == ["I cannot answer."]  # 30 >= 3 x 10
    assert zoom.crop_box() == (45, 56, 95, 94)
    zoom.step("A")
    assert zoom.crop_box() == (40, 52, 100, 98)
    assert zoom.frame().size == (60, 46)


def test_quickdraw_and_vsod(release):
    qd = published.environments(release, "QD")[0]
    qd.step("A")
    qd.step("A")
    assert qd.image_id == 2
    qd.step("C")  # letters of the categories follow the remaining options
    assert qd.done and not qd.success
    vs = published.environments(release, "VSOD")[0]
    vs.step("B")
    assert vs.image_id == 5
    assert vs.prompt().startswith("This is a frame extracted from a video.")
    assert "Hint:" in vs.prompt(hint=True)


@pytest.mark.parametrize("scenario", WORLD_SCENARIOS)
def test_world_scenarios_known_policies(scenario):
    episodes = world_environments(scenario, 6, seed=3)
    assert episodes[0].frame().size[0] > 0
    again = world_environments(scenario, 6, seed=3)
    assert [e.entry["answer"] for e in episodes] == [e.entry["answer"] for e in again]
    # always answer the truth at once: success except the fully occluded first frame
    oracle = world_environments(scenario, 6, seed=3)
    for env in oracle:
        env.step(env.answer)
    expected = 0.0 if scenario == "occlusion" else 1.0
    assert mcqa_metrics(oracle)["accuracy"] == expected
    # request twice, then answer: success everywhere, psr 2
    patient = world_environments(scenario, 6, seed=3)
    for env in patient:
        env.step(env.correct_sets()[0][0])  # a valid request
        env.step(answers.letter(env.valid_options().index(env.correct_sets()[0][0])))  # the same, by letter
        env.step(env.answer)
    m = mcqa_metrics(patient)
    assert m["accuracy"] == 1.0 and m["psr"] == 2.0 and m["proactive_rate"] == 1.0


def test_mcqa_loop_with_scripted_models():
    episodes = world_environments("corruption", 8, seed=1)
    always_circle = ScriptedChat(lambda text: "circle")
    run_mcqa(always_circle, episodes, batch_size=3)
    truth = sum(e.answer == "circle" for e in episodes) / len(episodes)
    m = mcqa_metrics(episodes)
    assert m["accuracy"] == truth and m["psr"] == 0 and m["proactive_rate"] == 0
    # always request: four valid enhancements, then the last frame admits only a category
    requester = ScriptedChat(
        lambda text: next(o for o in options_of(text) if o.startswith(("Deblur", "Denoise", "Increase", "Reduce", "Remove")))
    )
    episodes = world_environments("corruption", 8, seed=1)
    run_mcqa(requester, episodes)
    valid = [e for e in episodes if e.turns[0].action is not None]
    assert all(e.num_turns == 5 and e.proactive_moves == 4 for e in valid)
    assert mcqa_metrics(episodes)["accuracy"] == 0
    silly = ScriptedChat(lambda text: "no idea")
    episodes = run_mcqa(silly, world_environments("drawing", 4, seed=1))
    assert mcqa_metrics(episodes)["unparseable_rate"] == 1.0


def test_occlusion_loop_hits_step_limit():
    looper = ScriptedChat(lambda text: "A")  # move the occluder left forever
    episodes = run_mcqa(looper, world_environments("occlusion", 3, seed=0))
    m = mcqa_metrics(episodes)
    assert m["psr"] == 7 and m["step_limit_rate"] == 1.0 and m["accuracy"] == 0


def test_oeg_bits_and_scores():
    assert parse_bits("<think>1,1</think> reasoning...\n0, 1, 0", 3) == [0, 1, 0]
    assert parse_bits("1,0", 3) is None
    assert oeg_scores([0, 1, 0], 2) == {"ps": 1, "cc": 0, "agg": 1}
    assert oeg_scores([0, 0, 1], 2) == {"ps": 0, "cc": 1, "agg": 1}
    assert oeg_scores(None, 2) == {"ps": 0, "cc": 0, "agg": 0}


def test_reference_control_with_scripted_model(release):
    from vlmkit.proactive.mcqa import run_reference

    episodes = world_environments("drawing", 5, seed=0)
    truth = {e.question + "|" + ",".join(e.categories): e.answer for e in episodes}
    model = ScriptedChat(
        lambda text: next(
            v for k, v in truth.items() if text.startswith(k.split("|")[0]) and all(c in text for c in k.split("|")[1].split(","))
        )
    )
    assert all(run_reference(model, episodes))
    assert published.environments(release, "MVP-N")[0].reference_frame().size == (32, 32)
    assert world_environments("camera", 1, seed=0)[0].reference_frame().size == (96, 96)


def test_the_informative_occlusion_frame_shows_the_object_alone():
    """Four moves either way take the occluder out of view: the reference frame is the scene
    without it, every other frame has the block over part of the scene."""
    import numpy as np

    from vlmkit.proactive import world as pw

    for index, env in enumerate(world_environments("occlusion", 4, seed=3)):
        rng = np.random.default_rng([3, pw.WORLD_SCENARIOS.index("occlusion"), index])
        obj, background = pw._object(rng)
        scene = np.asarray(pw._base(obj, background, rng))
        frames = [np.asarray(env.source.open(env.entry["image_template"].format(image=k))) for k in range(pw.OCCLUDER_FRAMES)]
        reference = env.entry["reference_image"]
        assert np.array_equal(frames[reference], scene)
        assert all(not np.array_equal(frame, scene) for k, frame in enumerate(frames) if k != reference)
