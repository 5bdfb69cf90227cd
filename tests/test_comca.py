"""ComCa's soft labels and inference on small hand-computed cases."""

import numpy as np
import pytest

from vlmkit.attributes.comca import (
    Cache,
    ComCaConfig,
    comca_scores,
    normalise_scores,
    retrieval_query,
    soft_labels,
)
from vlmkit.attributes.prior import Term


def test_retrieval_query_joins_synonyms():
    assert retrieval_query(Term("car", ("car", "automobile")),
                           Term("striped", ("striped", "stripy"))) == "a photo of car that is striped or stripy"


def test_soft_labels_by_hand():
    keys = np.array([[1.0, 0.0], [0.0, 1.0]])
    t_a = np.array([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]])
    cfg = ComCaConfig()
    values = soft_labels(keys, np.array([0, 2]), t_a, cfg)
    raw = 0.6 * keys @ t_a.T + 0.4 * np.eye(3)[[0, 2]]  # row 0: (1.0, .36, 0); row 1: (0, .48, 1.0)
    expected = (raw - raw.mean(1, keepdims=True)) / raw.std(1, keepdims=True) * 0.0438 + 0.2064
    assert np.allclose(values, expected)
    assert np.allclose(values.mean(1), 0.2064) and np.allclose(values.std(1), 0.0438)


def test_inference_formula_by_hand():
    x = np.array([[1.0, 0.0]])
    z = np.array([[0.3, 0.2]])
    cache = Cache(keys=np.array([[1.0, 0.0], [0.0, 1.0]]), values=np.array([[0.25, 0.15], [0.18, 0.22]]), source=np.array([0, 1]))
    cfg = ComCaConfig()
    # affinity = exp(-(1 - (1, 0))) = (1, e^-1); c = (0.25 + 0.18/e, 0.15 + 0.22/e)
    c = np.array([0.25 + 0.18 / np.e, 0.15 + 0.22 / np.e])
    g = z[0] + 1.17 * c
    expected = np.exp(g / g.max()) / np.exp(g / g.max()).sum()
    assert np.allclose(comca_scores(x, z, cache, cfg)[0], expected)
    assert np.allclose(comca_scores(x, z, None, cfg), normalise_scores(z))
    assert normalise_scores(np.array([[1.0, 1.0]])) == pytest.approx(np.array([[0.5, 0.5]]))


@pytest.mark.parametrize("shift", [0.0, -0.5, -3.0, 2.0])
def test_normalised_scores_keep_each_rows_ranking_even_when_its_best_score_is_negative(shift):
    g = np.array([[0.3, 0.1, 0.2, -0.4], [0.05, 0.9, -0.2, 0.0]]) + shift
    f = normalise_scores(g)
    assert np.allclose(f.sum(1), 1)
    for row_g, row_f in zip(g, f, strict=True):
        assert list(np.argsort(-row_f, kind="stable")) == list(np.argsort(-row_g, kind="stable"))
    if shift < -1:  # every score negative: the row is scaled by |max g|, the official rule's temperature
        top = np.abs(g.max(1, keepdims=True))
        assert np.allclose(f, np.exp(g / top) / np.exp(g / top).sum(1, keepdims=True))


def test_build_cache_retrieves_unique_images_per_attribute(tmp_path, clip_tiny):
    from vlmkit.attributes.comca import build_cache
    from vlmkit.attributes.prior import parse_terms
    from vlmkit.data.datasets import load_dataset
    from vlmkit.data.world_sample import generate
    from vlmkit.retrieval.index import build_index

    dataset = load_dataset(generate(tmp_path / "pool", 60, seed=5))
    index = build_index(clip_tiny, dataset, model_spec="random:clip-tiny")
    attributes = parse_terms(["red", "striped:striped/stripy"])
    objects = parse_terms(["circle", "square", "star"])
    pi = np.array([[3.0, 1.0, 0.0], [0.0, 0.0, 0.0]])  # the second attribute falls back to uniform sampling
    cfg = ComCaConfig(k=4, overfetch=20)
    cache = build_cache(index, clip_tiny, clip_tiny, attributes, objects, pi, cfg)
    assert cache.keys.shape == (8, clip_tiny.embed_dim) and cache.values.shape == (8, 2)
    assert cache.source.tolist() == [0] * 4 + [1] * 4 and len(set(cache.paths)) == 8
    assert all(q.startswith("a photo of circle that is red") or q.startswith("a photo of square that is red") for q in cache.queries[:4])
    assert cache.paths == build_cache(index, clip_tiny, clip_tiny, attributes, objects, pi, cfg).paths  # seeded
    plain = build_cache(index, clip_tiny, clip_tiny, attributes, None, None, cfg)
    assert plain.queries[0] == "a photo of something that is red" and len(set(plain.paths)) == 8
    tiny = build_cache(index, clip_tiny, clip_tiny, attributes, objects, pi, ComCaConfig(k=40, overfetch=40))
    assert tiny.log and "over-fetch exhausted" in tiny.log[0]
    given = build_cache(index, clip_tiny, clip_tiny, attributes, objects, pi, cfg, sampled=np.array([[2, 2, 0, 1], [1, 1, 1, 1]]))
    assert [q.split(" that")[0] for q in given.queries] == ["a photo of " + o for o in ["star"] * 2 + ["circle", "square"] + ["square"] * 4]


