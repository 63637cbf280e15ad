"""RowBatches: sized, re-iterable, each batch built only when it is reached."""

from __future__ import annotations

import numpy as np

from nlprec.data.batching import RowBatches


def test_row_batches_are_sized_reiterable_and_built_lazily():
    made = []
    rows = [np.array([3, 1]), np.array([0]), np.array([2, 4, 5])]
    batches = RowBatches(rows, lambda r: made.append(r) or {"rows": r.tolist()})
    assert len(batches) == 3 and made == []
    iterator = iter(batches)
    assert next(iterator) == {"rows": [3, 1]} and len(made) == 1
    assert list(batches) == [{"rows": [3, 1]}, {"rows": [0]}, {"rows": [2, 4, 5]}]
    assert list(batches) == list(batches)
    assert list(RowBatches([], lambda r: {})) == [] and len(RowBatches([], lambda r: {})) == 0
