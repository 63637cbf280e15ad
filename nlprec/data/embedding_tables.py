"""The tables word2vec and fastText train from, built once from the vocabulary counts.

- keep probabilities for subsampling frequent words (Mikolov et al. 2013, as word2vec.c):
  p_keep(w) = (sqrt(f(w) / (s T)) + 1) * (s T) / f(w), capped at 1, with f the count,
  T the total count and s the `sample` threshold;
- the negative-sampling table: word ids repeated in proportion to count^0.75 (the torch
  backend draws from it), and the same distribution as a V-entry alias table (Walker 1977,
  Vose 1991) that the CPU kernels draw from: one random slot and one coin per draw, in a table
  small enough to stay in cache (V x 8 bytes, against the 4-byte-per-entry table of
  max(1M, 100 V) entries, whose every draw was a cache miss: 27% of CBOW/negative's kernel time
  on IMDb, BENCHMARKS.md);
- Huffman codes and inner-node paths for hierarchical softmax (word2vec.c's CreateBinaryTree).
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

NEGATIVE_TABLE_MAX = 100_000_000  # word2vec.c's table size, the upper bound here


@dataclass
class EmbeddingTables:
    """Everything the training kernels read besides the weights."""

    keep_prob: np.ndarray  # (V,) float32 probability of keeping each occurrence of a word
    negative_table: np.ndarray  # (table,) int32 word ids drawn for negative samples (torch backend)
    negative_alias: np.ndarray  # (V,) int64 alias table of the same distribution (numba kernels), see alias_table
    points: np.ndarray  # (V, L) int32 inner-node ids on each word's Huffman path, padded with 0
    codes: np.ndarray  # (V, L) int8 Huffman code bits (1 = right), padded with 0
    code_lengths: np.ndarray  # (V,) int32 path length of each word


def keep_probabilities(counts: np.ndarray, sample: float) -> np.ndarray:
    """word2vec.c's subsampling keep probability per word; `sample <= 0` keeps everything."""
    counts = np.asarray(counts, dtype=np.float64)
    if sample <= 0:
        return np.ones(len(counts), np.float32)
    threshold = sample * counts.sum()
    keep = (np.sqrt(counts / threshold) + 1.0) * threshold / counts
    return np.minimum(keep, 1.0).astype(np.float32)


def negative_table(counts: np.ndarray, exponent: float = 0.75, size: int | None = None) -> np.ndarray:
    """Word ids laid out so a uniform index draws word w with probability count^exponent / Z."""
    weights = np.asarray(counts, dtype=np.float64) ** exponent
    size = size or int(min(NEGATIVE_TABLE_MAX, max(1_000_000, 100 * len(counts))))
    bounds = np.round(np.cumsum(weights) / weights.sum() * size).astype(np.int64)  # (V,) end of each word's run
    runs = np.diff(bounds, prepend=0)
    return np.repeat(np.arange(len(counts), dtype=np.int32), runs)


ALIAS_COIN_BITS = 24  # resolution of the alias table's keep thresholds


def alias_table(counts: np.ndarray, exponent: float = 0.75) -> np.ndarray:
    """(V,) int64 alias table drawing word w with probability count^exponent / Z.

    Entry i packs (alias word << 32) | threshold: a draw picks slot i uniformly, keeps i when a
    24-bit coin is below the threshold and takes the alias word otherwise (Vose's method).
    """
    weights = np.asarray(counts, dtype=np.float64) ** exponent
    return _vose(weights / weights.sum())


@numba.njit(cache=True)
def _vose(probs: np.ndarray) -> np.ndarray:
    size = probs.shape[0]
    scaled = probs * size  # (V,) mean 1
    full = 1 << ALIAS_COIN_BITS
    alias = np.arange(size)
    threshold = np.full(size, full, np.int64)
    small, large = np.empty(size, np.int64), np.empty(size, np.int64)
    n_small, n_large = 0, 0
    for word in range(size):
        if scaled[word] < 1.0:
            small[n_small] = word
            n_small += 1
        else:
            large[n_large] = word
            n_large += 1
    while n_small > 0 and n_large > 0:
        n_small -= 1
        n_large -= 1
        low, high = small[n_small], large[n_large]
        threshold[low] = int(round(scaled[low] * full))
        alias[low] = high
        scaled[high] = scaled[high] + scaled[low] - 1.0
        if scaled[high] < 1.0:
            small[n_small] = high
            n_small += 1
        else:
            large[n_large] = high
            n_large += 1
    return (alias << 32) | threshold


def huffman_codes(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(points (V, L) int32, codes (V, L) int8, lengths (V,) int32) of the Huffman tree over counts.

    Counts must be sorted in descending order (the vocabulary's order). Inner nodes are
    numbered 0..V-2, the root is V-2, as in word2vec.c, so syn1 has V-1 rows.
    """
    counts = np.asarray(counts, dtype=np.int64)
    if len(counts) < 2:
        return np.zeros((len(counts), 1), np.int32), np.zeros((len(counts), 1), np.int8), np.zeros(len(counts), np.int32)
    parent, bit = _build_tree(counts)
    return _paths(parent, bit, len(counts))


@numba.njit(cache=True)
def _build_tree(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """word2vec.c's two-queue Huffman construction; O(V) for sorted counts."""
    size = len(counts)
    count = np.empty(2 * size, np.int64)
    count[:size] = counts
    count[size:] = np.iinfo(np.int64).max
    parent = np.zeros(2 * size, np.int64)
    bit = np.zeros(2 * size, np.int8)
    leaf, inner = size - 1, size
    for node in range(size - 1):
        smallest = np.empty(2, np.int64)
        for pick in range(2):
            if leaf >= 0 and count[leaf] < count[inner]:
                smallest[pick] = leaf
                leaf -= 1
            else:
                smallest[pick] = inner
                inner += 1
        count[size + node] = count[smallest[0]] + count[smallest[1]]
        parent[smallest[0]] = size + node
        parent[smallest[1]] = size + node
        bit[smallest[1]] = 1
    return parent, bit


@numba.njit(cache=True)
def _paths(parent: np.ndarray, bit: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    root = 2 * size - 2
    lengths = np.zeros(size, np.int32)
    for word in range(size):
        node = word
        while node != root:
            lengths[word] += 1
            node = parent[node]
    longest = lengths.max()
    points = np.zeros((size, longest), np.int32)
    codes = np.zeros((size, longest), np.int8)
    for word in range(size):
        node, depth = word, lengths[word]
        while node != root:  # walk up, filling the path from the leaf end backwards
            depth -= 1
            codes[word, depth] = bit[node]
            points[word, depth] = parent[node] - size
            node = parent[node]
    return points, codes, lengths


def build_tables(counts: np.ndarray, sample: float, ns_exponent: float = 0.75,
                 with_negative: bool = True, with_huffman: bool = True) -> EmbeddingTables:
    """All tables for a vocabulary; the unused ones are left empty to save memory."""
    points, codes, lengths = huffman_codes(counts) if with_huffman else (
        np.zeros((len(counts), 1), np.int32), np.zeros((len(counts), 1), np.int8), np.zeros(len(counts), np.int32))
    table = negative_table(counts, ns_exponent) if with_negative else np.zeros(1, np.int32)
    alias = alias_table(counts, ns_exponent) if with_negative else np.zeros(1, np.int64)
    return EmbeddingTables(keep_probabilities(counts, sample), table, alias, points, codes, lengths)