def test_world_rules_hold_and_the_bench_runs(tmp_path):
    import json
    from collections import Counter

    from vlmkit.attributes.world_bench import GROUPS, IMPOSSIBLE, compatibility, scenes
    from vlmkit.cli.main import main

    drawn = scenes(600, 3)
    combos = Counter((s.objects[0].shape, getattr(s.objects[0], g)) for s, _ in drawn for g in GROUPS)
    assert not any(combos[c] for c in IMPOSSIBLE)
    assert combos[("triangle", "red")] < combos[("triangle", "blue")] / 3  # rare
    assert (compatibility() == 0).sum() == len(IMPOSSIBLE)
    out = tmp_path / "bench"
    main(["comca", "bench", "--model", "random:clip-tiny", "--pool", "60", "--n", "30", "--k", "2", "--out", str(out)])
    result = json.loads((out / "result.json").read_text())
    assert set(result["table"]) == {"zero-shot", "retrieval cache", "ComCa", "ComCa (co-occurrence only)", "ComCa (compatibility only)"}
    assert all(0 <= row["mAP"] <= 1 for row in result["table"].values())
    assert result["cooccurrence"]["blue"]["star"] == 0  # no caption pairs an impossible combination


def test_build_cache_and_eval_cli(tmp_path, clip_tiny):
    import json

    from vlmkit.attributes.world_bench import GROUPS, attribute_terms, write_split
    from vlmkit.cli.main import main

    pool = write_split(tmp_path / "pool", 60, 2, labelled=False)
    labelled = write_split(tmp_path / "eval", 30, 3, labelled=True)
    names = [t.name for t in attribute_terms()]
    rows = [json.loads(line) for line in labelled.read_text().splitlines()]
    eval_manifest = tmp_path / "eval" / "labels.jsonl"
    eval_manifest.write_text("".join(
        json.dumps({"path": r["path"], "attributes": {n: int(n in {r["attributes"][g] for g in GROUPS}) for n in names}}) + "\n"
        for r in rows))
    (tmp_path / "attrs.txt").write_text("\n".join(["red", "blue", "striped", "small:small/little"]))
    (tmp_path / "objs.txt").write_text("\n".join(["circle:circle/disc", "square", "star"]))
    (tmp_path / "compat.csv").write_text("attribute,object,score\nblue,star,0\n")
    main(["index", "build", "--model", "random:clip-tiny", "--dataset", str(pool), "--out", str(tmp_path / "idx")])
    main(
        [
            "comca",
            "build-cache",
            "--model",
            "random:clip-tiny",
            "--attributes",
            str(tmp_path / "attrs.txt"),
            "--objects",
            str(tmp_path / "objs.txt"),
            "--compatibility",
            str(tmp_path / "compat.csv"),
            "--index",
            str(tmp_path / "idx"),
            "--k",
            "3",
            "--out",
            str(tmp_path / "cache"),
        ]
    )
    record = json.loads((tmp_path / "cache" / "cache.json").read_text())
    paths = record["paths"]
    assert len(set(paths)) == len(paths) and len(paths) + len(record["log"]) == 12  # a shortfall is logged per query
    assert not any("star that is blue" in q for q in record["queries"])  # compatibility 0 excludes the pair
    main(["comca", "eval", "--model", "random:clip-tiny", "--cache", str(tmp_path / "cache"), "--dataset", str(eval_manifest), "--out",
          str(tmp_path / "ev")])
    result = json.loads((tmp_path / "ev" / "result.json").read_text())
    assert set(result["table"]) == {"zero-shot", "comca"} and 0 <= result["table"]["comca"]["mAP"] <= 1
    from vlmkit.attributes.comca import load_cache

    ovad_cache, _, ovad_record = load_cache(tmp_path / "cache")
    assert ovad_record["protocol"] == "ovad" and np.allclose(ovad_cache.values.mean(1), 0.2064)
    main(
        [
            "comca",
            "build-cache",
            "--model",
            "random:clip-tiny",
            "--attributes",
            str(tmp_path / "attrs.txt"),
            "--index",
            str(tmp_path / "idx"),
            "--k",
            "3",
            "--protocol",
            "vaw",
            "--out",
            str(tmp_path / "vaw"),
        ]
    )
    vaw_cache, _, vaw_record = load_cache(tmp_path / "vaw")
    assert vaw_record["protocol"] == "vaw" and vaw_record["scalings"] == ["standardise", "softmax"] and vaw_record["overfetch"] == 256
    assert np.allclose(vaw_cache.values.sum(1), 1)  # VAW's row softmax after the standardisation


