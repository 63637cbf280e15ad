"""Compiled CPU inner loop for fastText: skip-gram and CBOW with negative sampling over
word + character n-gram rows (Bojanowski et al. 2017), compiled with numba.

It shares the threading, subsampling, reduced windows, random stream and sigmoid tables of
nlprec.nn.embedding_kernels (word2vec): one call trains a chunk of sentences, cut into pieces of
whole sentences that `n_threads` threads take one at a time, updating the shared weights without
locks (Hogwild).

A word's input vector is the mean of its rows `rows[offsets[w]:offsets[w+1]]` (its own row and
its n-gram buckets). As in fastText, the gradient of the hidden vector is added in full to every
one of those rows.

- skip-gram: the centre word's vector predicts each context word (and `negative` samples per
  context), as fastText's `FastText::skipgram`. fastText recomposes the centre vector and updates
  its rows once per context; here the centre is composed once and its rows updated once with the
  gradient summed over all its contexts (the centre's predictions form one mini-batch, the same
  trick as the word2vec kernel's shared targets), which removes most of the row traffic.
- CBOW: the mean over the rows of all context words predicts the centre word.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import prange

from nlprec.nn.embedding_kernels import (HOT_ROWS, SYNC_WORDS, _below, _localise, _negative_targets, _next,
                                         _open_hot, _predict_many, _subsample, _sync_hot, run_pieces)
from nlprec.nn.prefetch import prefetch_row


@numba.njit(inline="always", fastmath=True)
def _add_rows(matrix, hot, rows, first, last, hidden):
    """hidden += sum of matrix[rows[first:last]]; a row number past the matrix is hot[row - its rows]."""
    dim = hidden.shape[0]
    n_real = matrix.shape[0]
    for position in range(first, last):
        row = rows[position]
        if row >= n_real:
            for k in range(dim):
                hidden[k] += hot[row - n_real, k]
        else:
            for k in range(dim):
                hidden[k] += matrix[row, k]


@numba.njit(inline="always", fastmath=True)
def _update_rows(matrix, hot, rows, first, last, grad):
    """matrix[rows[first:last]] += grad (rows past the matrix: in `hot`, as _add_rows)."""
    dim = grad.shape[0]
    n_real = matrix.shape[0]
    for position in range(first, last):
        row = rows[position]
        if row >= n_real:
            for k in range(dim):
                hot[row - n_real, k] += grad[k]
        else:
            for k in range(dim):
                matrix[row, k] += grad[k]


@numba.njit(inline="always", fastmath=True)
def _prefetch_rows(matrix, rows, first, last):
    """Prefetch matrix[rows[first:last]] (a word's own and n-gram rows; not the hot copies)."""
    for position in range(first, last):
        if rows[position] < matrix.shape[0]:
            prefetch_row(matrix, rows[position])


def hot_input_rows(offsets: np.ndarray, rows: np.ndarray, ids: np.ndarray, keep_prob: np.ndarray, n_real: int,
                   n_hot: int) -> tuple[np.ndarray, np.ndarray]:
    """The `n_hot` input rows the chunk's kept words use most (frequent words' own rows and their
    common n-grams, among the rows of the 2,000 most frequent words: ids follow frequency), and the
    CSR `rows` with each of them renumbered n_real + its index. Returns (hot (H,) int64, rows (R,))."""
    top = min(len(offsets) - 1, 2000)
    uses = np.bincount(ids, minlength=top)[:top] * keep_prob[:top]  # (top,) kept occurrences
    candidates, inverse = np.unique(rows[:offsets[top]], return_inverse=True)  # (c,), (entries,)
    usage = np.bincount(inverse, weights=np.repeat(uses, np.diff(offsets[:top + 1])), minlength=len(candidates))
    hot = candidates[np.argsort(-usage, kind="stable")[:n_hot]].astype(np.int64)  # (H,)
    order = np.argsort(hot)
    at = np.minimum(np.searchsorted(hot[order], rows), len(hot) - 1)  # (R,)
    is_hot = hot[order][at] == rows
    renumbered = rows.copy()
    renumbered[is_hot] = n_real + order[at[is_hot]]
    return hot, renumbered


@numba.njit(inline="always")
def _sync_inputs(weights, hot_inputs, hot_in, snapshot):
    """weights[hot_inputs] += what the piece changed in its copies hot_in; both copies restart from the result."""
    for j in range(hot_inputs.shape[0]):
        row = hot_inputs[j]
        for k in range(weights.shape[1]):
            merged = weights[row, k] + hot_in[j, k] - snapshot[j, k]
            weights[row, k] = merged
            hot_in[j, k] = merged
            snapshot[j, k] = merged


@numba.njit(inline="always")
def _is_input(other, position, skipgram):
    """Whether window position `other` feeds the hidden vector: the centre for skip-gram, the contexts for CBOW."""
    return (other == position) == skipgram


@numba.njit(fastmath=True)
def _train_run(weights, out, offsets, rows, ids, sentence_ends, first, last, keep_prob, negative_table, skipgram,
               window, negative, lr_start, lr_end, total_words, words_before, seed, hot_inputs, hot_rows, out_rows,
               sigmoid, log_sigmoid):
    """Train sentences first..last-1 of the chunk (one piece); (loss, predictions, words kept).
    The output rows of its `hot_rows` most frequent words, and the input rows `hot_inputs` (which
    `rows` numbers past the input matrix), are trained in its own copies and merged back every
    SYNC_WORDS words and at its end (embedding_kernels.run_pieces)."""
    dim = weights.shape[1]
    hot_in = np.empty((hot_inputs.shape[0], dim), np.float32)  # (H, d) this piece's copies of the hot input rows
    for j in range(hot_inputs.shape[0]):
        hot_in[j] = weights[hot_inputs[j]]
    snapshot_in = hot_in.copy()
    n_hot = min(hot_rows, out_rows)
    hot_base = out_rows + numba.get_thread_id() * n_hot  # this thread's rows past the real ones
    snapshot = _open_hot(out, 0, n_hot, hot_base)
    hidden = np.zeros(dim, np.float32)
    grad = np.zeros(dim, np.float32)
    longest = 1
    for sentence in range(first, last):
        start = sentence_ends[sentence - 1] if sentence > 0 else 0
        longest = max(longest, sentence_ends[sentence] - start)
    buffer = np.empty(longest, np.int32)
    most = 2 * window * (negative + 1)  # predictions of one position at most
    targets = np.zeros(most, np.int64)  # (T,) the words predicted
    labels = np.zeros(most, np.float32)  # (T,)
    scores = np.zeros((1, most), np.float32)  # (1, T) logits, then lr * (label - sigmoid)
    state = np.uint64(seed)
    loss = 0.0
    terms = 0
    trained = 0
    done = words_before
    since_sync = 0
    for sentence in range(first, last):
        start = sentence_ends[sentence - 1] if sentence > 0 else 0
        end = sentence_ends[sentence]
        lr = np.float32(lr_start + (lr_end - lr_start) * (done / max(total_words, 1)))
        done += end - start
        since_sync += end - start
        if since_sync >= SYNC_WORDS:
            _sync_hot(out, 0, n_hot, hot_base, snapshot)
            _sync_inputs(weights, hot_inputs, hot_in, snapshot_in)
            since_sync = 0
        kept, state = _subsample(ids, start, end, keep_prob, buffer, state)
        trained += kept
        for position in range(kept):
            word = buffer[position]
            state = _next(state)
            reach = window - _below(state, window)  # reduced window in [1, window]
            low = max(position - reach, 0)
            high = min(position + reach + 1, kept)
            if high - low <= 1:
                continue
            ahead = position + 1 if skipgram else position + window + 1  # the next centre / word to enter a window
            if ahead < kept:
                _prefetch_rows(weights, rows, offsets[buffer[ahead]], offsets[buffer[ahead] + 1])
            if skipgram:  # each context word and its negatives, all predicted from the centre
                n_targets = 0
                for other in range(low, high):
                    if other != position:
                        drawn, state = _negative_targets(buffer[other], negative_table, negative,
                                                         targets[n_targets:], labels[n_targets:], state)
                        n_targets += drawn
            else:
                n_targets, state = _negative_targets(word, negative_table, negative, targets, labels, state)
            _localise(targets, n_targets, 0, n_hot, hot_base)
            for t in range(n_targets):
                prefetch_row(out, targets[t])
            hidden[:] = 0.0
            grad[:] = 0.0
            n_rows = 0
            for other in range(low, high):
                if _is_input(other, position, skipgram):
                    context = buffer[other]
                    _add_rows(weights, hot_in, rows, offsets[context], offsets[context + 1], hidden)
                    n_rows += offsets[context + 1] - offsets[context]
            hidden *= np.float32(1.0 / n_rows)
            loss += _predict_many(hidden, out, targets, labels, n_targets, lr, grad, scores, sigmoid, log_sigmoid)
            terms += n_targets
            for other in range(low, high):
                if _is_input(other, position, skipgram):
                    context = buffer[other]
                    _update_rows(weights, hot_in, rows, offsets[context], offsets[context + 1], grad)
    _sync_hot(out, 0, n_hot, hot_base, snapshot)
    _sync_inputs(weights, hot_inputs, hot_in, snapshot_in)
    return loss, terms, trained


@numba.njit(parallel=True, cache=True)
def _train_pieces(weights, out, offsets, rows, ids, sentence_ends, bounds, keep_prob, negative_table, skipgram, window,
                  negative, lr_start, lr_end, seed, hot_inputs, hot_rows, out_rows, sigmoid, log_sigmoid, losses,
                  terms, trained):
    """The pieces bounds[p]..bounds[p+1] (sentence ranges) in parallel; results into the (pieces,) arrays."""
    n_pieces = bounds.shape[0] - 1
    total_words = sentence_ends[sentence_ends.shape[0] - 1]
    for piece in prange(n_pieces):
        first = bounds[piece]
        before = 0
        if first > 0:
            before = sentence_ends[first - 1]
        piece_seed = np.uint64(seed) * np.uint64(0x9E3779B97F4A7C15) + np.uint64(piece + 1)
        result = _train_run(weights, out, offsets, rows, ids, sentence_ends, first, bounds[piece + 1], keep_prob,
                            negative_table, skipgram, window, negative, lr_start, lr_end, total_words, before,
                            piece_seed, hot_inputs, hot_rows, out_rows, sigmoid, log_sigmoid)
        losses[piece] = result[0]
        terms[piece] = result[1]
        trained[piece] = result[2]


def train_chunk(weights: np.ndarray, out: np.ndarray, offsets: np.ndarray, rows: np.ndarray, ids: np.ndarray,
                sentence_ends: np.ndarray, keep_prob: np.ndarray, negative_table: np.ndarray, skipgram: bool,
                window: int, negative: int, lr_start: float, lr_end: float, seed: int,
                n_threads: int) -> tuple[float, int, int]:
    """Train on one chunk with `n_threads` threads; returns (loss sum, predictions, words kept).

    weights (V + buckets, d) input rows; out (V, d) output vectors; offsets (V+1,) int64 and
    rows (R,) int32 the CSR of each word's input rows; ids (N,) int32 word ids; sentence_ends
    (S,) int64 exclusive ends; negative_table (V,) int64 the alias table of
    nlprec.data.embedding_tables.alias_table. lr falls linearly from lr_start to lr_end across the chunk.
    Weights are updated in place. Pieces, threads and hot rows: `embedding_kernels.run_pieces`
    (with several threads the most used input rows are trained in each piece's copies too); the
    result does not depend on the thread count beyond Hogwild's lock-free races.
    """
    hot = np.zeros(0, np.int64)
    if min(n_threads, numba.config.NUMBA_NUM_THREADS) > 1:
        hot, rows = hot_input_rows(offsets, rows, ids, keep_prob, len(weights), HOT_ROWS)
    return run_pieces(_train_pieces, (weights, out, offsets, rows, ids), (1,), sentence_ends,
                      (keep_prob, negative_table, skipgram, window, negative, lr_start, lr_end, seed, hot), n_threads)
