"""The compiled n-gram loops of nlprec.data.subwords: fastText's FNV-1a hash, n-gram counts and buckets.

Kept apart so that importing `nlprec.data.subwords` (its `SubwordSpec`, which every vectors
loader names) does not import numba; the kernels load from numba's on-disk cache on first use.
"""

from __future__ import annotations

import numba
import numpy as np

FNV_OFFSET = np.uint32(2166136261)
FNV_PRIME = np.uint32(16777619)


@numba.njit(inline="always")
def _hash(data, start, end):
    h = FNV_OFFSET
    for position in range(start, end):
        byte = np.int8(data[position])  # fastText: uint32_t(int8_t(c)), sign-extended
        h = np.uint32(h ^ np.uint32(np.int64(byte) & 0xFFFFFFFF))
        h = np.uint32(h * FNV_PRIME)
    return h


@numba.njit(cache=True)
def _count_ngrams(data, starts, ends, min_n, max_n):
    """(W,) number of n-grams of each wrapped word data[starts[w]:ends[w]]."""
    counts = np.zeros(len(starts), np.int64)
    for word in range(len(starts)):
        start, end = starts[word], ends[word]
        for i in range(start, end):
            if (data[i] & 0xC0) == 0x80:
                continue
            j = i
            n = 1
            while j < end and n <= max_n:
                j += 1
                while j < end and (data[j] & 0xC0) == 0x80:
                    j += 1
                if n >= min_n and not (n == 1 and (i == start or j == end)):
                    counts[word] += 1
                n += 1
    return counts


@numba.njit(cache=True)
def _fill_ngrams(data, starts, ends, min_n, max_n, buckets, offsets, out):
    """Bucket of every n-gram, word w's into out[offsets[w]:offsets[w+1]] in fastText's order."""
    for word in range(len(starts)):
        start, end = starts[word], ends[word]
        k = offsets[word]
        for i in range(start, end):
            if (data[i] & 0xC0) == 0x80:
                continue
            j = i
            n = 1
            while j < end and n <= max_n:
                j += 1
                while j < end and (data[j] & 0xC0) == 0x80:
                    j += 1
                if n >= min_n and not (n == 1 and (i == start or j == end)):
                    out[k] = np.int64(_hash(data, i, j) % np.uint32(buckets))
                    k += 1
                n += 1
