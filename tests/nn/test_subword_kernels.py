"""fastText's kernel: the hot input rows each piece trains in its own copies, and what two threads train."""

from __future__ import annotations

import numpy as np

from nlprec.data.subwords import SubwordSpec, subword_rows
from nlprec.nn import subword_kernels


def test_hot_input_rows_are_the_most_used_and_renumbered_past_the_matrix():
    offsets = np.array([0, 3, 5, 7], np.int64)  # word 0: rows 0, 9, 8; word 1: 1, 8; word 2: 2, 9
    rows = np.array([0, 9, 8, 1, 8, 2, 9], np.int32)
    ids = np.array([0] * 5 + [1] * 3 + [2], np.int32)  # kept uses: rows 8 -> 8, 9 -> 6, 0 -> 5, 1 -> 3, 2 -> 1
    hot, renumbered = subword_kernels.hot_input_rows(offsets, rows, ids, np.ones(3, np.float32), 10, 3)
    assert hot.tolist() == [8, 9, 0]
    assert renumbered.dtype == rows.dtype
    assert renumbered.tolist() == [12, 11, 10, 1, 10, 2, 11]


def test_two_threads_train_the_hot_input_rows():
    """The most frequent words' rows change with two threads (their copies are merged back)."""
    rng = np.random.default_rng(0)
    words = [f"w{i}x" for i in range(200)]
    counts = np.sort(rng.integers(1, 400, 200))[::-1].astype(np.float64)
    ids = rng.choice(200, 40_000, p=counts / counts.sum()).astype(np.int32)  # (N,)
    ends = np.arange(20, 40_001, 20, dtype=np.int64)
    offsets, rows = subword_rows(words, SubwordSpec(3, 4, 5000), np.arange(200), 200)
    weights = ((rng.random((5200, 16)) - 0.5) / 16).astype(np.float32)  # (V + buckets, d)
    out = np.zeros((200, 16), np.float32)
    start = weights.copy()
    alias = (np.arange(200, dtype=np.int64) << 32) | 0xFFFFFF  # uniform negatives
    subword_kernels.train_chunk(weights, out, offsets, rows, ids, ends, np.ones(200, np.float32), alias, True, 3, 3,
                                0.05, 1e-4, 1, 2)
    assert np.all(np.abs(weights[:5] - start[:5]).sum(axis=1) > 0) and np.isfinite(weights).all()
    assert np.all(np.abs(out[:5]).sum(axis=1) > 0)
