"""COMP and its baselines against known answers."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.optimize import nnls as scipy_nnls

from vlmkit.interpret.comp import nnls, sparse_code


def test_nnls_matches_scipy():
    generator = torch.Generator().manual_seed(0)
    atoms = torch.randn(20, 5, 32, generator=generator)
    targets = torch.randn(20, 32, generator=generator)
    ours = nnls(atoms, targets, sweeps=1000, tol=1e-10)
    for i in range(20):
        expected, _ = scipy_nnls(atoms[i].double().T.numpy(), targets[i].double().numpy())
        assert np.allclose(ours[i].numpy(), expected, atol=1e-4)
    assert (ours >= 0).all()


@pytest.fixture(scope="module")
def planted():
    """300 random unit atoms in 128-d; each target a positive mix of 3 of them."""
    generator = torch.Generator().manual_seed(1)
    dictionary = F.normalize(torch.randn(300, 128, generator=generator), dim=-1)
    support = torch.stack([torch.randperm(300, generator=generator)[:3] for _ in range(40)])
    coefs = 0.5 + torch.rand(40, 3, generator=generator)
    targets = (coefs.unsqueeze(-1) * dictionary[support]).sum(1)
    return dictionary, support, coefs, targets


@pytest.mark.parametrize("method", ["omp", "comp"])
def test_recovers_planted_supports_and_coefficients(planted, method):
    dictionary, support, coefs, targets = planted
    indices, found = sparse_code(targets, dictionary, k=3, lam=0.3, method=method)
    for i in range(len(targets)):
        assert set(indices[i].tolist()) == set(support[i].tolist())
        order = {int(j): float(c) for j, c in zip(support[i], coefs[i], strict=True)}
        assert np.allclose([order[int(j)] for j in indices[i]], found[i].numpy(), atol=1e-4)


def test_comp_prefers_coherent_atoms():
    """Target 0.9 e0 + 0.3 e5. After e0, OMP takes e5 (the residual); COMP with a strong
    coherence weight takes (e0 + e1)/sqrt(2), which is close to e0."""
    eye = torch.eye(16)
    dictionary = F.normalize(torch.stack([eye[0], eye[0] + eye[1], eye[5]]), dim=-1)
    target = (0.9 * eye[0] + 0.3 * eye[5]).unsqueeze(0)
    omp, _ = sparse_code(target, dictionary, k=2, method="omp")
    comp, _ = sparse_code(target, dictionary, k=2, lam=0.5, method="comp")
    assert omp[0].tolist() == [0, 2] and comp[0].tolist() == [0, 1]


def test_mp_and_topk_are_non_negative_and_distinct(planted):
    dictionary, _, _, targets = planted
    for method in ("mp", "topk"):
        indices, coefs = sparse_code(targets, dictionary, k=5, method=method)
        assert (coefs >= 0).all()
        assert all(len(set(row.tolist())) == 5 for row in indices)


def test_bad_arguments():
    with pytest.raises(ValueError, match="method"):
        sparse_code(torch.randn(1, 4), torch.eye(4), method="lasso")
    with pytest.raises(ValueError, match="k must"):
        sparse_code(torch.randn(1, 4), torch.eye(4), k=5)


def test_query_by_bmm_equals_multiply_and_sum_to_float64_rounding():
    """sparse_code forms COMP's query ``sum_t w_t d_t`` with bmm instead of multiplying and
    summing. The two agree bit for bit on some CPUs; where the BLAS contracts multiply-adds (e.g.
    with AMX/AVX-512 kernels) the last float64 bits differ, up to about 4e-15, far below the float32 in
    which the exact scores are computed."""
    gen = torch.Generator().manual_seed(0)
    chosen = torch.randn(512, 5, 768, generator=gen, dtype=torch.float64)
    for step in range(1, 5):
        weights = torch.randn(512, step, generator=gen, dtype=torch.float64)
        want = (weights.unsqueeze(-1) * chosen[:, :step]).sum(1)
        assert torch.allclose(torch.bmm(weights.unsqueeze(1), chosen[:, :step]).squeeze(1), want, rtol=0, atol=1e-12)
