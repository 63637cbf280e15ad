"""The compiled lazy Adam step against the same arithmetic written in numpy."""

from __future__ import annotations

import numpy as np

from nlprec.nn.row_adam_kernel import lazy_adam_rows


def numpy_lazy_adam(weight, exp_avg, exp_avg_sq, indices, values, keep1, keep2, eps, neg_step_size):
    """Reference: sum duplicate rows (in order of appearance), then Adam on the distinct rows."""
    rows = list(dict.fromkeys(indices.tolist()))
    for row in rows:
        grad = np.zeros(weight.shape[1], dtype=np.float32)
        for position in np.flatnonzero(indices == row):
            grad += values[position]
        m = (grad - exp_avg[row]) * keep1 + exp_avg[row]
        v = (grad * grad - exp_avg_sq[row]) * keep2 + exp_avg_sq[row]
        exp_avg[row], exp_avg_sq[row] = m, v
        weight[row] += (m / (np.sqrt(v) + eps)) * neg_step_size


def test_kernel_matches_numpy_exactly_with_repeated_rows_and_leaves_the_others():
    rng = np.random.default_rng(0)
    n_rows, dim = 40, 5
    tables = [rng.standard_normal((n_rows, dim)).astype(np.float32),
              np.zeros((n_rows, dim), np.float32), np.zeros((n_rows, dim), np.float32)]
    expected = [table.copy() for table in tables]
    slot_of_row = np.full(n_rows, -1, dtype=np.int64)
    scalars = (np.float32(0.1), np.float32(0.001), np.float32(1e-8), np.float32(-0.01))
    for _ in range(4):
        indices = rng.integers(0, 12, 30)  # rows 0-11 only, many repeats
        values = rng.standard_normal((30, dim)).astype(np.float32)
        distinct = lazy_adam_rows(*tables, indices, values, slot_of_row, np.empty(30, np.int64),
                                  np.empty((30, dim), np.float32), *scalars)
        numpy_lazy_adam(*expected, indices, values, *scalars)
        assert distinct == len(set(indices.tolist()))
        assert (slot_of_row == -1).all()  # the map is clean for the next step
    for table, reference in zip(tables, expected):
        np.testing.assert_array_equal(table, reference)
    assert (tables[1][12:] == 0).all() and (tables[2][12:] == 0).all()
