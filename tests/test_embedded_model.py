"""The shipped checkpoints load offline and see fresh shapes-world images correctly."""

import numpy as np
import pytest

from vlmkit.classify.zeroshot import class_embeddings, zeroshot_classify
from vlmkit.data import world as w
from vlmkit.data.datasets import load_dataset
from vlmkit.data.world_sample import generate
from vlmkit.embed import embed_images
from vlmkit.models import DEFAULT_MODEL, load_model


@pytest.fixture(scope="module")
def fresh_world(tmp_path_factory):
    return load_dataset(generate(tmp_path_factory.mktemp("world"), 30, seed=4242))


@pytest.fixture(scope="module")
def embedded():
    return load_model("embedded")


def test_embedded_is_the_default_and_offline(embedded):
    assert DEFAULT_MODEL == "embedded"
    assert embedded.family == "embedded" and embedded.embed_dim == 384
    assert embedded.preprocess.output_size == 96


@pytest.mark.parametrize("attribute, minimum", [("color", 0.95), ("shape", 0.85), ("size", 0.9), ("texture", 0.8), ("position", 0.8)])
def test_classifies_fresh_world_images(embedded, fresh_world, attribute, minimum):
    images = embed_images(embedded, fresh_world.paths)
    classes = list(w.ATTRIBUTES[attribute])
    result = zeroshot_classify(images.vectors, class_embeddings(embedded, classes, fresh_world.prompts[attribute]),
                               fresh_world.targets(attribute), classes)
    assert result.summary()["accuracy"] >= minimum


def test_biased_twin_loads_with_its_adapter():
    biased = load_model("embedded-biased")
    assert biased.hf_model.text_adapter is not None
    unbiased_text = load_model("embedded").encode_texts(["a circle"])
    assert not np.allclose(biased.encode_texts(["a circle"]), unbiased_text)
