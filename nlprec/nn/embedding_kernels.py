"""Compiled CPU inner loops for word2vec: skip-gram and CBOW, negative sampling and
hierarchical softmax, as in word2vec.c (Mikolov et al. 2013), compiled with numba.

One call trains on a chunk of sentences. The chunk is cut into pieces of whole sentences,
each with its own random stream, which the threads take one at a time and train while
updating the shared weights without locks (Hogwild, as word2vec.c and gensim do), except the
few hundred rows nearly every update touches, which each piece trains in its own copies and
merges back at its end (run_pieces). With one thread the result is bit-for-bit repeatable for
a given seed; with more, the unsynchronised updates make runs differ in the last digits, as
they do in the peers.

Per sentence: frequent words are subsampled first (so windows span dropped words), then each
position takes a random reduced window b in [1, window] on each side. Updates follow
word2vec.c exactly: for skip-gram the context word's input vector predicts the centre word
(and negatives / Huffman nodes); for CBOW the mean (or sum) of the context input vectors does.
The loss of every prediction is accumulated (float64) from a log-sigmoid table for logging.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import prange

from nlprec.nn.prefetch import prefetch_row

MAX_EXP = 6.0  # sigmoid is tabulated on [-MAX_EXP, MAX_EXP], saturated outside (word2vec.c)
TABLE_SIZE = 1000  # entries of the sigmoid and log-sigmoid tables

_GRID = (np.arange(TABLE_SIZE, dtype=np.float64) / TABLE_SIZE * 2.0 - 1.0) * MAX_EXP  # (TABLE_SIZE,)
SIGMOID_TABLE = (1.0 / (1.0 + np.exp(-_GRID))).astype(np.float32)
LOG_SIGMOID_TABLE = np.log(SIGMOID_TABLE.astype(np.float64)).astype(np.float32)
_LCG_MULTIPLIER = np.uint64(25214903917)
_LCG_INCREMENT = np.uint64(11)


@numba.njit(inline="always")
def _next(state):
    """word2vec.c's linear congruential step (mod 2**64)."""
    return state * _LCG_MULTIPLIER + _LCG_INCREMENT


@numba.njit(inline="always")
def _below(state, bound):
    """A draw in [0, bound) from the high bits of the state (the low bits of an LCG are weak)."""
    return np.int64((state >> np.uint64(24)) % np.uint64(bound))


@numba.njit(inline="always")
def _draw(alias, state):
    """A negative sample from the alias table (nlprec.data.embedding_tables.alias_table); (word, state).

    The slot comes from the state's high 32 bits by a multiply-shift (no division), the coin
    from bits 16..39.
    """
    state = _next(state)
    slot = np.int64(((state >> np.uint64(32)) * np.uint64(alias.shape[0])) >> np.uint64(32))
    entry = alias[slot]
    coin = np.int64((state >> np.uint64(16)) & np.uint64(0xFFFFFF))
    if coin < (entry & 0xFFFFFFFF):
        return slot, state
    return entry >> 32, state


@numba.njit(inline="always")
def _table_index(f):
    return min(int((f + MAX_EXP) * (TABLE_SIZE / MAX_EXP / 2.0)), TABLE_SIZE - 1)


@numba.njit(inline="always")
def _negative_targets(word, negative_alias, negative, targets, labels, state):
    """The centre word (label 1) then `negative` draws from the alias table (label 0), skipping the word."""
    targets[0] = word
    labels[0] = 1.0
    n_targets = 1
    for _ in range(negative):
        target, state = _draw(negative_alias, state)
        if target != word:
            targets[n_targets] = target
            labels[n_targets] = 0.0
            n_targets += 1
    return n_targets, state


@numba.njit(inline="always")
def _localise(targets, n_targets, hot_first, n_hot, hot_base):
    """Send the targets in the hot range [hot_first, hot_first + n_hot) to this piece's copies of
    those rows, at hot_base + (row - hot_first)."""
    for t in range(n_targets):
        local = targets[t] - hot_first
        if 0 <= local < n_hot:
            targets[t] = hot_base + local


