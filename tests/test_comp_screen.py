"""The screened scoring of COMP and its baselines gives the codes of direct rescoring.

``_direct_sparse_code`` and ``_direct_nnls`` are the implementation vlmkit shipped before the
factored scoring (commit 4698ac4, verbatim but for names): every step rescores ``residual + lam * mean_S`` against the
whole dictionary. The screened one (:mod:`vlmkit.interpret.screen`) must select the same atoms
in the same order and the same coefficients to 1e-5, on planted codes, random targets, a
correlated dictionary like a text tower's (all words close together), and adversarial settings
where the bounds cannot certify the candidate list and the whole dictionary is screened.
"""

import pytest
import torch
import torch.nn.functional as F

from vlmkit.interpret.comp import nnls, sparse_code
from vlmkit.interpret.screen import CandidateScreen, ScreenIndex


def _direct_nnls(atoms, targets, ridge=1e-6, sweeps=100, tol=1e-6):
    A = atoms.double()
    gram = A @ A.transpose(1, 2)
    rhs = (A @ targets.double().unsqueeze(-1)).squeeze(-1)
    eye = torch.eye(gram.shape[-1], dtype=gram.dtype)
    coef = torch.linalg.solve(gram + ridge * eye, rhs).clamp(min=0)
    diag = gram.diagonal(dim1=1, dim2=2).clamp(min=1e-12)
    for _ in range(sweeps):
        largest_step = torch.zeros((), dtype=coef.dtype)
        for j in range(coef.shape[1]):
            updated = (coef[:, j] + (rhs[:, j] - (gram[:, j] * coef).sum(-1)) / diag[:, j]).clamp(min=0)
            largest_step = torch.maximum(largest_step, (updated - coef[:, j]).abs().max())
            coef[:, j] = updated
        if largest_step <= tol:
            break
    return coef.to(targets.dtype)


def _direct_sparse_code(targets, dictionary, k=5, lam=0.3, method="comp"):
    targets, dictionary = targets.float(), dictionary.float()
    n = targets.shape[0]
    if method == "topk":
        indices = (targets @ dictionary.T).topk(k, dim=1).indices
        return indices, _direct_nnls(dictionary[indices], targets)
    lam = lam if method == "comp" else 0.0
    indices = torch.zeros(n, k, dtype=torch.long)
    coef = torch.zeros(n, k)
    residual = targets.clone()
    taken = torch.zeros(n, dictionary.shape[0], dtype=torch.bool)
    rows = torch.arange(n)
    for step in range(k):
        query = residual
        if step > 0 and lam:
            query = residual + lam * dictionary[indices[:, :step]].mean(1)
        score = (query @ dictionary.T).masked_fill(taken, float("-inf"))
        indices[:, step] = score.argmax(1)
        taken[rows, indices[:, step]] = True
        atoms = dictionary[indices[:, : step + 1]]
        if method == "mp":
            coef[:, step] = (residual * atoms[:, -1]).sum(-1).clamp(min=0)
        else:
            coef[:, : step + 1] = _direct_nnls(atoms, targets)
        residual = targets - (coef[:, : step + 1].unsqueeze(-1) * atoms).sum(1)
    return indices, coef


def _case(kind: str, seed: int, n: int = 128, m: int = 1000, d: int = 64):
    gen = torch.Generator().manual_seed(seed)
    if kind == "correlated":  # every atom close to a shared direction, as a random text tower makes them
        dictionary = F.normalize(torch.randn(d, generator=gen) + 0.6 * torch.randn(m, d, generator=gen), dim=-1)
        dictionary = F.normalize(dictionary - dictionary.mean(0), dim=-1)
    else:
        dictionary = F.normalize(torch.randn(m, d, generator=gen), dim=-1)
    if kind == "planted":
        support = torch.stack([torch.randperm(m, generator=gen)[:4] for _ in range(n)])
        coef = 0.2 + torch.rand(n, 4, generator=gen)
        targets = (coef.unsqueeze(-1) * dictionary[support]).sum(1) + 0.05 * torch.randn(n, d, generator=gen)
    else:
        targets = torch.randn(n, d, generator=gen)
    return F.normalize(targets, dim=-1), dictionary


