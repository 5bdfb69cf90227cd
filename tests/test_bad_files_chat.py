"""The corrupt-input matrix of ``test_bad_files`` for the commands that drive chat models (LMMs):
every file such a command reads from the user, broken every way a user breaks it (missing,
empty, truncated, of the wrong type), gives one line on stderr starting ``error:``, exit code 2,
no traceback, and nothing under ``--out``.

A valid set of inputs (a tiny random LLaVA checkpoint and two perturbed experts, conversation
files, a suite, an image index, a concept database, a ProactiveBench release folder) is built
once; each case copies it, breaks one file and runs the command. Most failures are found before
a model loads; an image that exists but does not decode is found where it is first used (by a
tiny random model, within a second or two), and the command then removes the ``--out`` it made.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from tests.test_bad_files import BREAKS, _fill, run_cli

CHAT = "random:llava-tiny"
CLIP = "random:clip-tiny"


def _text(path: Path) -> None:
    """Text where an image (or any binary file) belongs."""
    path.write_text("this is not an image\n")


def _yaml_list(path: Path) -> None:
    path.write_text("- merge_method\n- linear\n")


def _json_object(path: Path) -> None:
    path.write_text('{"not": "what you think"}\n')


def _jsonl_scalars(path: Path) -> None:
    path.write_text("1\n2\n")


BREAKS = {**BREAKS, "text": _text, "yaml list": _yaml_list, "json object": _json_object, "jsonl scalars": _jsonl_scalars}
JSON_BREAKS = ("missing", "empty", "truncated", "json list")
LIST_BREAKS = ("missing", "empty", "truncated", "json object")  # a JSON file that holds a list
JSONL_BREAKS = ("missing", "empty", "truncated", "jsonl scalars")
TEXT_BREAKS = ("missing", "empty", "binary")
IMAGE_BREAKS = ("missing", "empty", "truncated", "text")
WEIGHT_BREAKS = ("missing", "empty", "truncated", "json text")
DIR_BREAKS = ("missing",)


def _colour_records(root: Path, n: int, prefix: str) -> list[dict]:
    from PIL import Image

    colours = {"red": (230, 20, 20), "blue": (20, 20, 230), "green": (20, 200, 20)}
    records = []
    for i in range(n):
        name = list(colours)[i % 3]
        Image.new("RGB", (32, 32), colours[name]).save(root / f"{prefix}{i}.png")
        turns = [{"from": "human", "value": "<image>\nwhat color is it ?"}, {"from": "gpt", "value": name}]
        records.append({"id": str(i), "image": f"{prefix}{i}.png", "conversations": turns})
    return records


def _expert(base: Path, out: Path, seed: int) -> Path:
    import torch
    from safetensors.torch import load_file, save_file

    out.mkdir()
    for f in base.iterdir():
        if f.suffix != ".safetensors":
            shutil.copy(f, out / f.name)
    gen = torch.Generator().manual_seed(seed)
    tensors = {k: v + 0.01 * torch.randn(v.shape, generator=gen) for k, v in load_file(base / "model.safetensors").items()}
    save_file(tensors, out / "model.safetensors", metadata={"format": "pt"})
    return out


@pytest.fixture(scope="module")
def valid(tmp_path_factory) -> Path:
    """One folder with a valid input of every kind the chat commands read."""
    from PIL import Image

    from tests.proactive_fixtures import write_release
    from vlmkit.models.chat_random import build_directory

    root = tmp_path_factory.mktemp("valid_chat")
    base = build_directory("llava-tiny", 0, root / "base")
    _expert(base, root / "colour", 1)
    _expert(base, root / "shape", 2)
    (root / "merge.yaml").write_text(
        f"merge_method: task_arithmetic\nbase_model: {base}\nmodels:\n  - model: {root / 'colour'}\n  - model: {root / 'shape'}\n"
    )
    (root / "conv.json").write_text(json.dumps(_colour_records(root, 6, "c")))
    (root / "other.json").write_text(json.dumps(_colour_records(root, 3, "o")))
    (root / "mix.json").write_text(json.dumps({"conv.json": 2, "other.json": 1}))
    (root / "suite.json").write_text(json.dumps({"colours": "other.json"}))
    Image.new("RGB", (40, 30), (200, 30, 30)).save(root / "photo.png")

    rows = []
    (root / "img").mkdir()
    for name, rgb in {"red": (220, 30, 30), "green": (30, 170, 60), "blue": (30, 70, 220)}.items():
        for i in range(2):
            Image.new("RGB", (40, 30), rgb).save(root / "img" / f"{name}{i}.png")
            rows.append({"path": f"img/{name}{i}.png", "label": name, "attributes": {"shade": ["dark", "light"][i]}})
    (root / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    shutil.copytree(root / "img", root / "pimg")  # a labelled pool (ICL shots, CIRCLE context) of its own
    (root / "pool.jsonl").write_text("".join(json.dumps({**r, "path": "p" + r["path"]}) + "\n" for r in rows))
    (root / "classes.txt").write_text("red\ngreen\nblue\n")
    (root / "templates.txt").write_text("a photo of a {}.\n")
    (root / "proposals.json").write_text(json.dumps({"shade": ["dark", "light"]}))
    predictions = [{"prediction": r["label"], "label": r["label"], "id": r["path"]} for r in rows]
    (root / "predictions.jsonl").write_text("".join(json.dumps(p) + "\n" for p in predictions))
    (root / "categories.json").write_text(json.dumps({"bo": "dog"}))
    for split, count in (("train", 3), ("test", 2)):
        for name, rgb in (("bo", (200, 120, 40)), ("mam", (90, 90, 90))):
            (root / "yollava" / split / name).mkdir(parents=True)
            for k in range(count):
                Image.new("RGB", (32, 32), rgb).save(root / "yollava" / split / name / f"{k}.png")
    write_release(root / "release")
    from tests.test_benchmarks import make_benchmark

    make_benchmark(root / "bench", "dtd")
    make_benchmark(root / "bench", "fgvc_aircraft")
    from vlmkit.compress import dmo

    (root / "mixed").mkdir()
    for mixture in dmo.mixtures(["colour", "shape"], 2, 42):  # stand-ins for the mixture-trained models
        (root / "mixed" / dmo.mixture_id(mixture)).symlink_to(Path("..") / "base")

    assert run_cli(["index", "build", "-m", CLIP, "--dataset", root / "data.jsonl", "--out", root / "index"]) == 0
    assert run_cli(["c2b", "train-probe", "-m", CLIP, "--dataset", root / "data.jsonl", "--out", root / "probe"]) == 0
    assert run_cli(["world", "personal", "--out", root / "personal", "--concepts", "2", "--references", "2", "--queries", "1",
                    "--distractors", "1", "--side", "48", "--seed", "1"]) == 0
    assert run_cli(["r2p", "build", "--concepts", root / "personal" / "concepts", "--out", root / "db", "-m", CHAT, "--clip", CLIP,
                    "--fingerprint-mode", "questions"]) == 0
    return root


# ---- which command reads which file --------------------------------------------------------
# (command and arguments, with {name} for a file of the copied valid folder; the file broken; the breaks)

MERGE = ["merge", "--models", "{colour},{shape}", "--base", "{base}"]
SFT = ["sft", "-m", CHAT, "--max-steps", "1", "--batch-size", "2"]
DMO = ["dmo", "run", "--base", "{base}", "--experts", "colour={colour},shape={shape}", "--eval", "{suite.json}", "--mixed", "{mixed}"]
PRUNE = ["prune", "--method", "layer", "--ratio", "0.3", "--n-calibration", "2"]
RECOVER = ["recover", "--recipe", "kd-hidden", "--max-steps", "1", "--batch-size", "2", "--fraction", "1"]
C2B = ["c2b", "run", "--classifier", f"zeroshot:{CLIP}", "--task", "classify the colour", "--classes", "red,green,blue",
       "--index", "{index}", "--proposals", "{proposals.json}", "-k", "2", "--min-n", "1"]
OW = ["openworld", "run", "-m", CHAT, "--limit", "2"]
ICL = ["icl", "run", "-m", CHAT, "--retriever", CLIP, "--shots", "1", "--limit", "2"]
CIRCLE = ["circle", "run", "-m", CHAT, "--retriever", CLIP, "--m", "2", "--rounds", "1", "--limit", "2"]
R2P_EVAL = ["r2p", "eval", "--db", "{db}", "--dataset", "{personal/manifest.jsonl}", "-k", "2"]
R2P_BUILD = ["r2p", "build", "--concepts", "{personal/concepts}", "-m", CHAT, "--clip", CLIP, "--fingerprint-mode", "questions"]
R2P_PREP = ["r2p", "prepare", "--data", "{yollava}"]
PRO = ["proactive", "run", "-m", CHAT, "--data", "{release}", "--scenarios", "ROD", "--n", "1", "--no-cache"]

CASES = {
    "chat image": (["chat", "hello", "-m", CHAT, "--image", "{photo.png}"], "photo.png", IMAGE_BREAKS),
    "export config.json": (["export", "{base}"], "base/config.json", JSON_BREAKS),
    "export weights": (["export", "{base}"], "base/model.safetensors", WEIGHT_BREAKS),
    "export folder": (["export", "{base}"], "base", DIR_BREAKS),
    "merge config": (["merge", "--config", "{merge.yaml}"], "merge.yaml", ("missing", "empty", "truncated", "binary", "yaml list")),
    "merge expert config.json": (MERGE, "shape/config.json", JSON_BREAKS),
    "merge expert weights": (MERGE, "shape/model.safetensors", WEIGHT_BREAKS),
    "merge expert folder": (MERGE, "shape", DIR_BREAKS),
    "merge base weights": (MERGE, "base/model.safetensors", WEIGHT_BREAKS),
    "sft conversations": (SFT + ["--data", "{conv.json}"], "conv.json", LIST_BREAKS),
    "sft conversation images": (SFT + ["--data", "{conv.json}"], "c*.png", IMAGE_BREAKS),
    "sft mixture": (SFT + ["--data", "{mix.json}"], "mix.json", JSON_BREAKS),
    "sft mixture source": (SFT + ["--data", "{mix.json}"], "other.json", LIST_BREAKS),
    "sft model config.json": (["sft", "-m", "{base}", "--max-steps", "1", "--data", "{conv.json}"], "base/config.json", JSON_BREAKS),
    "sft model weights": (["sft", "-m", "{base}", "--max-steps", "1", "--data", "{conv.json}"], "base/model.safetensors", WEIGHT_BREAKS),
    "dmo suite": (DMO, "suite.json", JSON_BREAKS),
    "dmo suite conversations": (DMO, "other.json", LIST_BREAKS),
    "dmo suite images": (DMO, "o*.png", IMAGE_BREAKS),
    "dmo expert config.json": (DMO, "colour/config.json", JSON_BREAKS),
    "dmo expert weights": (DMO, "colour/model.safetensors", WEIGHT_BREAKS),
    "dmo expert folder": (DMO, "colour", DIR_BREAKS),
    "dmo base weights": (DMO, "base/model.safetensors", WEIGHT_BREAKS),
    "dmo mixed folder": (DMO, "mixed", DIR_BREAKS),
    "dmo train-mixtures data": (DMO[:-2] + ["--train-mixtures", "colour={conv.json},shape={other.json}", "--samples", "2"],
                                "conv.json", LIST_BREAKS),
    "prune calibration": (PRUNE + ["-m", CHAT, "--calibration", "{conv.json}"], "conv.json", LIST_BREAKS),
    "prune calibration images": (PRUNE + ["-m", CHAT, "--calibration", "{conv.json}"], "c*.png", IMAGE_BREAKS),
    "prune model config.json": (PRUNE + ["-m", "{base}", "--calibration", "{conv.json}"], "base/config.json", JSON_BREAKS),
    "prune model weights": (PRUNE + ["-m", "{base}", "--calibration", "{conv.json}"], "base/model.safetensors", WEIGHT_BREAKS),
    "recover data": (RECOVER + ["-m", "{colour}", "--teacher", "{base}", "--data", "{conv.json}"], "conv.json", LIST_BREAKS),
    "recover data images": (RECOVER + ["-m", "{colour}", "--teacher", "{base}", "--data", "{conv.json}"], "c*.png", IMAGE_BREAKS),
    "recover model weights": (RECOVER + ["-m", "{colour}", "--teacher", "{base}", "--data", "{conv.json}"],
                              "colour/model.safetensors", WEIGHT_BREAKS),
    "recover teacher config.json": (RECOVER + ["-m", "{colour}", "--teacher", "{base}", "--data", "{conv.json}"],
                                    "base/config.json", JSON_BREAKS),
    "c2b classes file": (C2B[:7] + ["{classes.txt}"] + C2B[8:], "classes.txt", TEXT_BREAKS),
    "c2b proposals": (C2B, "proposals.json", JSON_BREAKS),
    "c2b index.json": (C2B, "index/index.json", JSON_BREAKS),
    "c2b index.faiss": (C2B, "index/index.faiss", WEIGHT_BREAKS),
    "c2b index items": (C2B, "index/items.jsonl", JSONL_BREAKS),
    "c2b prompts file": (C2B + ["--prompts", "{templates.txt}"], "templates.txt", TEXT_BREAKS),
    "c2b probe classifier": (["c2b", "run", "--classifier", "probe:{probe/probe.safetensors}"] + C2B[4:],
                             "probe/probe.safetensors", WEIGHT_BREAKS),
    "c2b annotations": (C2B + ["--annotations", "{data.jsonl}"], "data.jsonl", JSONL_BREAKS),
    "c2b pool labels": (C2B + ["--pool-labels", "{data.jsonl}"], "data.jsonl", JSONL_BREAKS),
    "c2b train-probe dataset": (["c2b", "train-probe", "-m", CLIP, "--dataset", "{data.jsonl}"], "data.jsonl", JSONL_BREAKS),
    "c2b train-probe image": (["c2b", "train-probe", "-m", CLIP, "--dataset", "{data.jsonl}"], "img/red0.png", IMAGE_BREAKS),
    "openworld run dataset": (OW + ["--dataset", "{data.jsonl}"], "data.jsonl", JSONL_BREAKS),
    "openworld run CoOp split file": (OW + ["--dataset", "dtd:{bench/dtd}"], "bench/dtd/split_zhou_DescribableTextures.json",
                                      JSON_BREAKS),
    "openworld run aircraft listing": (OW + ["--dataset", "fgvc_aircraft:{bench/fgvc_aircraft}"],
                                       "bench/fgvc_aircraft/images_variant_test.txt", TEXT_BREAKS),
    "openworld run dataset images": (OW + ["--dataset", "{data.jsonl}"], "img/*.png", IMAGE_BREAKS),
    "icl pool images": (ICL + ["--dataset", "{data.jsonl}", "--pool", "{pool.jsonl}"], "pimg/*.png", IMAGE_BREAKS),
    "openworld score predictions": (["openworld", "score", "--predictions", "{predictions.jsonl}"], "predictions.jsonl", JSONL_BREAKS),
    "icl dataset": (ICL + ["--dataset", "{data.jsonl}", "--pool", "{pool.jsonl}"], "data.jsonl", JSONL_BREAKS),
    "icl pool": (ICL + ["--dataset", "{data.jsonl}", "--pool", "{pool.jsonl}"], "pool.jsonl", JSONL_BREAKS),
    "icl templates file": (ICL + ["--dataset", "{data.jsonl}", "--pool", "{pool.jsonl}", "--templates", "{templates.txt}"],
                           "templates.txt", TEXT_BREAKS),
    "circle dataset": (CIRCLE + ["--dataset", "{data.jsonl}", "--context", "{pool.jsonl}"], "data.jsonl", JSONL_BREAKS),
    "circle context": (CIRCLE + ["--dataset", "{data.jsonl}", "--context", "{pool.jsonl}"], "pool.jsonl", JSONL_BREAKS),
    "r2p build concept.json": (R2P_BUILD, "personal/concepts/{concept}/concept.json", JSON_BREAKS[1:]),  # optional: missing is fine
    "r2p build reference image": (R2P_BUILD, "personal/concepts/{concept}/ref_0.png", IMAGE_BREAKS[1:]),  # missing: one fewer
    "r2p build concepts folder": (R2P_BUILD, "personal/concepts", DIR_BREAKS),
    "r2p eval database.json": (R2P_EVAL, "db/database.json", JSON_BREAKS),
    "r2p eval embeddings": (R2P_EVAL, "db/embeddings.npz", WEIGHT_BREAKS),
    "r2p eval query manifest": (R2P_EVAL, "personal/manifest.jsonl", JSONL_BREAKS),
    "r2p eval query image": (R2P_EVAL, "personal/{query}", IMAGE_BREAKS),
    # a reference is decoded only when the pairwise step runs; that it exists is checked when the database loads
    "r2p eval reference images": (R2P_EVAL, "db/references/*/00.png", DIR_BREAKS),
    "r2p prepare categories": (R2P_PREP + ["--categories", "{categories.json}"], "categories.json", JSON_BREAKS),
    "r2p prepare data folder": (R2P_PREP, "yollava/test", DIR_BREAKS),
    "proactive run episodes": (PRO, "release/Realistic-Occlusion-Dataset_preprocessed.jsonl", JSONL_BREAKS + ("binary",)),
    "proactive run frames": (PRO, "release/ROD/*/0.png", IMAGE_BREAKS),
    "proactive run data folder": (PRO, "release", DIR_BREAKS),
}

PARAMS = [(case, kind) for case, (_, _, kinds) in sorted(CASES.items()) for kind in kinds]


def _targets(work: Path, target: str) -> list[Path]:
    """The files ``target`` names under ``work``: a glob breaks every match (every image of a
    conversation file, whichever a run draws first); ``{concept}`` and ``{query}`` pick the first
    concept folder and the first query image."""
    if "{concept}" in target:
        target = target.replace("{concept}", sorted(p.name for p in (work / "personal" / "concepts").iterdir())[0])
    if "{query}" in target:
        target = target.replace("{query}", json.loads((work / "personal" / "manifest.jsonl").read_text().splitlines()[0])["path"])
    paths = sorted(work.glob(target)) if "*" in target else [work / target]
    assert paths, target
    return paths


def _names(err: str, path: Path) -> bool:
    """``err`` names the file, or the folder that holds it (a checkpoint directory), itself and not
    a path below it (an error about another file of the same folder does not count)."""
    return path.name in err or re.search(re.escape(str(path.parent)) + r"(?![/\w.-])", err) is not None


@pytest.mark.parametrize(("case", "kind"), PARAMS, ids=[f"{c}-{k}" for c, k in PARAMS])
def test_a_broken_file_is_one_line_exit_2_and_nothing_written(valid, tmp_path, capsys, case, kind):
    args, target, _ = CASES[case]
    work = tmp_path / "in"
    shutil.copytree(valid, work, symlinks=True)
    (work / "merge.yaml").write_text((work / "merge.yaml").read_text().replace(str(valid), str(work)))
    paths = _targets(work, target)
    for path in paths:
        BREAKS[kind](path)
    out = tmp_path / "out"
    has_out = args[0] != "chat"
    code = run_cli(_fill(args, work) + (["--out", str(out)] if has_out else []))
    err = capsys.readouterr().err.strip()
    assert code == 2, f"exit {code}; stderr: {err[-400:]}"
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err, err
    assert any(_names(err, p) for p in paths), f"the message does not name {target}: {err}"
    if has_out and out.exists():  # nothing written, or only the saved progress of a run that trained before it met the file
        kept = sorted(p.name for p in out.iterdir())
        assert kept in ([], ["work"]), sorted(p.name for p in out.rglob("*"))
        assert kept == [] or f"kept in {out / 'work'}" in err, err
