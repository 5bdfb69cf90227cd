"""ComCa's prior and sampler on known counts."""

import numpy as np
import pytest

from vlmkit.attributes.prior import (
    Term,
    compatibility_from_file,
    cooccurrence,
    parse_terms,
    prior,
    sample_all,
    sample_objects,
)

ATTRS = parse_terms(["red", "striped:striped/stripy", "wooden:wooden/made of wood"])
OBJECTS = parse_terms(["car", "zebra", "chair:chair/stool"])


def test_term_parsing():
    assert Term.parse("striped:striped/stripy") == Term("striped", ("striped", "stripy"))
    assert Term.parse(" car ") == Term("car", ("car",))


def test_cooccurrence_counts_whole_words():
    captions = [
        "A red car parked outside.", "a stripy zebra", "a striped zebra and a red car",
        "a stool made of wood", "redcar is not a word", "a wooden chair next to a red chair",
    ]
    counts = cooccurrence(captions, ATTRS, OBJECTS)
    #                     car zebra chair
    expected = np.array([[2, 1, 1],   # red: captions 1, 3 (car+zebra), 6 (chair)
                         [1, 2, 0],   # striped: 2, 3
                         [0, 0, 2]])  # wooden: 4 (stool), 6
    assert np.array_equal(counts, expected)


def test_compatibility_file_and_prior(tmp_path):
    path = tmp_path / "scores.csv"
    path.write_text("attribute,object,score\nred,car,10\nred,zebra,1\nstriped,zebra,9\n")
    scores, missing = compatibility_from_file(path, ATTRS, OBJECTS)
    assert scores[0].tolist() == [10, 1, 0] and len(missing) == 9 - 3
    cooc = np.array([[2, 1, 1], [1, 2, 0], [0, 0, 2]])
    assert np.array_equal(prior(cooc, scores), cooc * scores)
    assert np.array_equal(prior(cooc, None), cooc) and np.array_equal(prior(None, scores), scores)


def test_sampler_nucleus_fallback_and_determinism():
    row = np.array([0.0, 6.0, 3.0, 1.0])  # p = (0, .6, .3, .1): the 0.8 nucleus keeps objects 1 and 2
    draws = sample_objects(row, k=200, rng=np.random.default_rng(0))
    assert set(draws.tolist()) == {1, 2}
    # softmax over normalised scores (.6, .3): P(1) = e^.6 / (e^.6 + e^.3) = 0.574, near uniform by design
    assert abs((draws == 1).mean() - np.exp(0.6) / (np.exp(0.6) + np.exp(0.3))) < 0.08
    uniform = sample_objects(np.zeros(4), k=400, rng=np.random.default_rng(0))
    assert set(uniform.tolist()) == {0, 1, 2, 3}
    pi = np.array([[1.0, 0, 0], [0, 0, 0]])
    first, again = sample_all(pi, k=16, seed=0), sample_all(pi, k=16, seed=0)
    assert np.array_equal(first, again) and first.shape == (2, 16) and set(first[0].tolist()) == {0}


def test_duplicate_names_are_refused():
    from vlmkit.errors import UserError

    with pytest.raises(UserError):
        parse_terms(["red", "red:crimson"])


def test_sampling_probabilities_match_the_sampler():
    from vlmkit.attributes.prior import sample_objects, sampling_probabilities

    row = np.array([50.0, 30.0, 10.0, 6.0, 4.0])
    q = sampling_probabilities(row, 0.8)
    assert q[2:].sum() == 0 and q.sum() == pytest.approx(1.0)  # the nucleus keeps 50 + 30 (0.8 of the mass)
    assert q[0] == pytest.approx(np.exp(0.5 - 0.5) / (np.exp(0.0) + np.exp(0.3 - 0.5)))  # softmax of normalised scores
    draws = sample_objects(row, k=20000, nucleus=0.8, rng=np.random.default_rng(3))
    assert np.bincount(draws, minlength=5) / 20000 == pytest.approx(q, abs=0.01)
    assert sampling_probabilities(np.zeros(4)) == pytest.approx(np.full(4, 0.25))  # the uniform fallback