@numba.njit(inline="always")
def _open_hot(out, hot_first, n_hot, hot_base):
    """Copy the hot rows to this piece's rows out[hot_base:hot_base + n_hot]; returns a snapshot (H, d)."""
    snapshot = out[hot_first:hot_first + n_hot].copy()
    out[hot_base:hot_base + n_hot] = snapshot
    return snapshot


@numba.njit(inline="always")
def _sync_hot(out, hot_first, n_hot, hot_base, snapshot):
    """Add what this piece changed in its copies (copy - snapshot) to the hot rows, lock-free as
    every Hogwild write; the copies and the snapshot then start again from the merged rows."""
    dim = out.shape[1]
    for j in range(n_hot):
        for k in range(dim):
            merged = out[hot_first + j, k] + out[hot_base + j, k] - snapshot[j, k]
            out[hot_first + j, k] = merged
            out[hot_base + j, k] = merged
            snapshot[j, k] = merged


@numba.njit(inline="always")
def _subsample(ids, start, end, keep_prob, buffer, state):
    """Copy the kept words of sentence ids[start:end] into `buffer`; returns (count, state)."""
    kept = 0
    for position in range(start, end):
        word = ids[position]
        state = _next(state)
        if keep_prob[word] < 1.0 and np.float32((state >> np.uint64(40)) * (1.0 / 16777216.0)) >= keep_prob[word]:
            continue
        buffer[kept] = word
        kept += 1
    return kept, state


@numba.njit(inline="always", fastmath=True)
def _dots(inputs, c, outputs, n_targets, scores):
    """scores[c, :n_targets] = outputs[:n_targets] @ inputs[c], four targets per pass over the
    dimensions (one load of inputs[c] feeds four independent sums)."""
    dim = inputs.shape[1]
    t = 0
    while t + 4 <= n_targets:
        f0 = f1 = f2 = f3 = np.float32(0.0)
        for k in range(dim):
            x = inputs[c, k]
            f0 += x * outputs[t, k]
            f1 += x * outputs[t + 1, k]
            f2 += x * outputs[t + 2, k]
            f3 += x * outputs[t + 3, k]
        scores[c, t], scores[c, t + 1], scores[c, t + 2], scores[c, t + 3] = f0, f1, f2, f3
        t += 4
    while t < n_targets:
        f = np.float32(0.0)
        for k in range(dim):
            f += inputs[c, k] * outputs[t, k]
        scores[c, t] = f
        t += 1


@numba.njit(inline="always", fastmath=True)
def _add_combination(matrix, row, rows, weights, n_rows):
    """matrix[row] += weights[:n_rows] @ rows[:n_rows], up to four rows per read-modify-write of matrix[row]."""
    dim = matrix.shape[1]
    i = 0
    while i + 4 <= n_rows:
        g0, g1, g2, g3 = weights[i], weights[i + 1], weights[i + 2], weights[i + 3]
        for k in range(dim):
            matrix[row, k] += g0 * rows[i, k] + g1 * rows[i + 1, k] + g2 * rows[i + 2, k] + g3 * rows[i + 3, k]
        i += 4
    rest = n_rows - i  # the last 1-3 rows in one more pass, not one pass each
    if rest == 3:
        g0, g1, g2 = weights[i], weights[i + 1], weights[i + 2]
        for k in range(dim):
            matrix[row, k] += g0 * rows[i, k] + g1 * rows[i + 1, k] + g2 * rows[i + 2, k]
    elif rest == 2:
        g0, g1 = weights[i], weights[i + 1]
        for k in range(dim):
            matrix[row, k] += g0 * rows[i, k] + g1 * rows[i + 1, k]
    elif rest == 1:
        g0 = weights[i]
        for k in range(dim):
            matrix[row, k] += g0 * rows[i, k]


