"""Classification metrics against hand-computed values, and zero-shot on planted embeddings."""

import numpy as np

from vlmkit.classify.zeroshot import zeroshot_classify
from vlmkit.metrics.classification import (
    accuracy,
    confusion_matrix,
    group_accuracies,
    per_class_accuracy,
)


def test_hand_computed():
    y_true = np.array([0, 0, 1, 1, 1, 2])
    y_pred = np.array([0, 1, 1, 1, 0, 1])
    matrix = confusion_matrix(y_true, y_pred, 4)
    assert matrix.tolist() == [[1, 1, 0, 0], [1, 2, 0, 0], [0, 1, 0, 0], [0, 0, 0, 0]]
    assert accuracy(y_true, y_pred) == 0.5
    per_class = per_class_accuracy(matrix)
    assert per_class[:3].tolist() == [0.5, 2 / 3, 0.0] and np.isnan(per_class[3])
    assert group_accuracies(y_true == y_pred, ["a", "a", "b", "b", "b", "a"]) == {"a": 1 / 3, "b": 2 / 3}


def test_zeroshot_recovers_planted_classes(rng):
    classes = [f"c{i}" for i in range(5)]
    class_vectors = np.linalg.qr(rng.normal(size=(64, 5)))[0].T  # orthonormal (5, 64)
    truth = rng.integers(0, 5, 200)
    images = class_vectors[truth] + 0.05 * rng.normal(size=(200, 64))
    flip = truth.copy()
    flip[:20] = (truth[:20] + 1) % 5  # plant 20 images that look like the next class
    images[:20] = class_vectors[flip[:20]] + 0.05 * rng.normal(size=(20, 64))
    result = zeroshot_classify(images, class_vectors, [classes[t] for t in truth], classes)
    assert result.summary()["accuracy"] == 0.9
    assert np.array_equal(result.y_pred, flip)
