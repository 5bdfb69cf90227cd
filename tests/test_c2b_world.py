"""C2B end to end on the shapes world, against planted biases: a synthetic classifier whose
accuracy we set per background, and the shipped ``embedded-biased`` (shape tied to background).
Also the classifier specs and the CLI's one-line errors."""

import json
from pathlib import Path

import numpy as np
import pytest

from vlmkit.audit.c2b import audit
from vlmkit.audit.classifiers import load_classifier
from vlmkit.audit.evaluate import ground_truth_biases, hit_miss
from vlmkit.audit.scores import ScoreSettings, detected_biases
from vlmkit.data import world as w
from vlmkit.errors import UserError
from vlmkit.models import load_model

SHAPES = list(w.SHAPES)


@pytest.fixture(scope="module")
def pool(tmp_path_factory):
    """A balanced captioned world of 360 images and its index built with ``embedded``."""
    from vlmkit.data.datasets import read_manifest
    from vlmkit.data.world_sample import generate
    from vlmkit.retrieval.index import build_index

    root = tmp_path_factory.mktemp("c2b-pool")
    dataset = read_manifest(generate(root / "pool", 360, 7))
    model = load_model("embedded")
    index = build_index(model, dataset, model_spec="embedded")
    index.save(root / "index")
    truth = {str(Path(s.path).resolve()): s for s in dataset.samples}
    return {"root": root, "index": index, "model": model, "truth": truth, "dataset": dataset}


def black_hurts(truth):
    """Right about the shape except on a black background, where it names the next shape."""
    def classify(paths):
        out = []
        for path in paths:
            sample = truth[str(Path(path).resolve())]
            shape = sample.label
            out.append(SHAPES[(SHAPES.index(shape) + 1) % len(SHAPES)] if sample.attributes["background"] == "black" else shape)
        return out

    return classify


@pytest.mark.slow
def test_a_planted_background_bias_is_found_and_scored_as_a_hit(pool):
    classifier = black_hurts(pool["truth"])
    proposals = {s: {"background": list(w.BACKGROUNDS), "size": ["small", "large"]} for s in SHAPES}
    result = audit(classifier, proposals, pool["index"], pool["model"], template="a {target} on a {bias} background", k=8,
                   templates={"size": "a {bias} {target}"}, settings=ScoreSettings(min_n=4))
    assert result.ranking[0]["attribute"] == "background"
    black = [r for r in result.ranking[0]["classes"] if r["name"] == "black"]
    assert len(black) == 6 and all(r["phi"] < -0.5 for r in black)
    assert result.ranking[1]["score"] < 0.5 * result.ranking[0]["score"]
    # ground truth from the labelled pool itself: every shape is hurt by black
    samples = pool["dataset"].samples
    labels = [s.label for s in samples]
    predictions = classifier([str(s.path) for s in samples])
    _, truth = ground_truth_biases(
        labels, predictions, [{"background": s.attributes["background"], "size": s.attributes["size"]} for s in samples]
    )
    assert {(t["target"], t["bias"]) for t in truth if t["phi"] < 0 and t["attribute"] == "background"} == {(s, "black") for s in SHAPES}
    detected = detected_biases(result.ranking)
    background = [t for t in truth if t["attribute"] == "background"]
    counts = hit_miss([d for d in detected if d["attribute"] == "background"], background)
    assert counts["hit"] >= 6 and counts["false_hit"] <= 1 and counts["recall"] >= 0.5
    print(counts, hit_miss(detected, truth))
    groups = result.groups_table()
    assert all(g["n"] <= 8 for g in groups)
    for block in {(g["target"], g["attribute"]) for g in groups}:  # an image stays in one class of a (target, attribute)
        paths = [p for g in groups if (g["target"], g["attribute"]) == block for p in g["paths"]]
        assert len(paths) == len(set(paths))