@pytest.mark.parametrize("first_pass", ["float32", "bfloat16"])
@pytest.mark.parametrize("kind", ["planted", "random", "correlated"])
@pytest.mark.parametrize("method,lam", [("comp", 0.3), ("comp", 0.5), ("omp", 0.3), ("mp", 0.3), ("topk", 0.3)])
def test_screened_codes_equal_direct_codes(kind, method, lam, first_pass):
    targets, dictionary = _case(kind, seed=len(kind) + int(10 * lam))
    k = 5
    want_idx, want_coef = _direct_sparse_code(targets, dictionary, k=k, lam=lam, method=method)
    index = ScreenIndex(dictionary, first_pass=first_pass)
    got_idx, got_coef = sparse_code(targets, dictionary, k=k, lam=lam, method=method, index=index)
    assert torch.equal(got_idx, want_idx)
    assert torch.allclose(got_coef, want_coef, atol=1e-5, rtol=0)


def test_one_index_shared_across_calls_gives_the_codes_of_fresh_ones():
    targets, dictionary = _case("correlated", 3, n=300)
    index = ScreenIndex(dictionary)
    first = sparse_code(targets[:150], dictionary, k=5, index=index)
    second = sparse_code(targets[150:], dictionary, k=5, index=index)
    alone = sparse_code(targets[150:], dictionary, k=5)
    assert torch.equal(alone[0], second[0]) and torch.equal(alone[1], second[1])
    want = _direct_sparse_code(targets, dictionary, k=5)
    assert torch.equal(torch.cat([first[0], second[0]]), want[0])


@pytest.mark.parametrize("scale", [1.0, 1e-3, 40.0])
def test_the_bfloat16_pass_stays_within_its_bound(scale):
    """``|P~ - P| <= slack`` against float64 products, for targets of any norm and atoms of a
    correlated dictionary (large scores, where bfloat16's output rounding is largest); and the
    bound is useful: about 0.006 per unit of target norm, a tenth of the lists' margin."""
    gen = torch.Generator().manual_seed(int(scale * 10))
    targets, dictionary = _case("correlated", seed=4, n=256, m=3000, d=768)
    targets = targets * scale * (0.5 + torch.rand(256, 1, generator=gen))
    targets[:32] = dictionary[:32] * scale  # scores of 1 (times the scale): the largest possible
    index = ScreenIndex(dictionary, first_pass="bfloat16")
    passed, slack, best, first = index.first_pass(targets)
    exact = targets.double() @ dictionary.double().T
    error = (passed.double() - exact).abs().amax(1)
    assert (error <= slack.double()).all()
    assert (slack <= 0.008 * targets.norm(dim=1) + 2e-5).all()
    assert (error > 0).any()  # it is not a float32 pass in disguise
    assert torch.equal(best, passed.max(1).values) and torch.equal(first, passed.argmax(1))


def test_unknown_first_pass_is_refused():
    with pytest.raises(ValueError, match="first_pass"):
        ScreenIndex(torch.eye(4), first_pass="int8")


def _near_duplicates(seed: int, n: int = 96, groups: int = 40, size: int = 8, d: int = 48):
    """Adversarial for the bounds: tight groups of near-identical atoms, so COMP's coherence term
    lifts the neighbours of a chosen atom far above their first-pass rank (off the candidate list)."""
    gen = torch.Generator().manual_seed(seed)
    centres = F.normalize(torch.randn(groups, d, generator=gen), dim=-1)
    dictionary = F.normalize(centres.repeat_interleave(size, 0) + 0.15 * torch.randn(groups * size, d, generator=gen), dim=-1)
    targets = F.normalize(torch.randn(n, d, generator=gen) + 2 * centres[torch.randint(groups, (n,), generator=gen)], dim=-1)
    return targets, dictionary


