"""Exact candidate screening for greedy sparse coding: one dictionary pass, then a few candidates.

At step ``k > 1`` of COMP / OMP / MP (:mod:`vlmkit.interpret.comp`) each target ``p`` scores all
``M`` atoms against a query ``q = p - u`` with ``u = sum_t w_t d_{s_t}`` a combination of the atoms
already selected (the residual ``p - sum_t c_t d_t``, plus COMP's coherence term
``lam * mean_t d_{s_t}``: ``w_t = c_t - lam / |S|``), and keeps the argmax. So

    score(j) = <q, d_j> = P(j) - <u, d_j>,      P = p @ D^T  (the one pass no method avoids)

and the argmax needs ``<u, d_j>`` only where it can matter. The screening only needs *upper
bounds* on ``P``: the pass may be computed in bfloat16 (:meth:`ScreenIndex.first_pass`, about 3x
faster than float32 on CPUs with AVX-512 BF16) with a per-target bound ``slack`` on its error, and
every exact score is then computed from the vectors themselves, ``<p - u, d_j>`` in float32. Two
bounds decide where, both exact:

* **Outside the candidate list.** Each target keeps the atoms whose first-pass score reaches a
  threshold ``tau`` (read off its row of ``P``, which stays in memory for the batch). For any
  other atom ``P(j) < tau + slack`` and, by Cauchy-Schwarz, ``-<u, d_j> <= ||u|| ||d_j||``, so
  ``score(j) < tau + slack + ||u|| max_j ||d_j||``. When that could beat the best candidate (the exact
  score of the one with the highest upper end, see below), the target is screened over the whole dictionary with the
  interval below instead of its list.
* **Inside it (or the whole dictionary).** ``D`` is nearly low-rank (a text tower's embeddings are anisotropic), so with
  ``B`` the top-``r`` right singular vectors of ``D`` (orthonormal columns),
  ``<u, d_j> = <B^T u, B^T d_j> + <(I - BB^T) u, (I - BB^T) d_j>``; the first term costs ``r``
  multiply-adds per candidate (a sampled dense-dense product), the second is at most
  ``rho * e_j`` with ``rho = ||(I - BB^T) u||`` and ``e_j = ||(I - BB^T) d_j||`` (precomputed), so
  ``score(j) <= P(j) - <B^T u, B^T d_j> + rho e_j`` (plus ``slack``), the candidate's upper end (one product of
  ``r + 1`` multiply-adds: ``[B^T u, -rho]`` against ``[B^T d_j, e_j]``). The exact score of the
  candidate with the highest upper end is a lower bound on the row's best; every candidate whose
  upper end reaches it is a *finalist*; finalists are scored exactly (``<p - u, d_j>``, float32
  products as in direct rescoring) and the argmax (lowest index on ties, as ``torch.argmax``) is the argmax over
  the whole dictionary. A target with more finalists than a direct rescoring of its row costs is
  rescored directly (``(p - u) @ D^T``).

Nothing is approximated: the bounds only decide which exact scores to compute. A small absolute
slack (``SLACK``) covers float32 rounding in the bounds. This is the classic "screening" of
greedy pursuit (bound, then verify); the low-rank split is the cone/ball bound of maximum
inner-product search (Ram & Gray, KDD 2012) with the dictionary's principal subspace as the cone.
The codes equal those of rescoring against the whole dictionary at every step
(``tests/test_comp_screen.py``).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor

SLACK = 1e-5  # absolute, on scores of unit vectors; float32 rounding in the bounds is far below it
DENSE_FRACTION = 50  # see ScreenIndex.dense_limit
COVARIANCE_STRIDE = 4  # the principal subspace is estimated from every 4th atom (speed only)
SCREEN_RANK = 48  # principal directions of the bounds (speed only: 48 halves the exact scores of 32 for 1.5x the sampled products)
FIRST_MARGIN = 0.06  # the first candidate list: atoms within this of each target's best first-pass score
BF16_ROUNDOFF = 2.0**-8  # unit roundoff of bfloat16 (8 significant bits, round to nearest)
FP32_ROUNDOFF = 2.0**-24
PASSES = ("auto", "bfloat16", "float32")


def bfloat16_is_fast() -> bool:
    """Whether this CPU multiplies bfloat16 natively (AVX-512 BF16 or AMX, through oneDNN). On
    plain AVX-512 oneDNN emulates it, 3-4x slower than float32; ``torch.ops.mkldnn.
    _is_mkldnn_bf16_supported`` says yes there too, so the instruction sets are read instead."""
    try:
        capabilities = torch.cpu.get_capabilities()
    except (AttributeError, RuntimeError):
        return False
    native = capabilities.get("avx512_bf16", False) or capabilities.get("amx_bf16", False)
    return bool(native and torch.backends.mkldnn.is_available())


class ScreenIndex:
    """What screening needs of a dictionary ``D`` ``(M, d)``, computed once and shared by every batch.

    Attributes:
        atoms: ``(M, d)`` float32 atoms.
        basis: ``(d, r)`` float64, the top-``r`` right singular vectors of ``D`` (orthonormal).
        low_t: ``(r, M)`` float32, ``(D B)^T``: each atom's coordinates in the basis.
        err: ``(M,)`` float32, ``e_j = ||d_j - B B^T d_j||`` (float64, rounded up by ``SLACK``).
        low_err_t: ``(r + 1, M)``, ``low_t`` over ``err``: with a query's ``[B^T u, -rho]`` one
            product gives ``<B^T u, B^T d_j> - rho e_j``, the low end of ``<u, d_j>``.
        norm_max: ``max_j ||d_j||`` (float64).
        margin: each target's candidate list holds the atoms within ``margin`` of its best
            first-pass score (speed only: any value gives the same codes).
        dense_limit: a row with more finalists than this is rescored directly (speed only;
            default ``M / 50``: an exact score gathered atom by atom costs about 50 of a dense row's).
        pass_dtype: ``torch.bfloat16`` or ``torch.float32``, the arithmetic of :meth:`first_pass`
            (``auto``: bfloat16 where the CPU has it natively). Speed only: same codes.
    """

    def __init__(self, dictionary: Tensor, rank: int = SCREEN_RANK, margin: float = FIRST_MARGIN,
                 dense_limit: int | None = None, first_pass: str = "auto"):
        if first_pass not in PASSES:
            raise ValueError(f"first_pass must be one of {PASSES}, got {first_pass!r}")
        self.margin = margin
        self.dense_limit = dense_limit if dense_limit is not None else max(16, dictionary.shape[0] // DENSE_FRACTION)
        self.atoms = dictionary.float().contiguous()
        rank = min(rank, self.atoms.shape[1])
        # only the basis depends on the covariance, and any orthonormal basis is exact: a sample of
        # the atoms finds the principal subspace at a quarter of the cost
        sample = self.atoms[:: COVARIANCE_STRIDE] if self.atoms.shape[0] >= 64 * COVARIANCE_STRIDE else self.atoms
        basis = torch.linalg.eigh((sample.T @ sample).double()).eigenvectors[:, -rank:].flip(1)
        self.basis = torch.linalg.qr(basis).Q  # orthonormal to float64 precision
        atoms64 = self.atoms.double()
        low = atoms64 @ self.basis
        self.low_t = low.T.float().contiguous()
        squares = (atoms64 * atoms64).sum(1)
        # ||d - B B^T d||^2 = ||d||^2 - ||B^T d||^2 (B orthonormal); float64 cancellation is far below SLACK
        self.err = ((squares - (low * low).sum(1)).clamp(min=0).sqrt() + SLACK).float()
        self.norm_max = float(squares.max().sqrt())
        self.low_err_t = torch.cat([self.low_t, self.err.unsqueeze(0)]).contiguous()  # (r + 1, M): one product gives upper ends
        use_bf16 = first_pass == "bfloat16" or (first_pass == "auto" and bfloat16_is_fast())
        self.pass_dtype = torch.bfloat16 if use_bf16 else torch.float32
        if use_bf16:
            high = self.atoms.to(torch.bfloat16)
            self.atoms_bf16_t = high.T.contiguous()  # (d, M)
            # max_j ||bf16(d_j)|| and max_j ||d_j - bf16(d_j)|| (that difference is exact in float32);
            # float32 norms of 768 terms are within 1e-4 relative, so rounded up by that
            self.bf16_norm_max = float(high.float().norm(dim=1).max()) * (1 + 1e-4)
            self.bf16_rest_max = float((self.atoms - high.float()).norm(dim=1).max()) * (1 + 1e-4)

    @property
    def size(self) -> int:
        return self.atoms.shape[0]

    def first_pass(self, targets: Tensor) -> FirstPass:
        """``P~`` ``(N, M)`` float32, the targets' scores against every atom, and ``slack``
        ``(N,)`` float32 with ``|P~ - P| <= slack`` row by row (``P`` the exact scores), with each
        row's largest ``P~`` and its first index (see :class:`FirstPass`).

        In float32, ``P~ = targets @ D^T`` and ``slack = 0`` (the float32 product is what exact
        means here). In bfloat16, both sides are rounded to bfloat16 (``p = p_h + p_l``,
        ``d = d_h + d_l``), multiplied with float32 accumulation, and each product rounded to
        bfloat16 (to nearest: torch's CPU output). Then ``|P~ - <p, d>|`` is at most
        ``u/(1-u) |P~|`` (output rounding, ``u = 2^-8``) ``+ gamma ||p_h|| ||d_h||``
        (accumulating ``d`` exact products, ``gamma`` covering two roundings per term)
        ``+ ||p_h|| ||d_l|| + ||p_l|| (||d_h|| + ||d_l||)`` (the inputs' rounding), with the
        atom norms bounded by their maxima and ``|P~|`` by the row's largest. For unit vectors
        whose best score is 0.2 this is about 0.004 (the true error is about 0.0005), a fifteenth
        of the candidate lists' margin. ``tests/test_comp_screen.py`` checks it against float64.
        """
        targets = targets.float()
        if self.pass_dtype == torch.float32:
            passed = targets @ self.atoms.T
            return FirstPass(passed, torch.zeros(targets.shape[0]), *_row_best(passed))
        high = targets.to(torch.bfloat16)
        passed = _bfloat16_to_float32(high @ self.atoms_bf16_t)
        best, first = _row_best(passed)
        largest = torch.maximum(best, -torch.from_numpy(passed.numpy().min(1))).double()  # max_j |P~|
        high64 = high.double()
        high_norm, rest_norm = high64.norm(dim=1), (targets.double() - high64).norm(dim=1)
        gamma = 2 * targets.shape[1] * FP32_ROUNDOFF
        gamma = gamma / (1 - gamma)
        slack = (BF16_ROUNDOFF / (1 - BF16_ROUNDOFF) * largest + gamma * high_norm * self.bf16_norm_max
                 + high_norm * self.bf16_rest_max + rest_norm * (self.bf16_norm_max + self.bf16_rest_max))
        return FirstPass(passed, (slack * (1 + 1e-6) + SLACK).float(), best, first)


class FirstPass(NamedTuple):
    """The one pass of a batch over the dictionary (:meth:`ScreenIndex.first_pass`): scores
    ``(N, M)`` float32 ``P~``; slack ``(N,)`` float32, ``|P~ - P| <= slack``; best ``(N,)`` each
    row's largest ``P~`` and first ``(N,)`` its first index (as ``argmax``)."""

    scores: Tensor
    slack: Tensor
    best: Tensor
    first: Tensor


def _row_best(scores: Tensor) -> tuple[Tensor, Tensor]:
    """Each row's largest value and its first index, in one numpy pass (numpy's argmax takes a
    fifth of torch's time on one thread; the maximum is read at the argmax)."""
    array = scores.numpy()
    index = array.argmax(1)
    return torch.from_numpy(np.take_along_axis(array, index[:, None], 1)[:, 0]), torch.from_numpy(index)


def _bfloat16_to_float32(values: Tensor) -> Tensor:
    """The same numbers in float32 (a bfloat16's bits are the top half of its float32's), shifted
    in numpy: about a third of torch's ``.float()`` time on one thread for an ``(N, M)`` pass."""
    bits = values.view(torch.int16).numpy().view(np.uint16)
    wide = np.empty(bits.shape, dtype=np.uint32)
    np.left_shift(bits, 16, out=wide, dtype=np.uint32)
    return torch.from_numpy(wide.view(np.float32))


@dataclass
class _Block:
    """Candidates of some targets in CSR form: ``rows`` ``(R,)`` ascending batch row ids, ``crow``
    ``(R+1,)``, ``col`` ``(nnz,)`` atom ids (ascending within a row), ``first`` ``(nnz,)`` upper
    ends of their exact first-pass scores, ``P~ + slack`` (``-inf`` once selected), ``owner`` ``(nnz,)`` the batch row of each,
    ``key`` ``(nnz,)`` ascending ``owner * M + col``, ``err`` ``(nnz,)`` their ``e_j``."""

    rows: Tensor
    crow: Tensor
    col: Tensor
    first: Tensor
    owner: Tensor
    key: Tensor
    err: Tensor


def _block(passed: Tensor, err: Tensor, rows: Tensor, low: Tensor) -> _Block:
    """Atoms with ``low[i] <= P~[row_i, j]`` for each of ``rows`` (ascending)."""
    every = rows.numel() == passed.shape[0]  # all rows, in order (rows == arange)
    values = passed if every else passed.index_select(0, rows)
    flat = np.flatnonzero(values.numpy() >= low.numpy()[:, None])  # row-major: CSR order
    m = passed.shape[1]
    r, col = torch.from_numpy(flat // m), torch.from_numpy(flat % m)
    first = torch.from_numpy(values.numpy().reshape(-1)[flat])
    crow = torch.zeros(rows.numel() + 1, dtype=torch.long)
    crow[1:] = torch.bincount(r, minlength=rows.numel()).cumsum(0)
    owner = r if every else rows.index_select(0, r)
    key = torch.from_numpy(flat) if every else owner * m + col  # owner * M + col
    return _Block(rows, crow, col, first, owner, key, err.index_select(0, col))


def _flat_where(mask: np.ndarray) -> Tensor:
    """The indices of a 1-d boolean array's true entries (numpy's flatnonzero: several times torch's nonzero)."""
    return torch.from_numpy(np.flatnonzero(mask))


def _at_least(values: Tensor, low: Tensor) -> tuple[Tensor, Tensor]:
    """``(row, col)`` of the entries of ``values`` ``(R, M)`` (float32, contiguous) with
    ``value >= low[row]``, in row-major order. In numpy: its broadcast comparison and flat
    ``nonzero`` take about a fifth of torch's time on one thread for these shapes."""
    flat = np.flatnonzero(values.numpy() >= low.numpy()[:, None])
    m = values.shape[1]
    return torch.from_numpy(flat // m), torch.from_numpy(flat % m)


class CandidateScreen:
    """The exact argmax of ``(p - u) @ D^T`` per target, step after step, for one batch.

    The batch meets the dictionary once (:meth:`ScreenIndex.first_pass`: scores ``P~`` within
    ``slack`` of the exact ``P``). Each row keeps one candidate list, the atoms with ``P~ >= tau``
    (``tau``: the row's best first-pass score minus the index's ``margin``). At each step the
    list's intervals give a lower bound on the row's best score (the exact score of its candidate
    of highest upper end); when the bound on every atom off the list
    (``tau + slack + ||u|| max ||d_j||``) stays below it, only the list's finalists are scored
    exactly. The other rows (about a quarter of them per step on a ViT-L/14) are screened over the
    whole dictionary with the same low-rank interval, which costs ``r`` multiply-adds per atom
    instead of ``d``. Every atom a call selects is excluded from later calls.

    Args:
        targets: ``(N, d)`` the vectors to explain.
        index: the dictionary's :class:`ScreenIndex` (its ``margin`` sets the candidate lists).

    Attributes:
        passed: ``(N, M)`` float32, ``P~``; selected atoms are set to ``-inf``.
        slack: ``(N,)`` float32, ``|P~ - P| <= slack`` (0 for a float32 pass).
        widened: how many (row, step) pairs were screened over the whole dictionary so far.
        finalists: how many exact scores were computed so far.
        dense_rows: how many (row, step) pairs had so many finalists that they were rescored
            directly (e.g. targets inside the atoms' span, where the low-rank intervals are wide).
    """

    def __init__(self, targets: Tensor, index: ScreenIndex):
        self.targets, self.index = targets.float(), index
        self.passed, self.slack, self._best, self._first = index.first_pass(self.targets)
        n = self.targets.shape[0]
        self.tau = self._best - index.margin  # every atom with P~ >= tau is on the list
        self.block = _block(self.passed, index.err, torch.arange(n), self.tau)
        if self.slack.any():  # the list keeps upper ends of P: P~ + slack
            self.block.first += self.slack[self.block.owner]
        self._mask = None  # the list's sparsity pattern as a CSR tensor, built on first use
        self.widened = self.finalists = self.dense_rows = 0

    @property
    def candidates(self) -> int:
        return self.block.col.numel()

    def select_first(self) -> Tensor:
        """``(N,)`` the row-wise argmax of ``P`` (step one of every greedy method), then excluded.

        After a float32 pass that is ``P~``'s argmax; otherwise the atoms within ``2 slack`` of
        the row's best ``P~`` (on its candidate list when ``2 slack <= margin``) are scored exactly."""
        if not self.slack.any():
            return self._exclude(self._first)
        low = self._best - 2 * self.slack - SLACK
        if (low >= self.tau).all():
            block = self.block  # its first-pass scores are P~ + slack
            near = _flat_where(block.first.numpy() >= (low + self.slack).numpy()[block.owner.numpy()])
            owner, col = block.owner[near], block.col[near]
        else:
            owner, col = _at_least(self.passed, low)
        return self._exclude(self._argmax(self.targets.shape[0], [self._exact(self.targets, owner, col)]))

    def select(self, u: Tensor) -> Tensor:
        """``(N,)`` the row-wise ``argmax_j <p - u, d_j>`` over the atoms not selected yet, then excluded.

        ``u``: ``(N, d)`` float64, ``sum_t w_t d_{s_t}``. Equal to the argmax of the full ``(N, M)``
        scores, lowest index on ties.
        """
        query32 = (self.targets.double() - u).float()  # p - u, whose products with the atoms are the exact scores
        proj = u @ self.index.basis  # (N, r) float64
        squares = (u * u).sum(1)
        # rho = ||(I - B B^T) u|| = sqrt(||u||^2 - ||B^T u||^2) (B orthonormal; float64 cancellation is far below SLACK)
        rho = (squares - (proj * proj).sum(1)).clamp(min=0).sqrt()
        query = torch.cat([proj, -rho.unsqueeze(1)], 1).float()  # (N, r + 1): against low_err_t, the low ends of <u, d_j>
        outside = (squares.sqrt() * self.index.norm_max).float() + SLACK  # -<u, d_j> < this for every atom
        block = self.block
        upper = self._upper(query)
        lower, seeds, scored = self._lower(query32, block.owner, block.col, upper)
        array = upper.numpy()
        passing = (array >= lower.numpy()[block.owner.numpy()]) & (array > -np.inf)  # selected atoms (-inf) never pass
        passing[seeds.numpy()] = False  # the seeds neither: already scored exactly
        final = _flat_where(passing)
        owner, col = block.owner[final], block.col[final]
        found = [scored]  # exact (owner, col, score) of finalists scored while bounding
        wide = (self.tau + self.slack + outside >= lower).nonzero().squeeze(1)  # an atom off the list could still win
        if wide.numel():
            more, wide_scored = self._wide(query32, wide, query, lower)
            owner, col = torch.cat([owner, more[0]]), torch.cat([col, more[1]])
            found.append(wide_scored)
            self.widened += wide.numel()
        # a row with more finalists than a dense rescoring costs is rescored densely instead
        dense = torch.bincount(torch.cat([owner] + [f[0] for f in found]), minlength=u.shape[0]) > self.index.dense_limit
        if dense.any():
            found = [tuple(part[~dense[f[0]]] for part in f) for f in found]
            found.append(self._dense(query32, dense.nonzero().squeeze(1)))
        keep = ~dense[owner]
        found.append(self._exact(query32, owner[keep], col[keep]))
        return self._exclude(self._argmax(u.shape[0], found))

    def _dense(self, query32: Tensor, rows: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """The best atom of each of ``rows`` by direct rescoring, ``(p - u) @ D^T`` over the whole
        dictionary (selected atoms excluded)."""
        scores = query32.index_select(0, rows) @ self.index.atoms.T
        scores.masked_fill_(torch.isneginf(self.passed.index_select(0, rows)), float("-inf"))
        value, col = scores.max(1)
        self.dense_rows += rows.numel()
        return rows, col, value.double()

    def _upper(self, query: Tensor) -> Tensor:
        """An upper end of every candidate's exact score: ``P~(j) + slack - <B^T u, B^T d_j> +
        rho e_j + SLACK`` (a sampled dense-dense product over the list's fixed pattern; the list
        holds ``P~ + slack``)."""
        block = self.block
        if not block.col.numel():
            return block.first
        if self._mask is None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # "sparse CSR support is in beta"
                self._mask = torch.sparse_csr_tensor(block.crow, block.col, torch.zeros_like(block.first),
                                                     size=(block.rows.numel(), self.index.size))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            low = torch.sparse.sampled_addmm(self._mask, query, self.index.low_err_t).values()
        return block.first - low + SLACK

    def _wide(self, query32: Tensor, rows: Tensor, query: Tensor, lower: Tensor) -> tuple[tuple, tuple]:
        """The same screening over every atom for ``rows``: their finalists ``(owner, col)``, and
        ``(owner, col, exact score)`` of the finalist each row's bound came from (``lower`` is
        raised in place by each row's atom of highest upper end)."""
        upper = self.passed.index_select(0, rows)  # (R, M): P~, then the upper ends less slack and SLACK, in place
        upper.addmm_(query.index_select(0, rows), self.index.low_err_t, alpha=-1)
        seed = torch.from_numpy(upper.numpy().argmax(1))  # its exact score is a lower bound on the row's best
        scored = self._exact(query32, rows, seed)
        lower[rows] = torch.maximum(lower[rows], (scored[2] - SLACK / 2).float())
        upper[torch.arange(rows.numel()), seed] = float("-inf")  # a finalist, already scored
        r, c = _at_least(upper, lower[rows] - self.slack[rows] - SLACK)
        return (rows[r], c), scored

    def _exact(self, query32: Tensor, owner: Tensor, col: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``(owner, col, <q, d_j>)`` for the given candidates: float32 dot products of the rows of
        ``query32`` ``(N, d)`` with the atoms (rescoring ``q @ D^T`` directly, up to the order of
        the float32 sums), returned as float64. Multiply and sum: a batched ``(1, d) @ (d, 1)``
        product costs twice the gathers it needs again on top of them."""
        products = (query32.index_select(0, owner) * self.index.atoms.index_select(0, col)).sum(1)
        return owner, col, products.double()

    def _lower(self, query32: Tensor, owner: Tensor, col: Tensor, upper: Tensor) -> tuple[Tensor, Tensor, tuple]:
        """``(N,)`` float32: per row, the exact score of its candidate of highest upper end (``-inf``
        if none), less ``SLACK / 2``; those candidates' positions in the list, and their
        ``(owner, col, exact score)``."""
        best = torch.full((query32.shape[0],), float("-inf")).scatter_reduce_(0, owner, upper, "amax")
        array = upper.numpy()
        seeds = _flat_where((array == best.numpy()[owner.numpy()]) & (array > -np.inf))  # never a selected atom (-inf)
        scored = self._exact(query32, owner[seeds], col[seeds])
        lower = torch.full((query32.shape[0],), float("-inf"), dtype=torch.float64).scatter_reduce_(0, scored[0], scored[2], "amax")
        return (lower - SLACK / 2).float(), seeds, scored  # rounding to float32 never raises it above an exact score

    def _argmax(self, n: int, found: list) -> Tensor:
        """Row-wise argmax over exact scores ``(owner, col, value)``; lowest atom index on ties."""
        owner, col, value = (torch.cat(parts) for parts in zip(*found, strict=True))
        self.finalists += col.numel()
        best = torch.full((n,), float("-inf"), dtype=torch.float64).scatter_reduce_(0, owner, value, "amax")
        ties = torch.where(value == best[owner], col, self.index.size)
        return torch.full((n,), self.index.size).scatter_reduce_(0, owner, ties, "amin")

    def _exclude(self, atoms: Tensor) -> Tensor:
        """Take ``atoms`` ``(N,)`` (one per row) out of every later selection; returns them."""
        rows = torch.arange(atoms.numel())
        self.passed[rows, atoms] = float("-inf")
        block = self.block
        if block.key.numel():
            query = rows * self.index.size + atoms
            at = torch.searchsorted(block.key, query).clamp(max=block.key.numel() - 1)
            hit = block.key[at] == query
            block.first[at[hit]] = float("-inf")
        return atoms
