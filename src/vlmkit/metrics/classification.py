"""Classification metrics on integer labels."""

from __future__ import annotations

import numpy as np


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """``(n_classes, n_classes)`` counts; rows are true classes, columns predictions."""
    matrix = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(matrix, (np.asarray(y_true), np.asarray(y_pred)), 1)
    return matrix


def accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    return float((y_true == y_pred).mean()) if len(y_true) else float("nan")


def per_class_accuracy(matrix: np.ndarray) -> np.ndarray:
    """Recall of each class from a confusion matrix; NaN for classes with no samples."""
    support = matrix.sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(support > 0, np.diag(matrix) / np.maximum(support, 1), np.nan)


def group_accuracies(correct: np.ndarray, groups: list[str]) -> dict[str, float]:
    """Accuracy within each group (e.g. shape x background)."""
    correct = np.asarray(correct, dtype=bool)
    out = {}
    for group in sorted(set(groups)):
        mask = np.asarray([g == group for g in groups])
        out[group] = float(correct[mask].mean())
    return out


def group_summary(correct: np.ndarray, groups: list[str]) -> dict:
    """Worst-group and mean-group accuracy over the groups present, and each group's accuracy:
    ``{"worst_group_accuracy", "mean_group_accuracy", "groups"}``."""
    accuracies = group_accuracies(correct, groups)
    values = list(accuracies.values())
    return {"worst_group_accuracy": min(values), "mean_group_accuracy": float(np.mean(values)), "groups": accuracies}
