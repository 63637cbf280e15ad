"""SeenPairs: membership of (user, item) pairs by a search within each user's keys."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from nlprec.data.seen_pairs import SeenPairs, pair_keys


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 8), st.integers(1, 9), st.lists(st.tuples(st.integers(0, 7), st.integers(0, 8)), max_size=40),
       st.integers(0, 2**32 - 1))
def test_contains_agrees_with_a_set_of_the_pairs(n_users, n_items, pairs, seed):
    pairs = [(user % n_users, item % n_items) for user, item in pairs]  # repeats and empty users included
    users = np.array([user for user, _ in pairs], dtype=np.int64)
    items = np.array([item for _, item in pairs], dtype=np.int64)
    seen = SeenPairs.of(users, items, n_users, n_items)
    rng = np.random.default_rng(seed)
    asked_users, asked_items = rng.integers(0, n_users, 50), rng.integers(0, n_items, 50)
    expected = [(user, item) in set(pairs) for user, item in zip(asked_users.tolist(), asked_items.tolist())]
    assert seen.contains(asked_users, asked_items).tolist() == expected
    assert seen.n_users == n_users and list(seen.keys) == sorted(set(pair_keys(users, items, n_items).tolist()))


def test_a_matrix_with_unsorted_columns_gives_the_same_pairs():
    users, items = np.array([2, 0, 2, 1, 0]), np.array([3, 1, 0, 4, 0])
    matrix = sp.csr_matrix((np.ones(5), (users, items)), shape=(4, 5))
    matrix.indices[matrix.indptr[2]:matrix.indptr[3]] = matrix.indices[matrix.indptr[2]:matrix.indptr[3]][::-1].copy()
    matrix.has_sorted_indices = False
    from_matrix, from_pairs = SeenPairs.of_matrix(matrix), SeenPairs.of(users, items, 4, 5)
    np.testing.assert_array_equal(from_matrix.keys, from_pairs.keys)
    np.testing.assert_array_equal(from_matrix.starts, from_pairs.starts)


def test_a_user_id_outside_the_pairs_is_refused():
    seen = SeenPairs.of(np.array([0, 1]), np.array([2, 3]), 2, 4)
    with pytest.raises(ValueError, match=r"user ids 0..2: expected 0..1"):
        seen.contains(np.array([0, 2]), np.array([1, 1]))
