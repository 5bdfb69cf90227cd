"""Batched embedding with the on-disk cache: hits, invalidation, resumption, bad images."""

import numpy as np
import pytest
import torch

from tests.conftest import write_image
from vlmkit.data.datasets import load_dataset
from vlmkit.embed import embed_images, embed_texts
from vlmkit.errors import DatasetError
from vlmkit.runs.cache import EmbeddingCache


def test_images_match_direct_encoding_and_cache_is_reused(clip_tiny, colour_folder, tmp_path):
    from vlmkit.data.images import load_image

    paths = load_dataset(colour_folder).paths
    cache = EmbeddingCache(tmp_path / "c")
    first = embed_images(clip_tiny, paths, batch_size=4, cache=cache)
    direct = clip_tiny.encode_images(clip_tiny.preprocess.batch([load_image(p) for p in paths])).numpy()
    assert np.allclose(first.vectors, direct, atol=1e-5)
    assert first.computed_chunks == 1 and first.cached_chunks == 0
    second = embed_images(clip_tiny, paths, batch_size=4, cache=cache)
    assert second.computed_chunks == 0 and second.cached_chunks == 1
    assert np.array_equal(first.vectors, second.vectors)


def test_changing_a_file_or_the_weights_invalidates(clip_tiny, colour_folder, tmp_path, monkeypatch):
    import vlmkit.embed as embed

    monkeypatch.setattr(embed, "CHUNK", 3)
    paths = load_dataset(colour_folder).paths
    cache = EmbeddingCache(tmp_path / "c")
    embed_images(clip_tiny, paths, cache=cache)
    write_image(paths[4], (0, 0, 0))
    again = embed_images(clip_tiny, paths, cache=cache)
    assert (again.cached_chunks, again.computed_chunks) == (2, 1)
    other = __import__("vlmkit.models", fromlist=["load_model"]).load_model("random:clip-tiny@5")
    assert embed_images(other, paths, cache=cache).computed_chunks == 3


def test_bad_images_stop_or_are_skipped(clip_tiny, colour_folder, tmp_path):
    paths = load_dataset(colour_folder).paths
    paths[1].write_bytes(b"broken")
    with pytest.raises(DatasetError, match="cannot read image"):
        embed_images(clip_tiny, paths)
    result = embed_images(clip_tiny, paths + [tmp_path / "missing.png"], skip_bad=True)
    assert [i for i, _, _ in result.failed] == [1, 9]
    assert list(result.indices) == [0, *range(2, 9)]
    assert result.vectors.shape == (8, clip_tiny.embed_dim)


def test_texts(clip_tiny, tmp_path):
    texts = ["a red circle", "a blue square", "a red circle"]
    result = embed_texts(clip_tiny, texts, cache=EmbeddingCache(tmp_path))
    assert np.allclose(result.vectors, clip_tiny.encode_texts(texts).numpy(), atol=1e-6)
    assert np.array_equal(result.vectors[0], result.vectors[2])


def test_interrupted_run_resumes_from_finished_chunks(clip_tiny, tmp_path, monkeypatch):
    import vlmkit.embed as embed

    monkeypatch.setattr(embed, "CHUNK", 2)
    texts = [f"text {i}" for i in range(6)]
    cache = EmbeddingCache(tmp_path)
    calls = {"n": 0}
    original = clip_tiny.encode_texts

    def flaky(batch, normalize=True):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return original(batch, normalize)

    monkeypatch.setattr(clip_tiny, "encode_texts", flaky)
    with pytest.raises(KeyboardInterrupt):
        embed_texts(clip_tiny, texts, cache=cache)
    monkeypatch.setattr(clip_tiny, "encode_texts", original)
    resumed = embed_texts(clip_tiny, texts, cache=cache)
    assert (resumed.cached_chunks, resumed.computed_chunks) == (2, 1)
    assert torch.allclose(torch.from_numpy(resumed.vectors), original(texts), atol=1e-6)