@pytest.mark.parametrize("first_pass", ["float32", "bfloat16"])
@pytest.mark.parametrize("rank,margin", [(32, 0.0), (1, 0.06), (4, 10.0), (64, 0.02)])
@pytest.mark.parametrize("method,lam", [("comp", 0.3), ("comp", 1.0), ("omp", 0.0), ("mp", 0.0)])
def test_adversarial_bounds_still_give_the_direct_codes(rank, margin, method, lam, first_pass):
    """margin 0 keeps only each row's best atom on the list (the whole-dictionary fallback runs at
    every step); rank 1 makes the low-rank intervals wide (many finalists); margin 10 puts every
    atom on the list; rank 64 > d is exact low rank."""
    targets, dictionary = _near_duplicates(seed=rank + int(100 * margin))
    index = ScreenIndex(dictionary, rank=rank, margin=margin, first_pass=first_pass)
    want = _direct_sparse_code(targets, dictionary, k=5, lam=lam, method=method)
    got = sparse_code(targets, dictionary, k=5, lam=lam, method=method, index=index)
    assert torch.equal(got[0], want[0])
    assert torch.allclose(got[1], want[1], atol=1e-5, rtol=0)


@pytest.mark.parametrize("dense_limit", [0, 3, None])
def test_targets_in_the_atoms_span_are_rescored_densely_with_the_same_codes(dense_limit):
    """Planted non-negative codes over a correlated dictionary: ``u`` is large, the low-rank
    intervals are wide and rows have many finalists, so they are rescored directly (``dense_limit``
    0: every row of every step)."""
    gen = torch.Generator().manual_seed(9)
    dictionary = F.normalize(torch.randn(40, generator=gen) + 0.6 * torch.randn(800, 40, generator=gen), dim=-1)
    dictionary = F.normalize(dictionary - dictionary.mean(0), dim=-1)
    support = torch.stack([torch.randperm(800, generator=gen)[:5] for _ in range(64)])
    targets = F.normalize(((0.5 + torch.rand(64, 5, generator=gen)).unsqueeze(-1) * dictionary[support]).sum(1), dim=-1)
    index = ScreenIndex(dictionary, rank=4, dense_limit=dense_limit)
    for method in ("comp", "omp"):
        want = _direct_sparse_code(targets, dictionary, k=5, method=method)
        got = sparse_code(targets, dictionary, k=5, method=method, index=index)
        assert torch.equal(got[0], want[0]) and torch.allclose(got[1], want[1], atol=1e-5, rtol=0)
    screen = CandidateScreen(targets, index)
    screen.select_first()
    screen.select(torch.randn(64, 40, generator=gen, dtype=torch.float64))
    if dense_limit == 0:
        assert screen.dense_rows == 64


@pytest.mark.parametrize("first_pass", ["float32", "bfloat16"])
def test_the_fallback_runs_where_the_list_cannot_certify(first_pass):
    """margin 0: a float32 pass lists each row's best atom alone (a bfloat16 one also its ties
    after rounding); a pull towards the chosen atom's group needs the whole dictionary."""
    targets, dictionary = _near_duplicates(seed=5)
    passed = targets @ dictionary.T
    screen = CandidateScreen(targets, ScreenIndex(dictionary, margin=0.0, first_pass=first_pass))
    first = screen.select_first()
    u = -0.5 * dictionary[first].double()  # a pure coherence pull towards the chosen atom's group
    got = screen.select(u)
    assert screen.widened > 0 and screen.candidates <= 1.1 * len(targets)
    assert first_pass == "bfloat16" or screen.candidates == len(targets)
    want = (passed - (u.float() @ dictionary.T)).scatter(1, first.unsqueeze(1), float("-inf")).argmax(1)
    assert torch.equal(got, want)