@pytest.mark.slow
def test_embedded_biased_ranks_background_first_with_the_planted_signs(pool):
    from vlmkit.data.templates import resolve_templates

    classifier = load_classifier("zeroshot:embedded-biased", SHAPES, templates=resolve_templates(["world-shape"]))
    proposals = {s: {"background": list(w.BACKGROUNDS), "texture": list(w.TEXTURES), "size": list(w.SIZES)} for s in SHAPES}
    result = audit(classifier, proposals, pool["index"], pool["model"], k=8, settings=ScoreSettings(min_n=4))
    assert result.ranking[0]["attribute"] == "background"
    knob = w.Spurious()
    paired = [r for r in result.ranking[0]["classes"] if r["name"] == knob.paired(r["target"])]
    assert sum(r["phi"] > 0 for r in paired) >= 5


def test_probe_round_trip_and_classifier(tmp_path, colour_folder):
    from vlmkit.audit.probe import LinearProbe, fit_probe
    from vlmkit.embed import embed_images

    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(0, 0.1, (20, 4)) + [1, 0, 0, 0], rng.normal(0, 0.1, (20, 4)) + [0, 1, 0, 0]])
    probe = fit_probe(x, ["a"] * 20 + ["b"] * 20, "random:clip-tiny")
    assert probe.predict(x) == ["a"] * 20 + ["b"] * 20
    loaded = LinearProbe.load(probe.save(tmp_path / "p.safetensors"))
    np.testing.assert_array_equal(loaded.weight, probe.weight) and loaded.classes == ["a", "b"]

    model = load_model("random:clip-tiny")
    paths = sorted(str(p) for p in colour_folder.rglob("*.png"))
    names = [Path(p).parent.name for p in paths]
    fit_probe(embed_images(model, paths).vectors, names, "random:clip-tiny", l2=1e-5).save(tmp_path / "colour.safetensors")
    classifier = load_classifier(f"probe:{tmp_path / 'colour.safetensors'}", sorted(set(names)))
    assert classifier.predict(paths) == names  # a probe fits its own training set of 9 separable images
    (tmp_path / "junk.safetensors").write_bytes(b"not a probe")
    with pytest.raises(UserError):
        load_classifier(f"probe:{tmp_path / 'junk.safetensors'}", ["a"])


def test_hf_image_classification_checkpoint(tmp_path, colour_folder):
    from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessor

    config = ViTConfig(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
                       num_labels=3, id2label={0: "blue", 1: "green", 2: "red"}, label2id={"blue": 0, "green": 1, "red": 2})
    ViTForImageClassification(config).save_pretrained(tmp_path / "vit")
    ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(tmp_path / "vit")
    classifier = load_classifier(f"hf:{tmp_path / 'vit'}", ["red", "green"])
    predictions = classifier.predict(sorted(str(p) for p in colour_folder.rglob("*.png")))
    assert len(predictions) == 9 and set(predictions) <= {"blue", "green", "red"} and classifier.classes == ["blue", "green", "red"]


@pytest.mark.parametrize("spec", ["nonsense", "zeroshot:", "tree:x", "hf:/no/such/dir"])
def test_bad_classifier_specs_are_one_line(spec):
    with pytest.raises(UserError) as info:
        load_classifier(spec, ["a", "b"])
    assert "\n" not in str(info.value)


def run_cli(*args) -> int:
    from vlmkit.cli.main import main

    try:
        main([str(a) for a in args])
    except SystemExit as exc:
        return exc.code or 0
    return 0


