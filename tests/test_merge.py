"""Merging: hand-computed tensors for every method, and whole tiny LLaVA checkpoints."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from vlmkit.compress.merge import disjoint_mean, merge_tensors, trim_top
from vlmkit.errors import UserError

BASE = torch.tensor([1.0, 1.0, 1.0, 1.0])
A = torch.tensor([2.0, 1.0, 0.0, 1.5])  # tau_a = [1, 0, -1, 0.5]
B = torch.tensor([0.0, 1.0, 3.0, 1.25])  # tau_b = [-1, 0, 2, 0.25]


def test_linear_is_the_normalised_weighted_average():
    assert torch.allclose(merge_tensors("linear", None, [A, B], [3.0, 1.0]), (3 * A + B) / 4)


def test_task_arithmetic_by_hand():
    out = merge_tensors("task_arithmetic", BASE, [A, B], [0.5, 0.25], lam=2.0)
    expected = BASE + 2.0 * (0.5 * (A - BASE) + 0.25 * (B - BASE))
    assert torch.allclose(out, expected)


def test_trim_keeps_the_largest_magnitudes():
    assert torch.equal(trim_top(torch.tensor([0.1, -3.0, 2.0, -0.5]), 0.5), torch.tensor([0.0, -3.0, 2.0, 0.0]))
    assert torch.equal(trim_top(torch.tensor([1.0, 2.0]), 1.0), torch.tensor([1.0, 2.0]))


def test_ties_by_hand():
    # density 0.5: tau_a keeps [1, ., -1, .] (ties at |1|: topk keeps 2 of the largest), tau_b keeps [-1, ., 2, .]
    ta, tb = torch.tensor([1.0, 0.0, -1.0, 0.5]), torch.tensor([-1.0, 0.0, 2.0, 0.25])
    ta_t, tb_t = trim_top(ta, 0.5), trim_top(tb, 0.5)
    assert torch.equal(ta_t, torch.tensor([1.0, 0.0, -1.0, 0.0])) and torch.equal(tb_t, torch.tensor([-1.0, 0.0, 2.0, 0.0]))
    # weights 1, 2: entry 0: 1 - 2 = -1 -> sign -, only b agrees -> -1; entry 2: -1 + 4 -> +, only b agrees -> 2
    out = merge_tensors("ties", BASE, [BASE + ta, BASE + tb], [1.0, 2.0], density=0.5)
    assert torch.allclose(out, BASE + torch.tensor([-1.0, 0.0, 2.0, 0.0]))


def test_disjoint_mean_averages_agreeing_entries_with_weights():
    deltas = [torch.tensor([2.0, 1.0]), torch.tensor([4.0, -3.0]), torch.tensor([0.0, -1.0])]
    # entry 0: all weighted sum > 0: agreeing 2 (w1) and 4 (w1) -> (2 + 4) / 2; entry 1: 1 - 3 - 1 < 0 -> (-3 - 1) / 2
    assert torch.allclose(disjoint_mean(deltas, [1.0, 1.0, 1.0]), torch.tensor([3.0, -2.0]))


def test_dare_is_seeded_unbiased_and_rescaled():
    tau = torch.ones(20_000)
    gen = lambda: torch.Generator().manual_seed(5)  # noqa: E731
    a = merge_tensors("dare_linear", torch.zeros(20_000), [tau], [1.0], drop=0.2, generator=gen())
    b = merge_tensors("dare_linear", torch.zeros(20_000), [tau], [1.0], drop=0.2, generator=gen())
    assert torch.equal(a, b)
    assert set(a.unique().tolist()) <= {0.0, 1.25}
    assert abs(float((a == 0).float().mean()) - 0.2) < 0.02 and abs(float(a.mean()) - 1.0) < 0.03
    ties = merge_tensors("dare_ties", torch.zeros(4), [torch.ones(4), torch.ones(4)], [1.0, 1.0], drop=0.0)
    assert torch.allclose(ties, torch.ones(4))


@pytest.mark.parametrize("method", ["task_arithmetic", "ties", "dare_linear", "dare_ties"])
def test_identities(method):
    """Coefficients (1, 0) give the expert (TIES at full density); all zeros give the base."""
    kwargs = {"density": 1.0, "drop": 0.0}
    assert torch.allclose(merge_tensors(method, BASE, [A, B], [1.0, 0.0], **kwargs), A)
    assert torch.allclose(merge_tensors(method, BASE, [A, B], [0.0, 0.0], **kwargs), BASE)


# -- whole checkpoints ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def llava_dirs(tmp_path_factory):
    """A tiny LLaVA base and two 'experts' whose every tensor is perturbed."""
    from vlmkit.models.chat_random import build_directory

    root = tmp_path_factory.mktemp("merge")
    base = build_directory("llava-tiny", 0, root / "base")
    experts = []
    for i in (1, 2):
        expert = root / f"expert{i}"
        expert.mkdir()
        for f in base.iterdir():
            if f.suffix != ".safetensors":
                (expert / f.name).write_bytes(f.read_bytes())
        gen = torch.Generator().manual_seed(i)
        tensors = {k: v + 0.01 * torch.randn(v.shape, generator=gen) for k, v in load_file(base / "model.safetensors").items()}
        save_file(tensors, expert / "model.safetensors", metadata={"format": "pt"})
        experts.append(expert)
    return base, experts


def test_merged_llava_keeps_every_key_and_excluded_tensors_bit_for_bit(llava_dirs, tmp_path):
    from vlmkit.compress.merge_run import build_config, merge
    from vlmkit.models.chat_weights import checkpoint_roles

    base, (e1, e2) = llava_dirs
    config = build_config(
        "test",
        merge_method="task_arithmetic",
        base_model=str(base),
        models=[{"model": str(e1), "weight": 0.75}, {"model": str(e2), "weight": 0.25}],
        exclude=["vision", "projector", "embeddings", "head", "norm"],
    )
    out = merge(config, tmp_path / "merged")
    merged, b, x1, x2 = (load_file(d / "model.safetensors") for d in (out, base, e1, e2))
    assert set(merged) == set(b)
    roles = checkpoint_roles(base)
    assert {"vision", "projector", "embeddings", "head", "norm", "attention", "mlp"} <= set(roles.values())
    for key, role in roles.items():
        if role in ("vision", "projector", "embeddings", "head", "norm"):
            assert torch.equal(merged[key], b[key]), key
        else:
            expected = b[key] + 0.75 * (x1[key] - b[key]) + 0.25 * (x2[key] - b[key])
            assert torch.allclose(merged[key], expected, atol=1e-6), key
    record = json.loads((out / "merge.json").read_text())
    assert record["coefficients"] == [0.75, 0.25] and "vision" in record["excluded_roles"]


def test_merged_llava_loads_in_plain_transformers_and_answers(llava_dirs, tmp_path):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from vlmkit.cli.main import main
    from vlmkit.models.chat import ask
    from vlmkit.models.chat_hf import HFChatModel

    base, (e1, e2) = llava_dirs
    main_args = [
        "merge",
        "--method",
        "ties",
        "--base",
        str(base),
        "--models",
        f"{e1},{e2}",
        "--weights",
        "1,1",
        "--out",
        str(tmp_path / "m"),
    ]
    main(main_args)
    model = HFChatModel(
        AutoModelForImageTextToText.from_pretrained(tmp_path / "m"),
        AutoProcessor.from_pretrained(tmp_path / "m"),
        name="merged",
        fingerprint="m",
        multimodal=True,
    )
    from PIL import Image

    (answer,) = model.generate([ask("what color is it ?", Image.new("RGB", (32, 32), (200, 0, 0)))], max_new_tokens=3)
    assert isinstance(answer, str)
    # an expert merged alone with coefficient 1 is that expert
    main(
        ["merge", "--method", "task_arithmetic", "--base", str(base), "--models", str(e1), "--exclude", "", "--out", str(tmp_path / "one")]
    )
    one, x1 = load_file(tmp_path / "one" / "model.safetensors"), load_file(e1 / "model.safetensors")
    assert all(torch.allclose(one[k], x1[k], atol=1e-6) for k in x1)


def test_yaml_config_and_errors(llava_dirs, tmp_path, capsys):
    from vlmkit.cli.main import main

    base, (e1, e2) = llava_dirs
    yaml_text = f"""merge_method: linear
