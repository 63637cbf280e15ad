"""RowBatches: sized, re-iterable, each batch built only when it is reached; plan_passes: the
cheapest cut of length-sorted inputs into forward passes within a token budget."""

from __future__ import annotations

import numpy as np

from nlprec.data.batching import RowBatches, plan_passes


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


def test_plan_passes_is_the_cheapest_plan_within_the_budget():
    rng = np.random.default_rng(0)
    for _ in range(200):
        lengths = np.sort(rng.integers(2, 60, rng.integers(1, 9)))
        budget, pass_tokens = int(rng.integers(60, 300)), int(rng.integers(0, 80))
        runs = plan_passes(lengths, budget, pass_tokens)
        assert np.array_equal(np.concatenate(runs), np.arange(len(lengths)))
        assert all(len(run) == 1 or len(run) * lengths[run[-1]] <= budget for run in runs)
        assert _cost(lengths, runs, pass_tokens) == min(
            _cost(lengths, plan, pass_tokens) for plan in _all_plans(len(lengths))
            if all(len(run) == 1 or len(run) * lengths[run[-1]] <= budget for run in plan))


def _cost(lengths, runs, pass_tokens) -> int:
    return sum(len(run) * int(lengths[run[-1]]) + pass_tokens for run in runs)


def _all_plans(n: int):
    """Every cut of 0..n-1 into consecutive runs."""
    for mask in range(1 << max(n - 1, 0)):
        cuts = [0] + [i + 1 for i in range(n - 1) if mask >> i & 1] + [n]
        yield [np.arange(a, b) for a, b in zip(cuts, cuts[1:])]