@numba.njit(inline="always", fastmath=True)
def _add_combination_pair(matrix, row0, row1, rows, weights0, weights1, n_rows):
    """matrix[row0] += weights0 @ rows and matrix[row1] += weights1 @ rows in one pass: each load
    of `rows` feeds both. The same row twice gets both updates (each element's two
    read-modify-writes stay in order: the compiler cannot assume the rows differ)."""
    dim = matrix.shape[1]
    i = 0
    while i + 4 <= n_rows:
        g0, g1, g2, g3 = weights0[i], weights0[i + 1], weights0[i + 2], weights0[i + 3]
        h0, h1, h2, h3 = weights1[i], weights1[i + 1], weights1[i + 2], weights1[i + 3]
        for k in range(dim):
            r0, r1, r2, r3 = rows[i, k], rows[i + 1, k], rows[i + 2, k], rows[i + 3, k]
            matrix[row0, k] += g0 * r0 + g1 * r1 + g2 * r2 + g3 * r3
            matrix[row1, k] += h0 * r0 + h1 * r1 + h2 * r2 + h3 * r3
        i += 4
    while i < n_rows:
        g0, h0 = weights0[i], weights1[i]
        for k in range(dim):
            r0 = rows[i, k]
            matrix[row0, k] += g0 * r0
            matrix[row1, k] += h0 * r0
        i += 1


@numba.njit(inline="always", fastmath=True)
def _dots_pair(inputs, c, outputs, n_targets, scores):
    """scores[c:c+2, :n_targets] = inputs[c:c+2] @ outputs[:n_targets].T: two inputs by four
    targets per pass over the dimensions (six loads feed eight sums)."""
    dim = inputs.shape[1]
    t = 0
    while t + 4 <= n_targets:
        a0 = a1 = a2 = a3 = b0 = b1 = b2 = b3 = np.float32(0.0)
        for k in range(dim):
            x, y = inputs[c, k], inputs[c + 1, k]
            o0, o1, o2, o3 = outputs[t, k], outputs[t + 1, k], outputs[t + 2, k], outputs[t + 3, k]
            a0 += x * o0
            a1 += x * o1
            a2 += x * o2
            a3 += x * o3
            b0 += y * o0
            b1 += y * o1
            b2 += y * o2
            b3 += y * o3
        scores[c, t], scores[c, t + 1], scores[c, t + 2], scores[c, t + 3] = a0, a1, a2, a3
        scores[c + 1, t], scores[c + 1, t + 1], scores[c + 1, t + 2], scores[c + 1, t + 3] = b0, b1, b2, b3
        t += 4
    while t < n_targets:
        a0 = b0 = np.float32(0.0)
        for k in range(dim):
            o0 = outputs[t, k]
            a0 += inputs[c, k] * o0
            b0 += inputs[c + 1, k] * o0
        scores[c, t], scores[c + 1, t] = a0, b0
        t += 1


@numba.njit(inline="always", fastmath=True)
def _gradients(scores, row, labels, n_targets, lr, sigmoid, log_sigmoid, saturated_update=True):
    """scores[row, :n_targets] from logits to lr * (label - sigmoid(logit)); returns their loss.

    Beyond +-MAX_EXP the sigmoid saturates: a wrong prediction there still updates in negative
    sampling, and nothing updates on a Huffman path (`saturated_update=False`), as in word2vec.c."""
    loss = 0.0
    for t in range(n_targets):
        f = scores[row, t]
        label = labels[t]
        if f > MAX_EXP:
            scores[row, t] = (label - 1.0) * lr if saturated_update else 0.0
            loss += 0.0 if label > 0.5 else MAX_EXP
        elif f < -MAX_EXP:
            scores[row, t] = label * lr if saturated_update else 0.0
            loss += MAX_EXP if label > 0.5 else 0.0
        else:
            index = _table_index(f)
            scores[row, t] = (label - sigmoid[index]) * lr
            loss += -log_sigmoid[index] if label > 0.5 else -log_sigmoid[TABLE_SIZE - 1 - index]
    return loss


@numba.njit(inline="always", fastmath=True)
def _gather_rows(matrix, rows, n_rows, into):
    """into[:n_rows] = matrix[rows[:n_rows]]."""
    dim = matrix.shape[1]
    for i in range(n_rows):
        row = rows[i]  # a local index: read inside the loop, it would be reloaded per element
        for k in range(dim):
            into[i, k] = matrix[row, k]