@pytest.mark.slow
def test_cli_writes_the_ranking_and_a_report_with_images(pool, tmp_path):
    proposals = tmp_path / "proposals.json"
    proposals.write_text(json.dumps({"background": ["black", "white", "gray"], "size": ["small", "large"]}))
    out = tmp_path / "run"
    code = run_cli(
        "c2b",
        "run",
        "--classifier",
        "zeroshot:embedded-biased",
        "--task",
        "classify the shape of the object",
        "--classes",
        ",".join(SHAPES),
        "--index",
        pool["root"] / "index",
        "--proposals",
        proposals,
        "--prompts",
        "world-shape",
        "-k",
        "6",
        "--min-n",
        "3",
        "--out",
        out,
        "--pool-labels",
        pool["root"] / "pool" / "manifest.jsonl",
        "--target-attribute",
        "shape",
    )
    assert code == 0
    result = json.loads((out / "result.json").read_text())
    scores = [e["score"] for e in result["ranking"] if e["score"] is not None]
    assert scores == sorted(scores, reverse=True) and {"attribute", "score", "classes"} <= set(result["ranking"][0])
    assert {"name", "phi", "n", "target"} <= set(result["ranking"][0]["classes"][0])
    assert result["retrieval_precision"]["n"] > 0 and json.loads((out / "proposals.json").read_text())["circle"]["size"] == [
        "small",
        "large",
    ]
    assert "data:image/jpeg;base64" in (out / "report.html").read_text()


def test_cli_errors_are_one_line_and_leave_no_output(tmp_path, capsys):
    proposals = tmp_path / "p.json"
    proposals.write_text(json.dumps({"background": ["black", "white"]}))
    base = ["c2b", "run", "--classifier", "zeroshot:embedded", "--task", "t", "--classes", "a,b", "--out", tmp_path / "out"]
    for extra, message in (
        (["--index", tmp_path / "none", "--proposals", proposals, "--llm", "smollm2-135m"], "exactly one of --llm"),
        (["--index", tmp_path / "none", "--proposals", proposals], "no index"),
        (["--index", tmp_path, "--proposals", proposals, "--template", "a {target}"], "{bias}"),
    ):
        capsys.readouterr()
        assert run_cli(*base, *extra) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1
        assert not (tmp_path / "out").exists()


def test_cli_reports_an_llm_that_never_gives_valid_json(colour_folder, tmp_path, capsys):
    assert run_cli("index", "build", "--model", "random:clip-tiny", "--dataset", colour_folder, "--out", tmp_path / "index") == 0
    capsys.readouterr()
    out = tmp_path / "out"
    code = run_cli("c2b", "run", "--classifier", "zeroshot:random:clip-tiny", "--task", "classify colours", "--classes", "red,green",
                   "--index", tmp_path / "index", "--llm", "random:llama-tiny", "--retries", "1", "--out", out)
    err = capsys.readouterr().err.strip()
    assert code == 2 and "no valid bias proposal" in err and len(err.splitlines()) == 1 and not out.exists()


def test_cli_trains_a_probe_the_audit_can_load(colour_folder, tmp_path):
    out = tmp_path / "probe"
    assert run_cli("c2b", "train-probe", "--model", "random:clip-tiny", "--dataset", colour_folder, "--l2", "1e-5", "--out", out) == 0
    result = json.loads((out / "result.json").read_text())
    assert result["classes"] == ["blue", "green", "red"] and result["n"] == 9 and result["train_accuracy"] == 1.0
    assert load_classifier(f"probe:{out / 'probe.safetensors'}", ["red"]).classes == ["blue", "green", "red"]
    assert (
        run_cli("c2b", "train-probe", "--model", "random:clip-tiny", "--dataset", colour_folder, "--l2", "-1", "--out", tmp_path / "bad")
        == 2
    )
    assert not (tmp_path / "bad").exists()


def test_a_probe_on_an_attribute_the_dataset_lacks_names_the_ones_it_has(tmp_path, capsys):
    from vlmkit.data.world_sample import generate

    manifest = generate(tmp_path / "w", 6, 0)
    code = run_cli("c2b", "train-probe", "--model", "random:clip-tiny", "--dataset", manifest, "--attribute", "nope",
                   "--out", tmp_path / "p")
    err = capsys.readouterr().err.strip()
    assert code == 2 and "has no attribute 'nope'; its images have: " in err and "shape" in err and not (tmp_path / "p").exists()
