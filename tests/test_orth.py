"""Orth-Proj and Orth-Cali on cases with known answers."""

import torch
import torch.nn.functional as F

from vlmkit.debias.orth import apply, orth_cali_matrix, orth_proj_matrix


def test_orth_proj_removes_the_spurious_span_and_keeps_the_rest():
    spurious = torch.tensor([[1.0, 0.0, 0.0, 0.0], [2.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0]])  # span e0, e1
    P = orth_proj_matrix(spurious)
    assert torch.allclose(P, torch.diag(torch.tensor([0.0, 0.0, 1.0, 1.0], dtype=torch.float64)), atol=1e-12)
    out = apply(P, torch.tensor([[3.0, 4.0, 0.0, 5.0]]))
    assert torch.allclose(out, torch.tensor([[0.0, 0.0, 0.0, 1.0]]))


def test_orth_cali_with_lambda_zero_is_orth_proj_and_shrinks_pair_differences():
    gen = torch.Generator().manual_seed(0)
    spurious = torch.randn(2, 6, generator=gen)
    candidates = torch.randn(4, 6, generator=gen)
    pairs = [(0, 1), (2, 3)]
    assert torch.allclose(orth_cali_matrix(spurious, candidates, pairs, lam=0.0), orth_proj_matrix(spurious))
    z = F.normalize(candidates.double(), dim=-1)
    P = orth_cali_matrix(spurious, candidates, pairs, lam=1000.0)
    for i, j in pairs:  # calibrated: the pair's members land (almost) on the same point
        assert ((z[i] - z[j]) @ P.T).norm() < 0.05 * (z[i] - z[j]).norm()
