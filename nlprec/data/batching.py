"""Batches the shared trainer iterates, and the forward passes of batched inference.

The classification and translation data modules cut an epoch into batches of row indices
first (seeded, length-bucketed) and build the padded tensors only when the trainer asks for
the next batch, so an epoch never holds all its batches in memory at once.

`inference_passes` cuts many inputs of mixed lengths into forward passes (`plan_passes`): the one
planner of `nlprec bert embed` and POST /v1/embeddings.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator, Sequence

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


# What one more forward pass costs, in padded slots. A pass reads every weight once (memory-bound
# for short inputs): 6.5 ms against 0.27 ms a token, about 24 tokens, on a 2-core EPYC (Zen 4) with a
# MiniLM-L6-sized encoder, one thread (benchmarks/bench_embed_serve.py passes). The linear layers
# skip padding (nlprec.models.bert.BertEncoder.forward_packed), so a padded slot costs only its
# attention, about an eighth of a token (measured at 76 and 136 tokens, on a busy machine): 24 x 8.
PASS_TOKENS = 192


def plan_passes(lengths: np.ndarray, budget: int, pass_tokens: int = PASS_TOKENS) -> list[np.ndarray]:
    """Ascending `lengths` (N,) cut into runs, one forward pass each, that minimise the padded
    slots plus `pass_tokens` per pass, each run within `budget` padded tokens (a longer input
    alone). One pass pads every input to the longest; one pass per input reads the weights N
    times: the optimum lies between, found exactly by dynamic programming over the cut points.

    >>> [run.tolist() for run in plan_passes(np.array([8, 8, 9, 60, 64]), 1000, 32)]
    [[0, 1, 2], [3, 4]]
    """
    n = len(lengths)
    best = np.zeros(n + 1)  # best[j]: least cost of the first j inputs
    cut = np.zeros(n + 1, dtype=np.int64)  # cut[j]: where the last run of that plan starts
    for end in range(1, n + 1):
        sizes = end - np.arange(end)  # (end,) run sizes for every start
        padded = sizes * lengths[end - 1]  # (end,) the run padded to its longest (the last) input
        cost = best[:end] + padded + pass_tokens  # (end,)
        cost[(padded > budget) & (sizes > 1)] = np.inf
        cut[end] = int(np.argmin(cost))
        best[end] = cost[cut[end]]
    runs, end = [], n
    while end > 0:
        runs.append(np.arange(cut[end], end))
        end = cut[end]
    return runs[::-1]


def inference_passes(lengths: Sequence[int], budget: int) -> list[np.ndarray]:
    """Indices of inputs of `lengths`, sorted by length and cut by `plan_passes`: one array per
    forward pass, at most `budget` padded tokens each (a longer input alone)."""
    lengths = np.asarray(lengths, dtype=np.int64)  # (N,)
    order = np.argsort(lengths, kind="stable")  # (N,)
    return [order[run] for run in plan_passes(lengths[order], budget)]


__all__ = ["RowBatches", "PASS_TOKENS", "plan_passes", "inference_passes"]