def test_vaw_values_are_a_row_softmax_after_standardising():
    keys = np.array([[1.0, 0.0], [0.0, 1.0]])
    t_a = np.array([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]])
    cfg = ComCaConfig.vaw()
    standard = soft_labels(keys, np.array([0, 2]), t_a, ComCaConfig())
    values = soft_labels(keys, np.array([0, 2]), t_a, cfg)
    expected = np.exp(7 * standard) / np.exp(7 * standard).sum(1, keepdims=True)
    assert cfg.overfetch == 256 and np.allclose(values, expected) and np.allclose(values.sum(1), 1)


def test_sigmoid_branch_by_hand():
    import torch

    from vlmkit.attributes.comca import sigmoid_scores

    x = np.array([[1.0, 0.0]])
    text = [torch.tensor([[1.0, 0.0], [0.0, 1.0]]), torch.tensor([[0.0, 1.0]])]  # attribute 0 averages two synonyms
    cache = Cache(keys=np.array([[1.0, 0.0]]), values=np.array([[0.3, 0.1]]), source=np.array([0]))
    b = np.array([1 / np.sqrt(2), 0.0])
    assert np.allclose(sigmoid_scores(x, text, None, ComCaConfig(), 10.0, -5.0)[0], 1 / (1 + np.exp(-(b * 10 - 5))))
    c = (1 / (1 + np.exp(-1.0))) * np.array([0.3, 0.1])
    logits = (b + 1.17 * c) * 10 - 5
    assert np.allclose(sigmoid_scores(x, text, cache, ComCaConfig(), 10.0, -5.0)[0], np.exp(logits) / np.exp(logits).sum())


def test_comca_eval_takes_the_sigmoid_branch_for_siglip(tmp_path):
    import json

    from vlmkit.attributes.world_bench import GROUPS, attribute_terms, write_split
    from vlmkit.cli.main import main

    pool = write_split(tmp_path / "pool", 40, 2, labelled=False)
    labelled = write_split(tmp_path / "eval", 20, 3, labelled=True)
    names = [t.name for t in attribute_terms()]
    rows = [json.loads(line) for line in labelled.read_text().splitlines()]
    manifest = tmp_path / "labels.jsonl"
    manifest.write_text("".join(
        json.dumps({"path": str(labelled.parent / r["path"]),
                    "attributes": {n: int(n in {r["attributes"][g] for g in GROUPS}) for n in names}}) + "\n"
        for r in rows))
    (tmp_path / "attrs.txt").write_text("red\nblue\nsmall\n")
    main(["index", "build", "--model", "random:siglip-tiny", "--dataset", str(pool), "--out", str(tmp_path / "idx")])
    main(["comca", "build-cache", "--model", "random:siglip-tiny", "--attributes", str(tmp_path / "attrs.txt"), "--index",
          str(tmp_path / "idx"), "--k", "2", "--out", str(tmp_path / "cache")])
    main(["comca", "eval", "--model", "random:siglip-tiny", "--cache", str(tmp_path / "cache"), "--dataset", str(manifest), "--out",
          str(tmp_path / "ev")])
    table = json.loads((tmp_path / "ev" / "result.json").read_text())["table"]
    assert set(table) == {"zero-shot", "retrieval"}


def test_bench_refuses_attributes_that_rename_the_world(tmp_path, capsys):
    from vlmkit.cli.main import main

    bad = tmp_path / "attrs.txt"
    bad.write_text("scarlet:crimson\n")
    with pytest.raises(SystemExit) as exit_info:
        main(["comca", "bench", "--model", "random:clip-tiny", "--pool", "50", "--n", "20", "--attributes", str(bad), "--out",
              str(tmp_path / "o")])
    assert exit_info.value.code == 2 and "must name the 14 world attributes" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()  # rejected before rendering, indexing or writing anything
