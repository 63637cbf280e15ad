"""Word-word co-occurrence counts for GloVe, sparse, in blocks of bounded memory.

Pennington, Socher, Manning, "GloVe: Global Vectors for Word Representation" (EMNLP 2014), as
the Stanford tools' `cooccur -symmetric 1`: every pair of in-vocabulary words at most `window`
apart within a sentence (line) adds 1 / distance to X[a, b] and to X[b, a] (a word paired with
itself adds 2 / distance to X[a, a]). Out-of-vocabulary words were already dropped from the
encoded corpus, so windows span them, as in `cooccur`.

How (no Python loop per token): the corpus is cut into blocks of whole sentences. A compiled
loop walks each block once; pairs of two frequent words (ids below `dense_words`; ids are in
frequency order) go straight into a dense float64 upper triangle, every other pair is written
as one int64 `((min * V + max) << 4) | distance`, so a plain `np.sort` groups equal pairs and a
`reduceat` sums their weights. Each block's sorted (key, weight) runs are merged (a stable sort
of concatenated runs is a cheap merge), then the dense and sparse parts are joined and mirrored
into both directions.

Memory is estimated before counting (`estimate_bytes`, an upper bound: every window pair
distinct) and checked again while counting; over the budget, `NlprecError` says what to change.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Iterator

import numba
import numpy as np
import torch

from nlprec.errors import NlprecError

DISTANCE_BITS = 4  # distance stored in the low bits of a sparse key: windows up to 15
MAX_WINDOW = (1 << DISTANCE_BITS) - 1
DENSE_WORDS = 4096  # most frequent words whose pairs are summed in a dense triangle (128 MiB)
BLOCK_TOKENS = 2_000_000  # tokens per block: bounds the pair buffer to BLOCK_TOKENS * window keys


@dataclass
class Cooccurrences:
    """X as coordinate triples, both (a, b) and (b, a) present, in no particular order."""

    rows: np.ndarray  # (E,) int32 word ids
    cols: np.ndarray  # (E,) int32 context word ids
    values: np.ndarray  # (E,) float32 sum of 1 / distance over the co-occurrences
    vocab_size: int

    def __len__(self) -> int:
        return len(self.rows)


def available_memory() -> int:
    """Bytes of memory available now (MemAvailable), or physical memory when unknown."""
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def estimate_bytes(n_tokens: int, vocab_size: int, window: int) -> int:
    """Upper bound on the counter's peak memory: dense triangle, block buffers and the result
    (2 directions x int32 row, int32 col, float32 value, plus a shuffled copy for training)."""
    dense = min(vocab_size, DENSE_WORDS) ** 2 * 8
    block = 2 * min(n_tokens, BLOCK_TOKENS) * window * 8
    pairs = min(vocab_size * (vocab_size + 1) // 2, n_tokens * window)
    return dense + block + 2 * pairs * 8 + 2 * 2 * pairs * 12


def _too_big(needed: int, budget: int, window: int) -> NlprecError:
    return NlprecError(f"co-occurrence counting needs up to {needed / 2**30:.1f} GiB but the budget is "
                       f"{budget / 2**30:.1f} GiB: lower --max-vocab or --window (now {window}), "
                       "or raise --memory-gb")


def count_cooccurrences(ids: np.ndarray, sentence_ends: np.ndarray, vocab_size: int, window: int,
                        memory_budget: int | None = None, log=print) -> Cooccurrences:
    """Symmetric 1/distance-weighted co-occurrences of an encoded corpus (module docstring).

    Args:
        ids: (N,) int32 word ids, frequency order (0 = most frequent).
        sentence_ends: (S,) int64 exclusive end of each sentence; windows stop at sentence ends.
        vocab_size: V; ids are < V.
        window: max distance, 1..15.
        memory_budget: bytes the counter may use (None: 80% of the memory available now).
    """
    if not 1 <= window <= MAX_WINDOW:
        raise NlprecError(f"--window must be in 1..{MAX_WINDOW} for GloVe co-occurrences, got {window}")
    if vocab_size > 2**31 // 2:
        raise NlprecError(f"{vocab_size:,} words are too many for the co-occurrence keys: lower --max-vocab")
    budget = int(0.8 * available_memory()) if memory_budget is None else memory_budget
    needed = estimate_bytes(len(ids), vocab_size, window)
    log(f"co-occurrence memory: up to {needed / 2**30:.2f} GiB (budget {budget / 2**30:.1f} GiB)")
    if needed > budget:
        raise _too_big(needed, budget, window)
    dense_words = min(vocab_size, DENSE_WORDS)
    dense = np.zeros((dense_words, dense_words), np.float64)  # (D, D) upper triangle used
    keys, sums = [], []
    held = 0
    for first, last in _blocks(sentence_ends):
        start = int(sentence_ends[first - 1]) if first > 0 else 0
        stop = int(sentence_ends[last - 1])
        block_keys = _block_pairs(ids[start:stop], sentence_ends[first:last] - start, vocab_size, window, dense)
        block_keys.sort()
        unique, weight = _reduce_sorted(block_keys)
        keys.append(unique)
        sums.append(weight)
        held += unique.nbytes + weight.nbytes
        if held > budget // 4:  # merge the runs so the partial sums stay small
            keys, sums = _merge(keys, sums)
            held = keys[0].nbytes + sums[0].nbytes
            if 2 * 2 * len(keys[0]) * 12 + held > budget:
                raise _too_big(2 * 2 * len(keys[0]) * 12 + held, budget, window)
    keys, sums = _merge(keys, sums)
    return _symmetric(dense, keys[0], sums[0], vocab_size)


def _blocks(sentence_ends: np.ndarray) -> list[tuple[int, int]]:
    """(first, last) sentence ranges of about BLOCK_TOKENS tokens each."""
    cuts = np.searchsorted(sentence_ends, np.arange(BLOCK_TOKENS, int(sentence_ends[-1]), BLOCK_TOKENS)) + 1
    bounds = np.unique(np.concatenate([[0], cuts, [len(sentence_ends)]]))
    return list(zip(bounds[:-1].tolist(), bounds[1:].tolist()))


@numba.njit(cache=True)
def _block_pairs(ids, sentence_ends, vocab_size, window, dense):
    """Walk one block: dense pairs are summed in place; returns the sparse pair keys."""
    dense_words = dense.shape[0]
    keys = np.empty(len(ids) * window, np.int64)
    n_keys = 0
    start = 0
    for sentence in range(len(sentence_ends)):
        end = sentence_ends[sentence]
        for position in range(start, end):
            right = ids[position]
            for distance in range(1, min(window, position - start) + 1):
                left = ids[position - distance]
                low, high = min(left, right), max(left, right)
                if high < dense_words:
                    dense[low, high] += 1.0 / distance
                else:
                    keys[n_keys] = ((np.int64(low) * vocab_size + high) << DISTANCE_BITS) | distance
                    n_keys += 1
        start = end
    return keys[:n_keys]


def _reduce_sorted(sorted_keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct pair keys (distance bits dropped) and their summed 1/distance weights."""
    weights = (1.0 / np.maximum(sorted_keys & MAX_WINDOW, 1)).astype(np.float64)  # (K,)
    pairs = sorted_keys >> DISTANCE_BITS
    starts = np.flatnonzero(np.concatenate([[True], pairs[1:] != pairs[:-1]])) if len(pairs) else np.zeros(0, np.int64)
    return pairs[starts], np.add.reduceat(weights, starts) if len(starts) else np.zeros(0)


