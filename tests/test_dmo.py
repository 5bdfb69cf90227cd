"""The data-mixture study: grids, rank agreement, regret, and the run end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest

from vlmkit.compress import dmo
from vlmkit.compress.suite import normalize_answer


def test_grids_match_the_paper():
    two, three, four = dmo.grid(2), dmo.grid(3), dmo.grid(4)
    assert len(two) == 7 and len(three) == 21 and len(four) == 21
    for mixtures in (two, three, four):
        assert all(abs(sum(m) - 1) < 1e-9 and min(m) > 0 for m in mixtures)
    assert all(all(abs(x * 8 - round(x * 8)) < 1e-9 for x in m) for m in three)
    assert four[-1] == (0.25,) * 4 and dmo.grid(4) == four  # seeded
    assert len(dmo.mixtures(["a", "b", "c"], 2)) == 21  # 3 pairs x 7


def test_apportion_gives_the_exact_total():
    # rounding each share alone: 0.5*3 -> 2 twice = 4 samples for a total of 3
    assert dmo.apportion([0.5, 0.5], 3) in ([2, 1], [1, 2])
    assert dmo.apportion([1 / 3, 1 / 3, 1 / 3], 8) == [3, 3, 2]
    assert dmo.apportion([0.125, 0.375, 0.5], 8) == [1, 3, 4]  # exact shares stay exact
    for mixture in dmo.grid(4):
        counts = dmo.apportion(mixture, 960)
        assert sum(counts) == 960 and all(abs(c - w * 960) < 1 for c, w in zip(counts, mixture, strict=True))


def test_rank_agreement_against_hand_values():
    perfect = dmo.rank_agreement([1, 2, 3, 4], [10, 20, 30, 40])
    assert perfect["spearman"] == pytest.approx(1) and perfect["kendall"] == pytest.approx(1)
    reversed_ = dmo.rank_agreement([1, 2, 3, 4], [4, 3, 2, 1])
    assert reversed_["spearman"] == pytest.approx(-1) and reversed_["kendall"] == pytest.approx(-1)
    # one swapped pair of 4: Spearman 1 - 6*2/(4*15) = 0.8; Kendall (5 - 1)/6
    swapped = dmo.rank_agreement([1, 2, 3, 4], [1, 3, 2, 4])
    assert swapped["spearman"] == pytest.approx(0.8) and swapped["kendall"] == pytest.approx(4 / 6)
    assert 0 < swapped["spearman_p"] < 1
    assert dmo.rank_agreement([1, 1, 1], [1, 2, 3])["spearman"] is None


def test_regret_is_the_loss_from_trusting_the_proxy():
    assert dmo.regret([0.1, 0.9, 0.5], [0.7, 0.4, 0.8]) == pytest.approx(0.4)
    assert dmo.regret([1, 2, 3], [1, 2, 3]) == 0


def test_answer_normalisation():
    assert normalize_answer("  The Red star. ") == "red star"
    assert normalize_answer("An apple!") == "apple" and normalize_answer("Theatre") == "theatre"


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """A tiny LLaVA base, two perturbed experts, a one-benchmark suite."""
    import torch
    from PIL import Image
    from safetensors.torch import load_file, save_file

    from vlmkit.models.chat_random import build_directory

    root = tmp_path_factory.mktemp("dmo")
    base = build_directory("llava-tiny", 0, root / "base")
    experts = {}
    for i, name in enumerate(("colour", "shape")):
        expert = root / name
        expert.mkdir()
        for f in base.iterdir():
            if f.suffix != ".safetensors":
                (expert / f.name).write_bytes(f.read_bytes())
        gen = torch.Generator().manual_seed(i)
        tensors = {k: v + 0.5 * torch.randn(v.shape, generator=gen) for k, v in load_file(base / "model.safetensors").items()}
        save_file(tensors, expert / "model.safetensors", metadata={"format": "pt"})
        experts[name] = expert
    records = []
    for i, (colour, rgb) in enumerate({"red": (230, 20, 20), "blue": (20, 20, 230), "green": (20, 200, 20)}.items()):
        Image.new("RGB", (32, 32), rgb).save(root / f"{i}.png")
        records.append(
            {
                "image": f"{i}.png",
                "conversations": [{"from": "human", "value": "<image> what color is it ?"}, {"from": "gpt", "value": colour}],
            }
        )
    (root / "colours.json").write_text(json.dumps(records))
    (root / "suite.json").write_text(json.dumps({"colours": "colours.json"}))
    return root, base, experts


def test_dmo_run_end_to_end_with_given_mixture_models(study, tmp_path, monkeypatch):
    from vlmkit.cli.main import main
    from vlmkit.compress.merge_run import build_config, merge

    root, base, experts = study
    mixed = tmp_path / "mixed"
    for mixture in dmo.mixtures(list(experts), 2):  # stand-ins for trained models: the merges themselves
        config = build_config(
            "t",
            merge_method="task_arithmetic",
            base_model=str(base),
            exclude=["vision"],
            models=[{"model": str(experts[d]), "weight": w} for d, w in mixture.items()],
        )
        merge(config, mixed / dmo.mixture_id(mixture))
    args = [
        "dmo",
        "run",
        "--base",
        str(base),
        "--experts",
        f"colour={experts['colour']},shape={experts['shape']}",
        "--grid",
        "2",
        "--eval",
        str(root / "suite.json"),
        "--mixed",
        str(mixed),
        "--out",
        str(tmp_path / "out"),
    ]
    main(args)
    result = json.loads((tmp_path / "out" / "result.json").read_text())
    assert len(result["mixtures"]) == 7
    for row in result["mixtures"]:  # the same weights, evaluated the same way, score the same
        assert row["proxy"] == row["mixed"]
    assert set(result["agreement"]) == {"colours", "average"} and result["regret"] == 0
    assert (tmp_path / "out" / "report.html").is_file() and not any((tmp_path / "out" / "work" / "merged").iterdir())

    # resume: every mixture is already scored, so nothing is merged again
    import vlmkit.compress.dmo_run as dmo_run

    monkeypatch.setattr(dmo_run, "merge", lambda *a, **k: (_ for _ in ()).throw(AssertionError("merged again")))
    (tmp_path / "out" / "result.json").unlink()
    main(args)
    assert json.loads((tmp_path / "out" / "result.json").read_text())["mixtures"] == result["mixtures"]


def test_dmo_run_checks_inputs_before_merging(study, tmp_path, capsys):
    from vlmkit.cli.main import main

    root, base, experts = study
    common = ["dmo", "run", "--base", str(base), "--eval", str(root / "suite.json"), "--out", str(tmp_path / "o")]
    cases = [
        ["--experts", f"colour={experts['colour']},shape={experts['shape']}", "--mixed", str(tmp_path / "nothing")],
        ["--experts", f"colour={experts['colour']},shape={experts['shape']}"],
        ["--experts", f"colour={experts['colour']}", "--mixed", str(tmp_path)],
        ["--experts", f"colour={experts['colour']},shape={tmp_path}", "--mixed", str(tmp_path)],
        ["--experts", f"colour={experts['colour']},shape={experts['shape']}", "--grid", "3", "--mixed", str(tmp_path)],
    ]
    for args in cases:
        with pytest.raises(SystemExit) as info:
            main([*common, *args])
        assert info.value.code == 2, args
        err = capsys.readouterr().err.strip()
        assert err.startswith("error:") and "\n" not in err, err
    assert not (tmp_path / "o" / "result.json").exists()


def test_mixture_trained_models_are_trained_when_asked(study, tmp_path):
    from vlmkit.compress.dmo_run import DMOOptions, _train_mixed
    from vlmkit.compress.sft import SFTConfig

    root, base, experts = study
    opts = DMOOptions(
        base=base,
        experts=experts,
        suite=root / "suite.json",
        out=tmp_path,
        samples=6,
        train_mixtures={"colour": root / "colours.json", "shape": root / "colours.json"},
        sft=SFTConfig(mode="projector", max_steps=2, batch_size=3),
    )
    out = _train_mixed(opts, {"colour": 0.5, "shape": 0.5}, tmp_path / "m")
    assert (out / "config.json").is_file()
    assert np.isfinite(json.loads((out / "config.json").read_text())["text_config"]["hidden_size"])