@numba.njit(inline="always", fastmath=True)
def _dots_at(vector, matrix, rows, n_rows, scores):
    """scores[:n_rows] = matrix[rows[:n_rows]] @ vector, four rows per pass over `vector`, read
    in place (no copy: each row is used once)."""
    dim = vector.shape[0]
    t = 0
    while t + 4 <= n_rows:
        r0, r1, r2, r3 = rows[t], rows[t + 1], rows[t + 2], rows[t + 3]
        f0 = f1 = f2 = f3 = np.float32(0.0)
        for k in range(dim):
            x = vector[k]
            f0 += x * matrix[r0, k]
            f1 += x * matrix[r1, k]
            f2 += x * matrix[r2, k]
            f3 += x * matrix[r3, k]
        scores[t], scores[t + 1], scores[t + 2], scores[t + 3] = f0, f1, f2, f3
        t += 4
    while t < n_rows:
        row = rows[t]
        f = np.float32(0.0)
        for k in range(dim):
            f += vector[k] * matrix[row, k]
        scores[t] = f
        t += 1


@numba.njit(inline="always", fastmath=True)
def _predict_many(hidden, out, targets, labels, n_targets, lr, grad_hidden, scores, sigmoid, log_sigmoid,
                  saturated_update=True):
    """targets[:n_targets] (with their labels) predicted from one hidden vector as a block: all
    logits first, then one pass per target row that both reads it into the hidden gradient and
    updates it, so a target drawn twice sees the block's starting weights in its logit (a Huffman
    path's nodes are distinct: word2vec.c's node-by-node order, without each dot product waiting
    on the previous node's update). Adds the hidden gradient to `grad_hidden`, updates the target
    rows of `out`; returns the loss. scores: (1, >= n_targets) scratch."""
    dim = hidden.shape[0]
    _dots_at(hidden, out, targets, n_targets, scores[0])  # logits (T,)
    loss = _gradients(scores, 0, labels, n_targets, lr, sigmoid, log_sigmoid, saturated_update)
    for t in range(n_targets):
        target = targets[t]
        g = scores[0, t]
        for k in range(dim):
            grad_hidden[k] += g * out[target, k]
            out[target, k] += g * hidden[k]
    return loss


@numba.njit(inline="always", fastmath=True)
def _skipgram_center(syn0, out, input_rows, low, high, position, targets, labels, n_targets, use_negative, lr,
                     inputs, outputs, context_rows, scores, sigmoid, log_sigmoid):
    """All contexts of one centre word predict its targets at once (pWord2Vec's mini-batch).

    input_rows[low:high] minus `position` are the contexts' rows; targets[:n_targets] the output rows
    (the centre word and its negatives when `use_negative`, else its Huffman path, where a
    saturated logit makes no update as in word2vec.c) with their labels. The rows
    are loaded once into `inputs` (C, d) and `outputs` (T, d), the (C, T) logits are one small
    matrix product, and both sides are updated from the same gradients. The products are
    register-blocked: logits two contexts by four targets per pass, updates two rows by up to
    four source rows per pass (skip-gram 1.2x the kernel speed of one row by four: BENCHMARKS.md,
    word embeddings, second rework). `context_rows`: (>= C,) scratch. Returns (loss, predictions).
    """
    dim = syn0.shape[1]
    n_contexts = 0
    for other in range(low, high):
        if other != position:
            context = input_rows[other]  # a local index: read inside the loop, it would be reloaded per element
            context_rows[n_contexts] = context
            for k in range(dim):
                inputs[n_contexts, k] = syn0[context, k]
            n_contexts += 1
    _gather_rows(out, targets, n_targets, outputs)
    c = 0
    while c + 2 <= n_contexts:  # logits (C, T)
        _dots_pair(inputs, c, outputs, n_targets, scores)
        c += 2
    if c < n_contexts:
        _dots(inputs, c, outputs, n_targets, scores)
    loss = 0.0
    for c in range(n_contexts):  # scores (C, T) -> lr * (label - sigmoid)
        loss += _gradients(scores, c, labels, n_targets, lr, sigmoid, log_sigmoid, use_negative)
    c = 0
    while c + 2 <= n_contexts:  # contexts: += g (C, T) @ outputs (T, d)
        _add_combination_pair(syn0, context_rows[c], context_rows[c + 1], outputs, scores[c], scores[c + 1],
                              n_targets)
        c += 2
    if c < n_contexts:
        _add_combination(syn0, context_rows[c], outputs, scores[c], n_targets)
    t = 0
    while t + 2 <= n_targets:  # targets: += g.T (T, C) @ inputs (C, d)
        _add_combination_pair(out, targets[t], targets[t + 1], inputs, scores[:, t], scores[:, t + 1], n_contexts)
        t += 2
    if t < n_targets:
        _add_combination(out, targets[t], inputs, scores[:, t], n_contexts)
    return loss, n_contexts * n_targets


