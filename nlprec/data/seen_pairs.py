"""The (user, item) pairs a recommender has seen, for "is this item new to this user?" tests.

Negative sampling asks it for every drawn item of every batch. The pairs are kept as sorted
int64 keys (user * n_items + item) with where each user's keys start, so a lookup is a binary
search within one user's few keys instead of the whole array: on a 10M-interaction log the
whole-array `np.searchsorted` missed the cache on most of its ~24 probes (negative sampling
1.50 -> 0.24 ms a batch of 1,024; BENCHMARKS.md, "Recommenders: a compiled lazy Adam").
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np
import scipy.sparse as sp


def pair_keys(users: np.ndarray, items: np.ndarray, n_items: int) -> np.ndarray:
    """One sortable int64 per (user, item) pair."""
    return users.astype(np.int64) * n_items + items.astype(np.int64)


def sorted_unique(values: np.ndarray) -> np.ndarray:
    """`np.unique` of a 1-D array by a sort and a mask: numpy 2.4's np.unique took 18 s of CPU on
    10M int64 keys where this takes under 1 s."""
    ordered = np.sort(values)  # (N,)
    keep = np.ones(len(ordered), dtype=bool)
    keep[1:] = ordered[1:] != ordered[:-1]
    return ordered[keep]


@dataclass(frozen=True)
class SeenPairs:
    """Sorted unique pair keys (P,) and `starts` (U + 1,): user u's keys are keys[starts[u]:starts[u+1]]."""

    keys: np.ndarray
    starts: np.ndarray
    n_items: int

    @classmethod
    def of(cls, users: np.ndarray, items: np.ndarray, n_users: int, n_items: int) -> SeenPairs:
        """The pairs of aligned (N,) user and item ids (repeats allowed)."""
        keys = sorted_unique(pair_keys(users, items, n_items))  # (P,)
        starts = np.searchsorted(keys, np.arange(n_users + 1, dtype=np.int64) * n_items)  # (U + 1,)
        return cls(keys, starts, n_items)

    @classmethod
    def of_matrix(cls, seen: sp.csr_matrix) -> SeenPairs:
        """The nonzero cells of a users x items CSR matrix."""
        seen = seen.sorted_indices()
        users = np.repeat(np.arange(seen.shape[0], dtype=np.int64), np.diff(seen.indptr))  # (P,)
        return cls(pair_keys(users, seen.indices, seen.shape[1]), seen.indptr.astype(np.int64), seen.shape[1])

    @property
    def n_users(self) -> int:
        return len(self.starts) - 1

    def contains(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """(N,) bool: whether each (users[k], items[k]) pair was seen."""
        users = np.ascontiguousarray(users, dtype=np.int64)
        if len(users) and (users.min() < 0 or users.max() >= self.n_users):  # the kernel reads starts[user]
            raise ValueError(f"user ids {users.min()}..{users.max()}: expected 0..{self.n_users - 1}")
        keys = pair_keys(users, np.asarray(items), self.n_items)  # (N,)
        return _in_user_keys(self.keys, self.starts, users, keys)


@numba.njit(cache=True, nogil=True)
def _in_user_keys(seen_keys, starts, users, keys):
    """found[k]: keys[k] is among seen_keys[starts[users[k]]:starts[users[k] + 1]] (sorted)."""
    found = np.empty(len(keys), dtype=np.bool_)
    for k in range(len(keys)):
        low, high, key = starts[users[k]], starts[users[k] + 1], keys[k]
        end = high
        while low < high:
            middle = (low + high) >> 1
            if seen_keys[middle] < key:
                low = middle + 1
            else:
                high = middle
        found[k] = low < end and seen_keys[low] == key
    return found