def _merge(keys: list[np.ndarray], sums: list[np.ndarray]) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """One sorted run of distinct keys from several (a stable sort of sorted runs is a merge)."""
    if len(keys) == 1:
        return keys, sums
    all_keys = np.concatenate(keys)
    order = np.argsort(all_keys, kind="stable")
    merged = all_keys[order]
    weights = np.concatenate(sums)[order]
    starts = np.flatnonzero(np.concatenate([[True], merged[1:] != merged[:-1]])) if len(merged) else order[:0]
    return [merged[starts]], [np.add.reduceat(weights, starts) if len(starts) else weights[:0]]


def _symmetric(dense: np.ndarray, keys: np.ndarray, sums: np.ndarray, vocab_size: int) -> Cooccurrences:
    """Both directions of every counted unordered pair; the diagonal gets both increments."""
    low_d, high_d = np.nonzero(dense)  # only the upper triangle is ever written
    low = np.concatenate([low_d, keys // vocab_size]).astype(np.int32)
    high = np.concatenate([high_d, keys % vocab_size]).astype(np.int32)
    values = np.concatenate([dense[low_d, high_d], sums])  # (P,) float64
    off_diagonal = low != high
    rows = np.concatenate([low, high[off_diagonal]])
    cols = np.concatenate([high, low[off_diagonal]])
    both = np.where(off_diagonal, values, 2 * values)
    values = np.concatenate([both, values[off_diagonal]]).astype(np.float32)
    return Cooccurrences(rows, cols, values, vocab_size)


class CooccurrenceData:
    """The data module of GloVe: co-occurrence entries, shuffled once, in batches.

    A batch is a dict: "rows" (E,) int32, "cols" (E,) int32, "counts" (E,) float32 tensors and
    "n_examples" (E, the trainer's throughput unit). The entries are shuffled once with the
    seed; every epoch visits the batches in its own seeded order.
    """

    def __init__(self, cooccurrences: Cooccurrences, batch_size: int, seed: int, state: dict[str, Any]):
        order = np.random.default_rng(seed).permutation(len(cooccurrences))  # (E,)
        self.rows = cooccurrences.rows[order]
        self.cols = cooccurrences.cols[order]
        self.counts = cooccurrences.values[order]
        self.batch_size = batch_size
        self.seed = seed
        self.state = state

    def steps_per_epoch(self, world_size: int = 1) -> int:
        return len(range(0, -(-len(self.rows) // self.batch_size), world_size))

    def train_dataloader(self, epoch: int, rank: int = 0, world_size: int = 1) -> Iterator[dict[str, Any]]:
        """This rank's share of the epoch's batches, in the epoch's seeded order."""
        n_batches = -(-len(self.rows) // self.batch_size)
        visit = np.random.default_rng([self.seed, epoch]).permutation(n_batches)
        for batch in visit[rank::world_size]:
            part = slice(int(batch) * self.batch_size, (int(batch) + 1) * self.batch_size)
            yield {"rows": torch.from_numpy(self.rows[part]), "cols": torch.from_numpy(self.cols[part]),
                   "counts": torch.from_numpy(self.counts[part]), "n_examples": len(self.rows[part])}

    def state_dict(self) -> dict[str, Any]:
        """What a resume must match (vocabulary and data checksum), given by the caller."""
        return self.state