@pytest.mark.parametrize("first_pass", ["float32", "bfloat16"])
@pytest.mark.parametrize("margin", [0.0, 0.05, 1.0])
def test_select_is_the_dense_argmax_with_ties_broken_like_torch(margin, first_pass):
    """Random queries over a dictionary with exact duplicate atoms (exact ties): the lowest index
    wins, as in ``torch.argmax`` over the dense scores."""
    gen = torch.Generator().manual_seed(2)
    base = F.normalize(torch.randn(150, 24, generator=gen), dim=-1)
    dictionary = torch.cat([base, base[:50]])  # atoms 150-199 duplicate 0-49
    targets = F.normalize(torch.randn(64, 24, generator=gen), dim=-1)
    passed = targets @ dictionary.T
    screen = CandidateScreen(targets, ScreenIndex(dictionary, rank=8, margin=margin, first_pass=first_pass))
    taken = [screen.select_first()]
    for _ in range(3):
        u = 0.3 * torch.randn(64, 24, generator=gen, dtype=torch.float64)
        got = screen.select(u)
        dense = passed - (u.float() @ dictionary.T)
        dense.scatter_(1, torch.stack(taken, 1), float("-inf"))
        assert torch.equal(got, dense.argmax(1))
        taken.append(got)


class _CountingEmbedder:
    """A deterministic stand-in sentence encoder that counts what it encodes."""

    name = fingerprint = "counting-test-embedder"
    dim = 16

    def __init__(self):
        self.encoded = 0

    def encode(self, sentences):
        self.encoded += len(sentences)
        rows = [torch.Generator().manual_seed(sum(map(ord, s))) for s in sentences]
        return F.normalize(torch.stack([torch.randn(self.dim, generator=g) for g in rows]), dim=-1)

    def encode_texts(self, texts, normalize=True):
        return self.encode(list(texts))


def test_cached_coherence_equals_direct_and_reads_back_without_encoding(tmp_path):
    from vlmkit.interpret.sith import LayerExplanation, sentence_coherence
    from vlmkit.runs.cache import EmbeddingCache

    concepts = [f"concept {i}" for i in range(300)]
    gen = torch.Generator().manual_seed(0)
    indices = torch.stack([torch.randperm(300, generator=gen)[:5] for _ in range(40)])
    scores = torch.rand(40, 5, generator=gen) * (torch.rand(40, 5, generator=gen) > 0.2)
    explanation = LayerExplanation(0, torch.ones(1, 40), torch.zeros(40, 8), indices, scores, torch.zeros(40))
    direct = sentence_coherence([explanation], concepts, _CountingEmbedder())[0]
    cache = EmbeddingCache(tmp_path)
    first = _CountingEmbedder()
    cold = sentence_coherence([explanation], concepts, first, cache=cache)[0]
    warm_embedder = _CountingEmbedder()
    warm = sentence_coherence([explanation], concepts, warm_embedder, cache=cache)[0]
    assert first.encoded == 300 and warm_embedder.encoded == 0
    defined = torch.isfinite(direct)
    assert torch.equal(defined, torch.isfinite(warm)) and torch.equal(defined, torch.isfinite(cold))
    assert torch.allclose(direct[defined], warm[defined], atol=1e-6)


@pytest.mark.parametrize("kind", ["random", "correlated"])
def test_nnls_equals_the_direct_implementation(kind):
    gen = torch.Generator().manual_seed(11)
    base = torch.randn(48, generator=gen) if kind == "correlated" else torch.zeros(48)
    atoms = F.normalize(torch.randn(300, 5, 48, generator=gen) + 2 * base, dim=-1)
    targets = torch.randn(300, 48, generator=gen)
    assert torch.allclose(nnls(atoms, targets), _direct_nnls(atoms, targets), atol=1e-6, rtol=0)