@numba.njit(inline="always", fastmath=True)
def _cbow_center(syn0, out, input_rows, low, high, position, targets, labels, n_targets, use_negative, cbow_mean,
                 lr, hidden, grad_hidden, scores, sigmoid, log_sigmoid):
    """The mean (or sum) of the contexts' rows input_rows[low:high] minus `position` predicts the centre word:
    targets[:n_targets] with their labels (its negatives or its Huffman path, filled by the
    caller); the hidden gradient goes back to every context row. Returns (loss, predictions)."""
    dim = syn0.shape[1]
    hidden[:] = 0.0
    for other in range(low, high):
        if other != position:
            context = input_rows[other]  # a local index: read inside the loop, it is reloaded per element (5.6x slower)
            for k in range(dim):
                hidden[k] += syn0[context, k]
    if cbow_mean:
        inverse = np.float32(1.0 / (high - low - 1))
        for k in range(dim):
            hidden[k] *= inverse
    grad_hidden[:] = 0.0
    loss = _predict_many(hidden, out, targets, labels, n_targets, lr, grad_hidden, scores, sigmoid, log_sigmoid,
                         use_negative)
    for other in range(low, high):
        if other != position:
            context = input_rows[other]
            for k in range(dim):
                syn0[context, k] += grad_hidden[k]
    return loss, n_targets


@numba.njit(fastmath=True)
def _train_run(syn0, out_neg, out_hs, ids, sentence_ends, first, last, keep_prob, negative_table, points,
               codes, code_lengths, skipgram, use_negative, window, negative, cbow_mean, lr_start, lr_end,
               total_words, words_before, seed, hot_rows, in_rows, out_rows, sigmoid, log_sigmoid):
    """Train sentences first..last-1 of the chunk (one piece). Its `hot_rows` most used input and
    output rows (the most frequent words' rows, the Huffman nodes nearest the root) are trained
    in its own copies past the in_rows / out_rows real ones, merged back every SYNC_WORDS words
    and at its end (run_pieces)."""
    dim = syn0.shape[1]
    out = out_neg if use_negative else out_hs
    n_hot = min(hot_rows, out_rows)
    hot_first = 0 if use_negative else out_rows - n_hot  # word ids follow frequency, node ids depth
    hot_base = out_rows + numba.get_thread_id() * n_hot  # this thread's rows past the real ones
    snapshot = _open_hot(out, hot_first, n_hot, hot_base)
    n_hot_in = min(hot_rows, in_rows)
    hot_base_in = in_rows + numba.get_thread_id() * n_hot_in
    snapshot_in = _open_hot(syn0, 0, n_hot_in, hot_base_in)
    grad_hidden = np.zeros(dim, np.float32)
    hidden = np.zeros(dim, np.float32)
    longest = 0
    for sentence in range(first, last):
        start = sentence_ends[sentence - 1] if sentence > 0 else 0
        longest = max(longest, sentence_ends[sentence] - start)
    buffer = np.empty(max(longest, 1), np.int32)  # the kept words of a sentence
    input_rows = np.empty(max(longest, 1), np.int64)  # their rows of syn0 (hot ones: this piece's copies)
    max_targets = max(negative + 1, points.shape[1])
    targets = np.zeros(max_targets, np.int64)
    labels = np.zeros(max_targets, np.float32)
    inputs = np.zeros((2 * window, dim), np.float32)  # (C, d) context rows of one centre word
    context_rows = np.zeros(2 * window, np.int64)  # (C,) their row numbers
    outputs = np.zeros((max_targets, dim), np.float32)  # (T, d) its target rows
    scores = np.zeros((2 * window, max_targets), np.float32)  # (C, T) lr * (label - sigmoid)
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
            _sync_hot(out, hot_first, n_hot, hot_base, snapshot)
            _sync_hot(syn0, 0, n_hot_in, hot_base_in, snapshot_in)
            since_sync = 0
        kept, state = _subsample(ids, start, end, keep_prob, buffer, state)
        trained += kept
        for position in range(kept):
            input_rows[position] = buffer[position] + (hot_base_in if buffer[position] < n_hot_in else 0)
        for position in range(kept):
            word = buffer[position]
            state = _next(state)
            reach = window - _below(state, window)  # reduced window in [1, window]
            low = max(position - reach, 0)
            high = min(position + reach + 1, kept)
            if high - low <= 1:
                continue
            if use_negative:
                n_targets, state = _negative_targets(word, negative_table, negative, targets, labels, state)
            else:
                n_targets = code_lengths[word]
                for depth in range(n_targets):
                    targets[depth] = points[word, depth]
                    labels[depth] = 1.0 - codes[word, depth]  # word2vec.c predicts 1 - code
            _localise(targets, n_targets, hot_first, n_hot, hot_base)
            if use_negative:
                for t in range(n_targets):
                    prefetch_row(out, targets[t])
            if position + window + 1 < kept:
                prefetch_row(syn0, input_rows[position + window + 1])  # the next word to enter a window
            if skipgram:
                part, count = _skipgram_center(syn0, out, input_rows, low, high, position, targets, labels,
                                               n_targets, use_negative, lr, inputs, outputs, context_rows, scores,
                                               sigmoid, log_sigmoid)
            else:
                part, count = _cbow_center(syn0, out, input_rows, low, high, position, targets, labels, n_targets,
                                           use_negative, cbow_mean, lr, hidden, grad_hidden, scores, sigmoid,
                                           log_sigmoid)
            loss += part
            terms += count
    _sync_hot(out, hot_first, n_hot, hot_base, snapshot)
    _sync_hot(syn0, 0, n_hot_in, hot_base_in, snapshot_in)
    return loss, terms, trained


