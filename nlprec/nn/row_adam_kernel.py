"""Compiled lazy Adam step for one embedding table with a sparse row gradient (CPU, float32).

torch's SparseAdam spends most of a small recommender step on bookkeeping around a few thousand
rows: it coalesces the gradient (a sort), gathers both moments with `sparse_mask` and scatters
three sparse tensors back. This kernel does the same arithmetic in one pass: duplicate rows of the
gradient are summed through a row -> slot map (no sort), then each touched row's moments and
weights are updated in place, the rows a few ahead prefetched so their cache misses overlap
(BENCHMARKS.md, "Recommenders: a compiled lazy Adam", 2026-12-05). Values agree with SparseAdam's
to a unit in the last place: the same float32 operations in the same order.
"""

from __future__ import annotations

import numba
import numpy as np

from nlprec.nn.prefetch import prefetch_row

PREFETCH_AHEAD = 8  # rows prefetched ahead of the one being updated


@numba.njit(cache=True, nogil=True)
def _sum_duplicates(indices, values, slot_of_row, rows, summed):
    """summed[s] = sum of values[k] over the gradient entries k of row rows[s]; returns how many
    distinct rows. `slot_of_row` (n_rows,) is -1 everywhere on entry and is left that way by
    `lazy_adam_rows`."""
    n_rows = 0
    dim = values.shape[1]
    for k in range(len(indices)):
        row = indices[k]
        slot = slot_of_row[row]
        if slot < 0:
            slot = n_rows
            slot_of_row[row] = slot
            rows[slot] = row
            n_rows += 1
            for d in range(dim):
                summed[slot, d] = values[k, d]
        else:
            for d in range(dim):
                summed[slot, d] += values[k, d]
    return n_rows


@numba.njit(cache=True, nogil=True, error_model="numpy")  # no zero-divisor branch: the row loop vectorises
def lazy_adam_rows(weight, exp_avg, exp_avg_sq, indices, values, slot_of_row, rows, summed,
                   keep1, keep2, eps, neg_step_size):
    """One lazy Adam step on the rows named in `indices` (nnz,) with gradient `values` (nnz, dim):

        g = sum of the row's entries;  m += (g - m) * keep1;  v += (g * g - v) * keep2
        weight += (m / (sqrt(v) + eps)) * neg_step_size

    keep1 = 1 - beta1, keep2 = 1 - beta2, neg_step_size = -lr * sqrt(1 - beta2^t) / (1 - beta1^t),
    all float32 as SparseAdam rounds them. `rows` (nnz,) and `summed` (nnz, dim) are scratch."""
    n_rows = _sum_duplicates(indices, values, slot_of_row, rows, summed)
    dim = weight.shape[1]
    for slot in range(min(PREFETCH_AHEAD, n_rows)):
        _prefetch_state(weight, exp_avg, exp_avg_sq, rows[slot])
    for slot in range(n_rows):
        if slot + PREFETCH_AHEAD < n_rows:
            _prefetch_state(weight, exp_avg, exp_avg_sq, rows[slot + PREFETCH_AHEAD])
        row = rows[slot]
        slot_of_row[row] = -1
        for d in range(dim):
            grad = summed[slot, d]
            old_m = exp_avg[row, d]
            old_v = exp_avg_sq[row, d]
            m = (grad - old_m) * keep1 + old_m
            v = (grad * grad - old_v) * keep2 + old_v
            exp_avg[row, d] = m
            exp_avg_sq[row, d] = v
            weight[row, d] += (m / (np.sqrt(v) + eps)) * neg_step_size
    return n_rows


@numba.njit(inline="always")
def _prefetch_state(weight, exp_avg, exp_avg_sq, row):
    prefetch_row(weight, row)
    prefetch_row(exp_avg, row)
    prefetch_row(exp_avg_sq, row)
