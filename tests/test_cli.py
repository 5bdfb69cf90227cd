"""The CLI end to end, and every bad input: one line, exit code 2, no result.json."""

import json
import subprocess
import sys

import numpy as np
import pytest

from vlmkit.cli.main import main


def run_cli(*args) -> int:
    try:
        main([str(a) for a in args])
    except SystemExit as exc:
        return exc.code or 0
    return 0


def test_zeroshot_writes_the_three_files(colour_folder, tmp_path, capsys):
    out = tmp_path / "run"
    assert run_cli("zeroshot", "--model", "random:clip-tiny", "--dataset", colour_folder, "--out", out, "--templates", "ensemble") == 0
    result = json.loads((out / "result.json").read_text())
    assert result["n"] == 9 and result["classes"] == ["blue", "green", "red"]
    assert np.array(result["confusion_matrix"]).sum() == 9
    assert 0 <= result["accuracy"] <= 1 and set(result["per_class_accuracy"]) == set(result["classes"])
    run = json.loads((out / "run.json").read_text())
    assert run["config"]["model"] == "random:clip-tiny" and "torch" in run["versions"] and "total" in run["timings_s"]
    report = (out / "report.html").read_text()
    assert "<table" in report and "<svg" in report and "Misclassified images" in report  # accuracy bars, mistakes as thumbnails
    assert "result.json" in capsys.readouterr().out


def test_zeroshot_on_an_attribute_with_given_classes(colour_manifest, tmp_path):
    out = tmp_path / "run"
    code = run_cli("zeroshot", "-m", "random:clip-tiny", "--dataset", colour_manifest, "--attribute", "size", "--classes",
                   "small,large,huge", "--templates", "a {} thing", "-o", out)
    assert code == 0
    result = json.loads((out / "result.json").read_text())
    assert result["classes"] == ["small", "large", "huge"] and result["target"] == "size" and result["n"] == 6


def test_embed_images_and_texts(colour_folder, tmp_path):
    out = tmp_path / "img"
    assert run_cli("embed", "-m", "random:clip-tiny", "--dataset", colour_folder, "-o", out) == 0
    vectors = np.load(out / "embeddings.npy")
    index = [json.loads(line) for line in (out / "index.jsonl").read_text().splitlines()]
    assert vectors.shape == (9, 32) and len(index) == 9 and index[0]["label"] == "blue"
    texts = tmp_path / "t.txt"
    texts.write_text("a red circle\n\na blue square\n")
    assert run_cli("embed", "-m", "random:clip-tiny", "--texts", texts, "-o", tmp_path / "txt") == 0
    assert np.load(tmp_path / "txt" / "embeddings.npy").shape == (2, 32)


def test_skip_bad_images_lists_them(colour_folder, tmp_path):
    (colour_folder / "red" / "0.png").write_bytes(b"corrupt")
    out = tmp_path / "run"
    assert run_cli("zeroshot", "-m", "random:clip-tiny", "--dataset", colour_folder, "-o", out, "--skip-bad-images") == 0
    result = json.loads((out / "result.json").read_text())
    assert result["n"] == 8 and result["skipped_images"][0]["path"].endswith("red/0.png")


def test_models_lists_families(capsys):
    assert run_cli("models") == 0
    out = capsys.readouterr().out
    assert "random:clip-vit-l14" in out and "siglip" in out and "decomposition" in out


def _corrupt(folder, tmp_path):
    (folder / "red" / "0.png").write_bytes(b"corrupt")
    return ["--dataset", folder]


