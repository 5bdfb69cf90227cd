"""The image index: exact search is brute force, saved indexes answer the same, duplicates go."""

import json
import shutil

import numpy as np
import pytest

from vlmkit.retrieval.index import ImageIndex, Item, make_index


def unit(rows, dim, seed=0):
    x = np.random.default_rng(seed).standard_normal((rows, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def as_index(vectors, kind="exact"):
    index, kind = make_index(vectors, kind)
    items = [Item(f"img{i}.png", f"digest{i}", None) for i in range(len(vectors))]
    return ImageIndex(index, items, {"kind": kind, "model": "x"})


def test_exact_search_is_brute_force_and_survives_a_reload(tmp_path):
    vectors, queries = unit(500, 32), unit(7, 32, seed=1)
    index = as_index(vectors)
    hits = index.search(queries, k=10, dedup=False)
    expected = np.argsort(-(queries @ vectors.T), axis=1)[:, :10]
    assert [[h.position for h in row] for row in hits] == expected.tolist()
    assert np.allclose([[h.score for h in row] for row in hits], np.take_along_axis(queries @ vectors.T, expected, 1), atol=1e-5)
    reloaded = ImageIndex.load(index.save(tmp_path / "idx"))
    assert [[(h.position, round(h.score, 5)) for h in row] for row in reloaded.search(queries, k=10, dedup=False)] == \
           [[(h.position, round(h.score, 5)) for h in row] for row in hits]


def test_duplicates_are_dropped():
    vectors = unit(50, 16)
    vectors[1] = vectors[0]  # a second copy of the same image embedding
    index = as_index(vectors)
    index.items[2].digest = index.items[3].digest = "same-file"
    query = vectors[[0]]
    positions = [h.position for h in index.search(query, k=5)[0]]
    assert positions[0] in (0, 1) and not {0, 1} <= set(positions)
    both = [h.position for h in index.search(vectors[[2]] + vectors[[3]], k=50)[0]]
    assert not {2, 3} <= set(both)
    assert len(index.search(query, k=5)[0]) == 5


def test_ivf_recall_on_clustered_data(tmp_path):
    rng = np.random.default_rng(0)
    centres = unit(50, 64, seed=3)
    vectors = centres[rng.integers(0, 50, 8000)] + 0.3 * unit(8000, 64, seed=4)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    queries = vectors[:50] + 0.05 * unit(50, 64, seed=5)
    exact = as_index(vectors).search(queries, k=10, dedup=False)
    approx_index = as_index(vectors, "ivf")
    assert approx_index.meta["kind"] == "ivf"
    approx = approx_index.search(queries, k=10, dedup=False)
    recall = np.mean([len({h.position for h in a} & {h.position for h in e}) / 10 for a, e in zip(approx, exact, strict=True)])
    assert recall > 0.9
    reloaded = ImageIndex.load(approx_index.save(tmp_path / "ivf"))
    assert [[h.position for h in row] for row in reloaded.search(queries, k=10,
                                                                 dedup=False)] == [[h.position for h in row] for row in approx]


def test_index_cli_build_and_search(tmp_path, capsys, colour_folder):
    from vlmkit.cli.main import main

    shutil.copy(colour_folder / "red" / "0.png", colour_folder / "red" / "copy.png")  # an exact duplicate file
    out = tmp_path / "idx"
    main(["index", "build", "--model", "random:clip-tiny", "--dataset", str(colour_folder), "--out", str(out)])
    meta = json.loads((out / "result.json").read_text())
    assert meta["items"] == 10 and meta["kind"] == "exact"
    capsys.readouterr()
    main(["index", "search", "--index", str(out), "--text", "a red square", "--image", str(colour_folder / "red" / "0.png"), "-k", "3",
          "--json"])
    results = json.loads(capsys.readouterr().out)
    image_hits = results[str(colour_folder / "red" / "0.png")]
    assert image_hits[0]["score"] == pytest.approx(1.0, abs=1e-5) and len(image_hits) == 3
    assert sum(h["path"].endswith(("red/0.png", "red/copy.png")) for h in image_hits) == 1  # the copy is deduplicated
    with pytest.raises(SystemExit) as exit_info:
        main(["index", "search", "--index", str(out), "--model", "random:clip-tiny@1", "--text", "x"])
    assert exit_info.value.code == 2 and "not the model that built this index" in capsys.readouterr().err
