"""nlprec.nn.prefetch: the hint is emitted in the compiled code and changes no result."""

import numba
import numpy as np
import pytest

from nlprec.nn.prefetch import prefetch_row


@numba.njit
def _sum_rows_with_prefetch(matrix, rows):
    total = np.zeros(matrix.shape[1], np.float32)
    for i in range(rows.shape[0]):
        if i + 1 < rows.shape[0]:
            prefetch_row(matrix, rows[i + 1])
        total += matrix[rows[i]]
    return total


@pytest.mark.parametrize("shape", [(1, 1), (7, 100), (300, 16), (50, 33)])
def test_prefetch_changes_no_result(shape):
    rng = np.random.default_rng(0)
    matrix = rng.standard_normal(shape).astype(np.float32)
    rows = rng.integers(0, shape[0], 64)
    rows[-1] = shape[0] - 1  # the last row: the hint for its last line must not fault
    np.testing.assert_allclose(_sum_rows_with_prefetch(matrix, rows), matrix[rows].sum(0), rtol=1e-5, atol=1e-5)


def test_prefetch_is_in_the_machine_code():
    matrix = np.zeros((4, 40), np.float32)
    _sum_rows_with_prefetch(matrix, np.arange(4))
    assembly = next(iter(_sum_rows_with_prefetch.inspect_asm().values())).lower()
    assert "prefetch" in assembly or "prfm" in assembly  # x86 prefetcht0 / Arm prfm