def _malformed(folder, tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"path": "a.png", "label": "x"}\n{oops\n')
    return ["--dataset", path]


def _empty(folder, tmp_path):
    (tmp_path / "empty").mkdir()
    return ["--dataset", tmp_path / "empty"]


BAD_INPUTS = {
    "missing dataset": (lambda f, t: ["--dataset", t / "nowhere"], "dataset not found"),
    "corrupt image": (_corrupt, "cannot read image"),
    "unknown model": (lambda f, t: ["--dataset", f, "--model", "clip-large-please"], "unknown model"),
    "empty dataset": (_empty, "has no images"),
    "malformed manifest line": (_malformed, "line 2 is not valid JSON"),
    "classes that do not cover the labels": (lambda f, t: ["--dataset", f, "--classes", "red,blue"], "green are not among --classes"),
    "a single class": (lambda f, t: ["--dataset", f, "--classes", "red"], "at least two classes"),
    "template without placeholder": (lambda f, t: ["--dataset", f, "--templates", "a photo"], "exactly one {}"),
    "missing template file": (lambda f, t: ["--dataset", f, "--templates", "prompts.txt"], "template file not found"),
    "unknown attribute": (lambda f, t: ["--dataset", f, "--attribute", "texture"], "no attribute 'texture'"),
    "bad batch size": (lambda f, t: ["--dataset", f, "--batch-size", "0"], "invalid --batch-size"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_is_one_line_exit_2_and_no_result(case, colour_folder, tmp_path, capsys):
    make_args, message = BAD_INPUTS[case]
    args = make_args(colour_folder, tmp_path)
    if "--model" not in args:
        args += ["--model", "random:clip-tiny"]
    out = tmp_path / "run"
    assert run_cli("zeroshot", *args, "--out", out) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err and "\n" not in err
    assert "Traceback" not in err
    assert not out.exists()  # nothing at all under --out


def test_embed_needs_exactly_one_input(tmp_path, capsys):
    assert run_cli("embed", "-m", "random:clip-tiny", "-o", tmp_path / "x") == 2
    assert "exactly one of --dataset" in capsys.readouterr().err


def test_console_script_exit_code(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "vlmkit.cli.main", "zeroshot", "--dataset", str(tmp_path / "none"), "--out", str(tmp_path / "o")],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("error: dataset not found") and "Traceback" not in proc.stderr


def test_usage_errors_exit_2_without_traceback(capsys):
    from vlmkit.cli.main import main

    with pytest.raises(SystemExit) as exit_info:
        main(["sith", "--no-such-option"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "No such option" in err and "Traceback" not in err


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err, err
    return err


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["embed", "--model", "random:clip-tiny", "--texts", "TEXTS", "--out", "FILE"], "is a file"),
        (["embed", "--model", "random:clip-tiny", "--texts", "TEXTS", "--out", ""], "--out was given an empty value"),
        (["embed", "--model", "random:clip-tiny", "--texts", "TEXTS", "--out="], "--out was given an empty value"),
        pytest.param(["embed", "--model", "random:clip-tiny", "--texts", "TEXTS", "--out", "/proc/vlmkit-out"], "cannot write under /proc",
                     marks=pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc is Linux's")),
        (["sft", "--model", "random:llava-tiny", "--data", "TEXTS", "--out", "FILE"], "is a file"),  # options outside RunOptions too
        (["world", "generate", "--n", "2", "--out", "LINK"], "is a broken link"),
        (["embed", "--model", "random:clip-tiny", "--texts", "TEXTS", "--out", "OUT", "--cache-dir", "FILE"], "invalid --cache-dir"),
        (["embed", "--model", "", "--texts", "TEXTS", "--out", "OUT"], "--model was given an empty value"),
        (["world", "generate", "--n", "4", "--seed", "-1", "--out", "OUT"],
         "'--seed': Input should be greater than or equal to 0 (see vlmkit world generate --help)"),
        (["embed", "--model", "random:clip-tiny", "--texts", "TEXTS", "--batch-size", "abc", "--out", "OUT"], "--batch-size"),
        (["edit", "--model", "embedded", "--vocab", "world", "--suppress", "red", "--factor", "nan", "--out", "OUT"], "invalid --factor"),
        (["edit", "--model", "embedded", "--vocab", "world", "--suppress", "", "--out", "OUT"], "needs at least one concept"),
        (["merge", "--method", "linear", "--models", "A,B", "--weights", "1,-1", "--out", "OUT"], "do not sum to 0"),
        (["merge", "--models", "A,B", "--base", "A", "--weights", "0.5,nan", "--out", "OUT"], "finite"),
        (["world", "eval-model", "--model", "embedded", "--spurious", "xyz", "--out", "OUT"], "invalid --spurious"),
        (["debias", "eval", "--model", "embedded", "--dataset", "A", "--attribute", "shape", "--sensitive", "background",
          "--methods", ",", "--out", "OUT"], "name each method once"),
        (["openworld", "run", "--model", "random:llava-tiny", "--dataset", "world:0", "--out", "OUT"], "at least 1"),
        (["sae", "train", "--model", "random:clip-tiny", "--texts", "TEXTS", "--latents", "8", "--k", "2,4", "--out", "OUT"],
         "at least 2 embeddings"),  # met after scratch files were written to OUT/work: still nothing left, no "resume"
        (["comca", "bench", "--pool", "60", "--k", "300", "--out", "OUT"], "lower --k"),  # it ran for minutes first
        (["c2b", "run", "--llm", "embedded-chat", "--llm-temperature", "-1", "--out", "OUT"], "'--llm-temperature'"),
        (["icl", "run", "--model", "random:llava-tiny", "--dataset", "world:8", "--pool", "world:20@train", "--shots", "100",
          "--out", "OUT"], "lower --shots"),
        (["index", "build", "--model", "embedded", "--dataset", "A", "--kind", "xyz", "--out", "OUT"], "'auto', 'exact' or 'ivf'"),
        (["dmo", "run", "--base", "A", "--experts", "a=A,b=B", "--eval", "TEXTS", "--grid", "5", "--out", "OUT"], "invalid --grid"),
        (["dmo", "run", "--base", "A", "--experts", "a=A,b=B", "--eval", "TEXTS", "--sft-lr", "-1", "--out", "OUT"], "invalid --sft-lr"),
    ],
    ids=["out-is-a-file", "out-empty", "out-equals-empty", "out-unwritable", "sft-out-is-a-file", "out-broken-link",
         "cache-dir-is-a-file", "model-empty", "seed-negative", "not-a-number", "nan-factor", "empty-suppress",
         "linear-weights-sum-0", "nan-weight", "bad-spurious", "no-method", "empty-world",
         "sae-one-text", "comca-k-above-pool", "c2b-temperature", "icl-shots-above-pool", "index-kind", "dmo-grid",
         "dmo-sft-lr"],
)
def test_bad_option_values_are_one_line_before_any_work(tmp_path, capsys, monkeypatch, args, says):
    monkeypatch.chdir(tmp_path)  # should a check regress, an empty --out would write here, not into the checkout
    (tmp_path / "texts.txt").write_text("a red square\n")
    (tmp_path / "afile").write_text("not a folder")
    (tmp_path / "link").symlink_to(tmp_path / "nowhere")
    values = {"TEXTS": tmp_path / "texts.txt", "FILE": tmp_path / "afile", "OUT": tmp_path / "out", "A": tmp_path, "B": tmp_path,
              "LINK": tmp_path / "link"}
    assert run_cli(*[values.get(a, a) for a in args]) == 2
    assert says in _one_error_line(capsys)
    assert not (tmp_path / "out").exists() and (tmp_path / "afile").read_text() == "not a folder"


@pytest.mark.parametrize("device", ["gpu", "cuda:x"] + ([] if __import__("torch").cuda.is_available() else ["cuda"]))
def test_chat_models_check_the_device_like_every_command(capsys, device):
    """``vlmkit chat`` (like ``sft``) loads its chat model outside the run options: the device is checked there too."""
    assert run_cli("chat", "what is it ?", "--model", "random:llava-tiny", "--device", device) == 2
    assert "--device" in _one_error_line(capsys)


def test_progress_is_silent_when_stderr_is_not_a_terminal(capsys, monkeypatch):
    """A progress bar on a pipe or a log file drew nothing but left an empty line before the error."""
    from vlmkit.runs.progress import track

    monkeypatch.setenv("VLMKIT_PROGRESS", "1")  # the tests' default is 0
    for forcing in ("FORCE_COLOR", "TTY_COMPATIBLE", "FORCE_TERMINAL"):
        monkeypatch.delenv(forcing, raising=False)

    assert list(track(range(5), "working")) == [0, 1, 2, 3, 4]
    assert capsys.readouterr().err == ""
