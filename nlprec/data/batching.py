"""Batches the shared trainer iterates: a list of row-index arrays, each made a batch when it is reached.

The classification and translation data modules cut an epoch into batches of row indices
first (seeded, length-bucketed) and build the padded tensors only when the trainer asks for
the next batch, so an epoch never holds all its batches in memory at once.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator

import numpy as np


class RowBatches:
    """A sized, re-iterable sequence of batches: `make(rows)` builds batch i from `rows[i]` on the fly.

    >>> batches = RowBatches([np.array([0, 1]), np.array([2])], lambda rows: {"rows": rows.tolist()})
    >>> len(batches), list(batches)
    (2, [{'rows': [0, 1]}, {'rows': [2]}])
    """

    def __init__(self, rows: list[np.ndarray], make: Callable[[np.ndarray], dict[str, Any]]):
        self.rows = rows  # per batch, (B,) int row indices into the data module's examples
        self.make = make  # rows -> batch dict (keys: the data module's docstring)

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return (self.make(rows) for rows in self.rows)


__all__ = ["RowBatches"]
