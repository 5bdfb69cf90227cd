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
    assert retrieval_query(Term("car", ("car", "automobile")), Term("striped", ("striped", "stripy"))) == "a photo of car that is striped or stripy"


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