PIECE_WORDS = 10_000  # words per independently seeded piece of a chunk (gensim's job size)
HOT_ROWS = 256  # input and output rows each piece trains in its own copies when threads share the weights
SYNC_WORDS = 1_000  # and merges them back this often (words), so that the others see them soon


@numba.njit(parallel=True, cache=True)
def _train_pieces(syn0, out_neg, out_hs, ids, sentence_ends, bounds, keep_prob, negative_table, points, codes,
                  code_lengths, skipgram, use_negative, window, negative, cbow_mean, lr_start, lr_end, seed,
                  hot_rows, in_rows, out_rows, sigmoid, log_sigmoid, losses, terms, trained):
    """Train the pieces bounds[p]..bounds[p+1] (sentence ranges) in parallel; results per piece."""
    n_pieces = bounds.shape[0] - 1
    total_words = sentence_ends[sentence_ends.shape[0] - 1]
    for piece in prange(n_pieces):
        first = bounds[piece]
        before = 0
        if first > 0:
            before = sentence_ends[first - 1]
        piece_seed = np.uint64(seed) * np.uint64(0x9E3779B97F4A7C15) + np.uint64(piece + 1)
        result = _train_run(syn0, out_neg, out_hs, ids, sentence_ends, first, bounds[piece + 1], keep_prob,
                            negative_table, points, codes, code_lengths, skipgram, use_negative, window, negative,
                            cbow_mean, lr_start, lr_end, total_words, before, piece_seed, hot_rows, in_rows,
                            out_rows, sigmoid, log_sigmoid)
        losses[piece] = result[0]
        terms[piece] = result[1]
        trained[piece] = result[2]