models:
  - model: {e1}
    parameters: {{weight: 1.0}}
  - model: {e2}
    parameters: {{weight: 3.0}}
parameters: {{exclude: [vision]}}
"""
    (tmp_path / "m.yaml").write_text(yaml_text)
    main(["merge", "--config", str(tmp_path / "m.yaml"), "--out", str(tmp_path / "lin")])
    merged, x1, x2 = (load_file(Path(d) / "model.safetensors") for d in (tmp_path / "lin", e1, e2))
    key = next(k for k in merged if "mlp.up_proj" in k)
    assert torch.allclose(merged[key], (x1[key] + 3 * x2[key]) / 4, atol=1e-6)

    (tmp_path / "bad.yaml").write_text("merge_method: [unclosed")
    (tmp_path / "nobase.yaml").write_text(f"merge_method: ties\nmodels: [{e1}]\n")
    cases = [
        ["--config", str(tmp_path / "missing.yaml")],
        ["--config", str(tmp_path / "bad.yaml")],
        ["--config", str(tmp_path / "nobase.yaml")],
        ["--models", f"{e1},{e2}", "--weights", "1"],
        ["--models", f"{e1},{e2}", "--weights", "a,b"],
        ["--method", "slerp", "--models", str(e1)],
        ["--models", str(tmp_path / "nowhere-dir-that-is-missing")],
    ]
    for i, args in enumerate(cases):
        with pytest.raises(SystemExit) as info:
            main(["merge", *args, "--out", str(tmp_path / f"bad{i}")])
        assert info.value.code == 2, args
        assert not (tmp_path / f"bad{i}").exists()
        err = capsys.readouterr().err.strip()
        assert err.startswith("error:") and "\n" not in err, err
    with pytest.raises(UserError, match="not empty"):
        from vlmkit.compress.merge_run import load_config, merge

        merge(load_config(tmp_path / "m.yaml"), tmp_path / "lin")


def test_row_blocks_give_the_same_merge(llava_dirs, tmp_path, monkeypatch):
    """Large tensors are merged a block of rows at a time; the result equals the one-piece merge."""
    import vlmkit.compress.merge_run as merge_run

    base, (e1, e2) = llava_dirs
    config = merge_run.build_config(
        "t",
        merge_method="task_arithmetic",
        base_model=str(base),
        models=[{"model": str(e1), "weight": 0.3}, {"model": str(e2), "weight": 0.9}],
        exclude=[],
    )
    whole = load_file(merge_run.merge(config, tmp_path / "whole") / "model.safetensors")
    monkeypatch.setattr(merge_run, "ROW_BLOCK", 40)
    blocks = load_file(merge_run.merge(config, tmp_path / "blocks") / "model.safetensors")
    assert all(torch.equal(whole[k], blocks[k]) for k in whole)
