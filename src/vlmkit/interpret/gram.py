"""Factored scoring for greedy sparse coding: one dictionary pass plus Gram rows.

At every step of COMP / OMP / MP (:mod:`vlmkit.interpret.comp`) each target ``p`` scores all
``M`` atoms against a query ``q = p - sum_t w_t d_{s_t}``, a combination of the atoms already
selected (the residual ``p - sum_t c_t d_t``, plus COMP's coherence term
``lam * mean_t d_{s_t}``). So

    q @ D^T = p @ D^T - sum_t w_t (d_{s_t} @ D^T) = P - sum_t w_t G[s_t]

where ``P = p @ D^T`` is computed once per target (the one pass no implementation can avoid) and
``G[a] = d_a @ D^T`` is a row of the dictionary's Gram matrix, computed once per *distinct* atom
that is ever selected (:class:`GramRows`) and shared by every target, batch and layer. Each step
after the first then costs ``O(M * s)`` per target instead of a ``d``-dimensional product.

The rows pay off when targets share atoms (head vectors of one model do: a few thousand distinct
concepts explain tens of thousands of vectors). When a batch would need more new rows than it has
targets (unrelated random targets), or the rows would outgrow their memory budget, that step
rescores the batch directly instead (:meth:`GramRows.worth_it`).
"""

from __future__ import annotations

import warnings

import torch
from torch import Tensor


class GramRows:
    """Rows ``D[a] @ D^T`` of the Gram matrix of a dictionary ``D`` ``(M, d)``, computed on first use.

    Attributes:
        dictionary: ``(M, d)`` float32 atoms.
        count: how many distinct rows have been computed so far.
    """

    def __init__(self, dictionary: Tensor, max_bytes: int = 2 * 2**30):
        self.dictionary = dictionary.float().contiguous()
        m = self.dictionary.shape[0]
        self.max_rows = min(m, max(1, max_bytes // (4 * m)))
        self._slot = torch.full((m,), -1, dtype=torch.long)
        self._rows = torch.empty(0, m)
        self.count = 0

    def missing(self, atoms: Tensor) -> int:
        """How many distinct rows :meth:`slots` would have to compute for ``atoms``."""
        return int(torch.unique(atoms[self._slot[atoms] < 0]).numel())

    def worth_it(self, atoms: Tensor, targets: int) -> bool:
        """Whether scoring ``targets`` vectors through the rows of ``atoms`` beats rescoring them:
        the missing rows cost at most one direct ``(targets, d) @ (d, M)`` product (and are kept for
        later batches), and they fit in the memory budget."""
        new = self.missing(atoms)
        return new <= targets and self.count + new <= self.max_rows

    @property
    def rows(self) -> Tensor:
        """``(count, M)``: the computed rows, in the order of :meth:`slots`."""
        return self._rows[: self.count]

    def slots(self, atoms: Tensor) -> Tensor:
        """Positions in :attr:`rows` of ``atoms`` (any shape, atom indices), computing missing rows."""
        missing = torch.unique(atoms[self._slot[atoms] < 0])
        if missing.numel():
            need = self.count + missing.numel()
            if need > self._rows.shape[0]:
                capacity = min(max(need, 2 * self._rows.shape[0], 256), self.max_rows)
                grown = torch.empty(capacity, self.dictionary.shape[0])
                grown[: self.count] = self.rows
                self._rows = grown
            self._rows[self.count : need] = self.dictionary[missing] @ self.dictionary.T
            self._slot[missing] = torch.arange(self.count, need)
            self.count = need
        return self._slot[atoms]


def factored_scores(passed: Tensor, gram: GramRows, support: Tensor, weights: Tensor) -> Tensor:
    """``passed - sum_t weights[:, t] * G[support[:, t]]`` without forming any ``d``-dim product.

    Args:
        passed: ``(B, M)``, ``P = targets @ D^T``.
        gram: the Gram rows of ``D``.
        support: ``(B, s)`` distinct atom indices per row.
        weights: ``(B, s)`` their weights.

    Returns:
        ``(B, M)`` float32 scores ``q @ D^T`` with ``q = p - sum_t w_t d_{s_t}``.
    """
    n, s = support.shape
    slots, order = gram.slots(support).sort(dim=1)  # CSR wants each row's columns sorted
    values = weights.float().gather(1, order)
    crow = torch.arange(0, n * s + 1, s)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "sparse CSR support is in beta"
        sparse = torch.sparse_csr_tensor(crow, slots.reshape(-1), values.reshape(-1), size=(n, gram.count))
        return torch.addmm(passed, sparse, gram.rows, alpha=-1)
