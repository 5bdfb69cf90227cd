"""Every file a command reads from the user, broken every way a user breaks it (missing, empty,
truncated, of the wrong type): one line on stderr starting ``error:``, exit code 2, no traceback,
and nothing under ``--out``.

A valid set of inputs is built once; each case copies it, breaks one file and runs the command.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from vlmkit.cli.main import main

MODEL = "random:clip-tiny"


def run_cli(args: list) -> int:
    try:
        main([str(a) for a in args])
    except SystemExit as exc:
        return exc.code or 0
    return 0


@pytest.fixture(scope="module")
def valid(tmp_path_factory) -> Path:
    """One folder with a valid input of every kind the commands read."""
    from PIL import Image

    from vlmkit.debias.sae import MatryoshkaSAE, SAEConfig
    from vlmkit.models import load_model

    root = tmp_path_factory.mktemp("valid")
    rows = []
    (root / "img").mkdir()
    for name, rgb in {"red": (220, 30, 30), "green": (30, 170, 60), "blue": (30, 70, 220)}.items():
        for i in range(2):
            Image.new("RGB", (40, 30), rgb).save(root / "img" / f"{name}{i}.png")
            rows.append({"path": f"img/{name}{i}.png", "label": name, "caption": f"a {name} thing",
                         "attributes": {"red": int(name == "red"), "blue": int(name == "blue")}})
    (root / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (root / "texts.txt").write_text("a red thing\na blue thing\n")
    (root / "classes.txt").write_text("red\ngreen\nblue\n")
    (root / "templates.txt").write_text("a photo of a {}.\na {} thing.\n")
    (root / "vocab.txt").write_text("\n".join(f"word{i}" for i in range(40)) + "\n")
    (root / "attrs.txt").write_text("red\nblue:blue/azure\n")
    (root / "objs.txt").write_text("thing\nshape\n")
    (root / "compat.json").write_text(json.dumps({"red": {"thing": 1.0, "shape": 2.0}, "blue": {"thing": 1.0}}))
    (root / "compat.csv").write_text("attribute,object,score\nred,thing,1\nblue,shape,2\n")
    (root / "para.json").write_text(json.dumps({"a red thing": ["a red object", "something red"],
                                                "a blue thing": ["a blue object", "something blue"]}))
    (root / "bias.json").write_text(json.dumps({"tone": {"warm": ["a warm photo", "a warm image"],
                                                         "cold": ["a cold photo", "a cold image"]}}))
    (root / "neutral.txt").write_text("\n".join(f"a photo number {i}" for i in range(12)) + "\n")
    model = load_model(MODEL)
    model.save(root / "model")
    MatryoshkaSAE(SAEConfig(model.embed_dim, 48, (4, 8))).save(root / "sae")
    assert run_cli(["index", "build", "-m", MODEL, "--dataset", root / "data.jsonl", "--out", root / "index"]) == 0
    assert run_cli(["comca", "build-cache", "-m", MODEL, "--attributes", root / "attrs.txt", "--index", root / "index",
                    "--k", "2", "--out", root / "cache"]) == 0
    return root


# ---- how a file gets broken ---------------------------------------------------------------

def _missing(path: Path) -> None:
    shutil.rmtree(path) if path.is_dir() else path.unlink()


def _empty(path: Path) -> None:
    path.write_bytes(b"")


def _truncated(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: max(1, len(data) // 2)])


def _wrong_json_type(path: Path) -> None:
    path.write_text("[1, 2, 3]\n")


def _binary(path: Path) -> None:
    path.write_bytes(b"\xff\xfe\x00\x81garbage\x00")


def _json_text(path: Path) -> None:
    path.write_text('{"not": "what you think"}\n')


BREAKS = {"missing": _missing, "empty": _empty, "truncated": _truncated, "json list": _wrong_json_type,
          "binary": _binary, "json text": _json_text}

# ---- which command reads which file --------------------------------------------------------
# (command and arguments, with {name} for a file of the copied valid folder; the file broken; the breaks;
# whether the command has --out)

ZS = ["zeroshot", "-m", MODEL, "--dataset", "{data.jsonl}"]
ENC = ["debias", "encode", "-m", MODEL, "--texts", "{texts.txt}"]
EVAL = ["debias", "eval", "-m", MODEL, "--dataset", "{data.jsonl}", "--attribute", "red", "--sensitive", "blue", "--splits", "2"]
BUILD = ["comca", "build-cache", "-m", MODEL, "--attributes", "{attrs.txt}", "--index", "{index}", "--k", "2"]
JSON_BREAKS = ("missing", "empty", "truncated", "json list")
TEXT_BREAKS = ("missing", "empty", "binary")
BINARY_BREAKS = ("missing", "empty", "truncated", "json text")

CASES = {
    "zeroshot manifest": (ZS, "data.jsonl", ("missing", "truncated", "json list", "binary")),
    "zeroshot classes file": (ZS + ["--classes", "{classes.txt}"], "classes.txt", ("empty", "binary")),
    "zeroshot template file": (ZS + ["--templates", "{templates.txt}"], "templates.txt", ("empty", "binary")),
    "zeroshot model config.json": (ZS[:2] + ["{model}"] + ZS[3:], "model/config.json", JSON_BREAKS),
    "zeroshot model weights": (ZS[:2] + ["{model}"] + ZS[3:], "model/model.safetensors", BINARY_BREAKS),
    "zeroshot model preprocessor config": (
        ZS[:2] + ["{model}"] + ZS[3:],
        "model/preprocessor_config.json",
        ("empty", "truncated", "json list"),
    ),
    "embed texts": (["embed", "-m", MODEL, "--texts", "{texts.txt}"], "texts.txt", TEXT_BREAKS),
    "embed dataset": (["embed", "-m", MODEL, "--dataset", "{data.jsonl}"], "data.jsonl", ("missing", "truncated", "binary")),
    "index build dataset": (
        ["index", "build", "-m", MODEL, "--dataset", "{data.jsonl}"],
        "data.jsonl",
        ("missing", "truncated", "json list"),
    ),
    "sith vocabulary": (
        ["sith", "-m", MODEL, "--layers", "all", "--vocab", "{vocab.txt}", "--image-mean", "none", "--no-coherence"],
        "vocab.txt",
        TEXT_BREAKS,
    ),
    "sith image-mean dataset": (
        ["sith", "-m", MODEL, "--layers", "all", "--vocab", "world", "--image-mean", "{data.jsonl}", "--no-coherence"],
        "data.jsonl",
        ("missing", "truncated", "json list"),
    ),
    "edit vocabulary": (
        ["edit", "-m", MODEL, "--suppress", "red", "--layers", "all", "--vocab", "{vocab.txt}", "--image-mean", "none"],
        "vocab.txt",
        TEXT_BREAKS,
    ),
    "sae train texts": (
        ["sae", "train", "-m", MODEL, "--latents", "16", "--k", "2,4", "--steps", "2", "--texts", "{texts.txt}"],
        "texts.txt",
        TEXT_BREAKS,
    ),
    "sae eval sae.json": (["sae", "eval", "-m", MODEL, "--sae", "{sae}", "--texts", "{texts.txt}"], "sae/sae.json", JSON_BREAKS),
    "sae eval weights": (["sae", "eval", "-m", MODEL, "--sae", "{sae}", "--texts", "{texts.txt}"], "sae/sae.safetensors", BINARY_BREAKS),
    "sae eval official checkpoint": (
        ["sae", "eval", "-m", MODEL, "--sae", "{sae_clip_32_48_4x8_reverse.pth}", "--texts", "{texts.txt}"],
        "sae_clip_32_48_4x8_reverse.pth",
        ("empty", "binary", "json text"),
    ),
    "debias encode texts": (ENC + ["--method", "none"], "texts.txt", TEXT_BREAKS),
    "debias encode paraphrases": (ENC + ["--method", "sem_i", "--sae", "{sae}", "--paraphrases", "{para.json}"], "para.json", JSON_BREAKS),
    "debias encode bias prompts": (
        ENC + ["--method", "orth_proj", "--bias", "tone", "--bias-prompts", "{bias.json}"],
        "bias.json",
        JSON_BREAKS,
    ),
    "debias encode neutral prompts": (
        ENC + ["--method", "none", "--neutral", "{neutral.txt}"],
        "neutral.txt",
        ("missing", "empty", "truncated", "binary"),
    ),
    "debias encode sae.json": (ENC + ["--method", "sem_i", "--sae", "{sae}", "--paraphrases", "{para.json}"], "sae/sae.json", JSON_BREAKS),
    "debias encode sae weights": (
        ENC + ["--method", "sem_i", "--sae", "{sae}", "--paraphrases", "{para.json}"],
        "sae/sae.safetensors",
        BINARY_BREAKS,
    ),
    "debias eval dataset": (EVAL + ["--methods", "none"], "data.jsonl", ("missing", "truncated", "json list")),
    "debias eval paraphrases": (EVAL + ["--methods", "sem_i", "--sae", "{sae}", "--paraphrases", "{para.json}"], "para.json", JSON_BREAKS),
    "debias eval sae": (EVAL + ["--methods", "sem_i", "--sae", "{sae}"], "sae/sae.safetensors", BINARY_BREAKS),
    "comca build-cache attributes": (BUILD, "attrs.txt", TEXT_BREAKS),
    "comca build-cache objects": (BUILD + ["--objects", "{objs.txt}"], "objs.txt", TEXT_BREAKS),
    "comca build-cache json compatibility": (
        BUILD + ["--objects", "{objs.txt}", "--compatibility", "{compat.json}"],
        "compat.json",
        JSON_BREAKS,
    ),
    "comca build-cache csv compatibility": (
        BUILD + ["--objects", "{objs.txt}", "--compatibility", "{compat.csv}"],
        "compat.csv",
        TEXT_BREAKS,
    ),
    "comca build-cache index.json": (BUILD, "index/index.json", JSON_BREAKS),
    "comca build-cache index.faiss": (BUILD, "index/index.faiss", BINARY_BREAKS),
    "comca build-cache items.jsonl": (BUILD, "index/items.jsonl", ("missing", "empty", "truncated", "json list")),
    "comca eval cache.json": (
        ["comca", "eval", "-m", MODEL, "--cache", "{cache}", "--dataset", "{data.jsonl}"],
        "cache/cache.json",
        JSON_BREAKS,
    ),
    "comca eval cache.npz": (
        ["comca", "eval", "-m", MODEL, "--cache", "{cache}", "--dataset", "{data.jsonl}"],
        "cache/cache.npz",
        BINARY_BREAKS,
    ),
    "comca eval cache folder": (["comca", "eval", "-m", MODEL, "--cache", "{cache}", "--dataset", "{data.jsonl}"], "cache", ("missing",)),
    "comca bench attributes": (
        ["comca", "bench", "-m", MODEL, "--pool", "50", "--n", "20", "--attributes", "{attrs.txt}"],
        "attrs.txt",
        TEXT_BREAKS,
    ),
    "index search index.json": (["index", "search", "--index", "{index}", "--text", "red"], "index/index.json", JSON_BREAKS),
    "index search index.faiss": (["index", "search", "--index", "{index}", "--text", "red"], "index/index.faiss", BINARY_BREAKS),
    "index search items.jsonl": (
        ["index", "search", "--index", "{index}", "--text", "red"],
        "index/items.jsonl",
        ("missing", "truncated", "json list"),
    ),
    "index search image query": (
        ["index", "search", "--index", "{index}", "--image", "{img/red0.png}"],
        "img/red0.png",
        ("missing", "empty", "truncated"),
    ),
}

PARAMS = [(case, kind) for case, (_, _, kinds) in sorted(CASES.items()) for kind in kinds]


def _prepare(valid: Path, tmp_path: Path, case: str, kind: str) -> tuple[list[str], Path | None]:
    args, target, _ = CASES[case]
    work = tmp_path / "in"
    shutil.copytree(valid, work)
    if target.endswith(".pth"):  # an official SEM checkpoint, written on demand
        import torch

        from vlmkit.debias.sae import MatryoshkaSAE

        sae = MatryoshkaSAE.load(work / "sae")
        state = {("bpre" if k == "b_pre" else k): v for k, v in sae.state_dict().items()}
        torch.save(state, work / target)
    BREAKS[kind](work / target)
    filled = _fill(args, work)
    has_out = args[0] != "index" or args[1] != "search"
    out = tmp_path / "out"
    return (filled + (["--out", str(out)] if has_out else [])), (out if has_out else None)


def _fill(args: list[str], work: Path) -> list[str]:
    """Replace ``{relative/path}`` in each argument by that path under ``work``."""
    import re

    return [re.sub(r"\{([^}]+)\}", lambda m: str(work / m.group(1)), a) for a in args]


@pytest.mark.parametrize(("case", "kind"), PARAMS, ids=[f"{c}-{k}" for c, k in PARAMS])
def test_a_broken_file_is_one_line_exit_2_and_nothing_written(valid, tmp_path, capsys, case, kind):
    args, out = _prepare(valid, tmp_path, case, kind)
    code = run_cli(args)
    err = capsys.readouterr().err.strip()
    assert code == 2, f"exit {code}; stderr: {err[-400:]}"
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err, err
    target = tmp_path / "in" / CASES[case][1]
    named = target.name in err or re.search(re.escape(str(target.parent)) + r"(?![/\w.-])", err) is not None
    assert named, f"the message does not name {target} (or its own folder): {err}"
    if out is not None:
        assert not out.exists(), sorted(p.name for p in out.rglob("*"))


# ---- the cases the issue lists, beyond missing/empty/truncated/wrong type ------------------

def _write(path: Path, text: str) -> None:
    path.write_text(text)


SPECIFIC = {
    "compatibility score that is not a number": (
        BUILD + ["--objects", "{objs.txt}", "--compatibility", "{compat.json}"],
        lambda w: _write(w / "compat.json", json.dumps({"red": {"thing": "very"}})),
        "compat.json has the wrong shape",
    ),
    "compatibility CSV score that is not a number": (
        BUILD + ["--objects", "{objs.txt}", "--compatibility", "{compat.csv}"],
        lambda w: _write(w / "compat.csv", "attribute,object,score\nred,thing,high\n"),
        "is not a number",
    ),
    "compatibility CSV without its header": (
        BUILD + ["--objects", "{objs.txt}", "--compatibility", "{compat.csv}"],
        lambda w: _write(w / "compat.csv", "red,thing,1\n"),
        "needs a header attribute,object,score",
    ),
    "paraphrases mapping a query to a plain string": (
        ENC + ["--method", "sem_i", "--sae", "{sae}", "--paraphrases", "{para.json}"],
        lambda w: _write(w / "para.json", json.dumps({"a red thing": "a red object", "a blue thing": ["x"]})),
        "valid list",
    ),
    "paraphrases as a list": (
        ENC + ["--method", "sem_i", "--sae", "{sae}", "--paraphrases", "{para.json}"],
        lambda w: _write(w / "para.json", json.dumps([["a red object"]])),
        "holds a list, not an object",
    ),
    "neutral prompts naming a missing file": (
        ENC + ["--method", "none", "--neutral", "{neutral.txt}"],
        lambda w: (w / "neutral.txt").unlink(),
        "neutral prompt file not found",
    ),
    "SAE tensors that do not match sae.json": (
        ENC + ["--method", "sem_i", "--sae", "{sae}", "--paraphrases", "{para.json}"],
        lambda w: _write(w / "sae" / "sae.json", json.dumps({**json.loads((w / "sae" / "sae.json").read_text()), "latents": 64})),
        "does not match",
    ),
    "model config.json that is not JSON": (
        ZS[:2] + ["{model}"] + ZS[3:],
        lambda w: _write(w / "model" / "config.json", "{model_type: clip"),
        "is not valid JSON",
    ),
    "index folder without index.faiss": (
        ["index", "search", "--index", "{index}", "--text", "red"],
        lambda w: (w / "index" / "index.faiss").unlink(),
        "index file not found",
    ),
    "index whose items do not match its vectors": (
        ["index", "search", "--index", "{index}", "--text", "red"],
        lambda w: _write(w / "index" / "items.jsonl", (w / "index" / "items.jsonl").read_text().splitlines()[0] + "\n"),
        "is inconsistent",
    ),
    "ComCa cache folder without cache.json": (
        ["comca", "eval", "-m", MODEL, "--cache", "{cache}", "--dataset", "{data.jsonl}"],
        lambda w: (w / "cache" / "cache.json").unlink(),
        "ComCa cache record not found",
    ),
    "image mean over a dataset whose every image is unreadable": (
        ["sith", "-m", MODEL, "--layers", "all", "--vocab", "world", "--image-mean", "{data.jsonl}", "--no-coherence"],
        lambda w: [p.write_bytes(b"not a png") for p in (w / "img").iterdir()],
        "none of its 6 images could be read",
    ),
    "an SAE path that is neither a folder nor a checkpoint": (
        ["sae", "eval", "-m", MODEL, "--sae", "{nowhere}", "--texts", "{texts.txt}"],
        lambda w: None,
        "SAE not found",
    ),
}


@pytest.mark.parametrize("case", sorted(SPECIFIC))
def test_the_reported_bad_files(valid, tmp_path, capsys, case):
    args, breaker, message = SPECIFIC[case]
    work = tmp_path / "in"
    shutil.copytree(valid, work)
    breaker(work)
    filled = _fill(args, work)
    out = tmp_path / "out"
    has_out = args[:2] != ["index", "search"]
    code = run_cli(filled + (["--out", str(out)] if has_out else []))
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("error: ") and "\n" not in err and "Traceback" not in err, err
    assert message in err, err
    assert not out.exists()


@pytest.mark.parametrize("mode", ["L", "P", "LA", "RGBA", "I;16", "CMYK", "1"])
def test_preprocess_takes_any_pil_mode(clip_tiny, mode):
    import numpy as np
    from PIL import Image

    rgb = Image.fromarray(np.random.default_rng(0).integers(0, 255, (30, 40, 3), dtype=np.uint8))
    image = rgb.convert("P") if mode == "P" else rgb.convert("L").convert(mode) if mode in ("LA", "I;16", "1") else rgb.convert(mode)
    pixels = clip_tiny.preprocess(image)
    assert pixels.shape == (3, clip_tiny.preprocess.output_size, clip_tiny.preprocess.output_size)
    batch = clip_tiny.preprocess.batch([image, rgb])
    assert batch.shape[0] == 2 and bool(batch.isfinite().all())


def _layout(root: Path, fmt: str) -> str:
    """A published dataset's folder with one broken label file; returns the file's name."""
    (root / "val2017").mkdir(parents=True, exist_ok=True)
    broken = {
        "waterbirds": ("metadata.csv", "img_filename,y,split,place\nbird.jpg,seven,2,0\n"),
        "fairface": ("fairface_label_val.csv", "file,age\nval/1.jpg,20-29\n"),
        "celeba": ("list_attr_celeba.txt", "\xff\xfe"),
        "ovad": ("ovad2000.json", json.dumps({"images": [], "annotations": [{"id": 1}], "attributes": []})),
        "vaw": ("test.json", json.dumps({"instances": []})),
    }[fmt]
    (root / "list_eval_partition.txt").write_text("1.jpg 2\n")
    if fmt == "celeba":
        (root / broken[0]).write_bytes(b"\xff\xfe\x00")
    else:
        (root / broken[0]).write_text(broken[1])
    return broken[0]


@pytest.mark.parametrize("fmt", ["waterbirds", "fairface", "celeba", "ovad", "vaw"])
def test_published_label_files_that_are_broken_are_one_line(tmp_path, fmt):
    from vlmkit.data.datasets import load_dataset
    from vlmkit.errors import UserError

    name = _layout(tmp_path, fmt)
    with pytest.raises(UserError) as info:
        load_dataset(f"{fmt}:{tmp_path}")
    message = str(info.value)
    assert name in message and "\n" not in message