def train_chunk(syn0: np.ndarray, out_neg: np.ndarray, out_hs: np.ndarray, ids: np.ndarray,
                sentence_ends: np.ndarray, keep_prob: np.ndarray, negative_table: np.ndarray, points: np.ndarray,
                codes: np.ndarray, code_lengths: np.ndarray, skipgram: bool, use_negative: bool, window: int,
                negative: int, cbow_mean: bool, lr_start: float, lr_end: float, seed: int,
                n_threads: int) -> tuple[float, int, int]:
    """Train on one chunk with `n_threads` threads; returns (loss sum, predictions, words kept).

    syn0 (V, d) input vectors; out_neg (V, d) negative-sampling output vectors; out_hs (V-1, d)
    Huffman inner-node vectors (either output may be a (1, d) dummy when unused); negative_table
    (V,) int64 the alias table of nlprec.data.embedding_tables.alias_table. ids (N,) int32
    word ids; sentence_ends (S,) int64 exclusive ends. lr falls linearly from lr_start to lr_end
    across the chunk. Weights are updated in place. Pieces and threads: `run_pieces`.
    """
    return run_pieces(_train_pieces, (syn0, out_neg, out_hs, ids), (0, 1 if use_negative else 2), sentence_ends,
                      (keep_prob, negative_table, points, codes, code_lengths, skipgram, use_negative, window,
                       negative, cbow_mean, lr_start, lr_end, seed), n_threads)


def run_pieces(train_pieces, leading: tuple, hot_at: tuple[int, ...], sentence_ends: np.ndarray, trailing: tuple,
               n_threads: int) -> tuple[float, int, int]:
    """Run a parallel kernel over the chunk's pieces; returns (loss sum, predictions, words kept).

    The kernel is called as train_pieces(*leading, sentence_ends, bounds, *trailing, hot_rows,
    *rows, sigmoid, log_sigmoid, losses, terms, trained), with bounds (pieces + 1,) sentence
    indices cutting the chunk into pieces of about PIECE_WORDS words of whole sentences (each with
    its own random stream, so the draws do not depend on the thread count) and (pieces,) result
    arrays. `n_threads` threads take the pieces one at a time: a thread that is slowed down does
    not hold the others back.

    With more than one thread, each matrix leading[i] for i in hot_at (`rows` rows) is trained in
    a copy with HOT_ROWS more rows per thread, where each piece keeps its own copies of the most
    used rows and merges them back every SYNC_WORDS words (at 10,000, the staler rows raised the
    training loss by about 0.008 on IMDb; at 1,000 it is that of plain Hogwild): Hogwild threads writing the same rows make the
    cores take the cache lines from each other on every update (on the developers' EPYC, two
    threads were slower than one for CBOW/HS: BENCHMARKS.md, word embeddings, hot rows). One
    thread updates them in place, so its result stays bit-for-bit repeatable.
    """
    if len(sentence_ends) == 0:
        return 0.0, 0, 0
    n_pieces = max(1, min(int(sentence_ends[-1]) // PIECE_WORDS, len(sentence_ends)))
    targets = np.arange(1, n_pieces) * (sentence_ends[-1] / n_pieces)  # (pieces-1,) word offsets
    bounds = np.concatenate([[0], np.searchsorted(sentence_ends, targets), [len(sentence_ends)]]).astype(np.int64)
    losses = np.zeros(n_pieces, np.float64)
    terms = np.zeros(n_pieces, np.int64)
    trained = np.zeros(n_pieces, np.int64)
    previous_threads = numba.get_num_threads()
    threads = max(1, min(n_threads, numba.config.NUMBA_NUM_THREADS))
    hot_rows = HOT_ROWS if threads > 1 else 0
    work = list(leading)
    for i in hot_at if hot_rows else ():
        work[i] = np.concatenate([leading[i], np.empty((threads * hot_rows, leading[i].shape[1]), leading[i].dtype)])
    numba.set_num_threads(threads)
    try:
        with numba.parallel_chunksize(1):
            train_pieces(*work, sentence_ends, bounds, *trailing, hot_rows, *(len(leading[i]) for i in hot_at),
                         SIGMOID_TABLE, LOG_SIGMOID_TABLE, losses, terms, trained)
    finally:
        numba.set_num_threads(previous_threads)
        for i in hot_at if hot_rows else ():
            leading[i][:] = work[i][:len(leading[i])]
    return float(losses.sum()), int(terms.sum()), int(trained.sum())
