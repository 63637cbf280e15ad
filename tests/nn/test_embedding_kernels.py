"""The word2vec kernel's blocked arithmetic against plain numpy: the register-blocked products
for every tail length, and one skip-gram centre (duplicate contexts and targets included)."""

from __future__ import annotations

import numpy as np
import pytest

from nlprec.nn import embedding_kernels as kernels

DIM = 19  # not a multiple of any vector width: the compiled loops' tails are exercised too


def _rng_matrix(rows: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((rows, DIM)).astype(np.float32)


@pytest.mark.parametrize("n_rows", range(10))
def test_add_combination_adds_the_weighted_rows(n_rows):
    matrix, rows = _rng_matrix(3, 0), _rng_matrix(max(n_rows, 1), 1)
    weights = np.linspace(-1, 1, max(n_rows, 1)).astype(np.float32)
    expected = matrix.copy()
    expected[2] += weights[:n_rows] @ rows[:n_rows]
    kernels._add_combination(matrix, 2, rows, weights, n_rows)
    np.testing.assert_allclose(matrix, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("n_rows", range(10))
@pytest.mark.parametrize("same_row", [False, True])
def test_add_combination_pair_equals_two_single_updates(n_rows, same_row):
    matrix, rows = _rng_matrix(4, 2), _rng_matrix(max(n_rows, 1), 3)
    weights = np.random.default_rng(4).standard_normal((2, max(n_rows, 1))).astype(np.float32)
    second = 1 if same_row else 3
    expected = matrix.copy()
    expected[1] += weights[0, :n_rows] @ rows[:n_rows]
    expected[second] += weights[1, :n_rows] @ rows[:n_rows]
    kernels._add_combination_pair(matrix, 1, second, rows, weights[0], weights[1], n_rows)
    np.testing.assert_allclose(matrix, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("n_targets", range(10))
def test_dots_pair_and_dots_are_the_logits(n_targets):
    inputs, outputs = _rng_matrix(3, 5), _rng_matrix(max(n_targets, 1), 6)
    scores = np.zeros((3, max(n_targets, 1)), np.float32)
    kernels._dots_pair(inputs, 0, outputs, n_targets, scores)
    kernels._dots(inputs, 2, outputs, n_targets, scores)
    np.testing.assert_allclose(scores[:, :n_targets], inputs @ outputs[:n_targets].T, rtol=1e-5, atol=1e-5)


def _tabled_gradients(logits: np.ndarray, labels: np.ndarray, lr: float, saturated_update: bool) -> np.ndarray:
    """lr * (label - sigmoid) from the kernel's sigmoid table, with its rules beyond +-MAX_EXP."""
    index = np.minimum(((logits + kernels.MAX_EXP) * (kernels.TABLE_SIZE / kernels.MAX_EXP / 2.0)).astype(np.int64),
                       kernels.TABLE_SIZE - 1)
    inside = np.abs(logits) <= kernels.MAX_EXP
    sigmoid = np.where(inside, kernels.SIGMOID_TABLE[np.clip(index, 0, kernels.TABLE_SIZE - 1)],
                       (logits > 0).astype(np.float32))
    gradient = (labels - sigmoid) * lr
    return np.where(inside | saturated_update, gradient, 0.0).astype(np.float32)


@pytest.mark.parametrize("use_negative", [True, False])
def test_one_skipgram_centre_matches_numpy(use_negative):
    """Contexts [2, 3, 4, 3, 5] (3 twice) of the centre at position 2 predict targets [2, 1, 1, 5]
    (1 twice): every duplicate gets both its updates, computed from the rows as they were."""
    syn0, out = _rng_matrix(6, 7) * 0.5, _rng_matrix(6, 8) * 0.5
    buffer = np.array([2, 3, 2, 4, 3, 5, 3], np.int32)
    targets = np.array([2, 1, 1, 5], np.int64)
    labels = np.array([1, 0, 0, 0], np.float32)
    contexts = np.array([2, 3, 4, 3, 5])  # buffer[0:6] without position 2
    inputs, outputs = syn0[contexts], out[targets]  # (C, d), (T, d) as they were
    gradient = _tabled_gradients(inputs @ outputs.T, labels, 0.1, use_negative)  # (C, T)
    expected_syn0, expected_out = syn0.copy(), out.copy()
    np.add.at(expected_syn0, contexts, gradient @ outputs)
    np.add.at(expected_out, targets, gradient.T @ inputs)

    scratch = dict(inputs=np.zeros((10, DIM), np.float32), outputs=np.zeros((4, DIM), np.float32),
                   context_rows=np.zeros(10, np.int64), scores=np.zeros((10, 4), np.float32))
    _, predictions = kernels._skipgram_center(
        syn0, out, buffer, 0, 6, 2, targets, labels, 4, use_negative, np.float32(0.1), scratch["inputs"],
        scratch["outputs"], scratch["context_rows"], scratch["scores"], kernels.SIGMOID_TABLE,
        kernels.LOG_SIGMOID_TABLE)
    assert predictions == 5 * 4
    np.testing.assert_allclose(syn0, expected_syn0, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out, expected_out, rtol=1e-5, atol=1e-6)


def test_a_pieces_hot_copies_merge_back_what_it_changed():
    """A piece trains copies of the hot rows (past the real rows) and adds its changes back: a
    change another thread made to the shared row meanwhile is kept, not overwritten."""
    out = np.vstack([_rng_matrix(5, 9), np.zeros((2, DIM), np.float32)])  # 5 real rows, 2 for the copies
    before = out[:5].copy()
    snapshot = kernels._open_hot(out, 3, 2, 5)  # rows 3 and 4 are hot
    np.testing.assert_array_equal(out[5:7], before[3:5])
    targets = np.array([4, 0, 3], np.int64)
    kernels._localise(targets, 3, 3, 2, 5)
    assert targets.tolist() == [6, 0, 5]
    out[5] += 1.0  # this piece's update of row 3, in its copy
    out[3] -= 2.0  # another thread's update of the shared row 3 meanwhile
    kernels._sync_hot(out, 3, 2, 5, snapshot)  # merged, and the copies start again from the result
    np.testing.assert_allclose(out[3], before[3] - 1.0, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(out[4], before[4])
    np.testing.assert_array_equal(out[5:7], out[3:5])
    np.testing.assert_array_equal(snapshot, out[3:5])


@pytest.mark.parametrize("use_negative", [True, False])
def test_two_threads_train_the_hot_rows_and_leave_the_shapes(use_negative):
    """With two threads the most used rows live in per-thread copies during a piece; afterwards
    the model's own matrices hold the training (the output rows start at zero) and keep their shapes."""
    from nlprec.data.embedding_tables import build_tables

    rng = np.random.default_rng(0)
    counts = np.sort(rng.integers(1, 500, 300))[::-1].astype(np.int64)  # (V,) ids by frequency
    ids = rng.choice(300, 60_000, p=counts / counts.sum()).astype(np.int32)  # (N,)
    ends = np.arange(20, 60_001, 20, dtype=np.int64)  # (S,) sentences of 20 words
    tables = build_tables(counts, 1e-3, with_negative=use_negative, with_huffman=not use_negative)
    syn0 = (rng.random((300, DIM), np.float32) - 0.5) / DIM  # (V, d)
    out = np.zeros((300 if use_negative else 299, DIM), np.float32)
    dummy = np.zeros((1, DIM), np.float32)
    start = syn0.copy()
    kernels.train_chunk(syn0, out if use_negative else dummy, dummy if use_negative else out, ids, ends,
                        tables.keep_prob, tables.negative_alias, tables.points, tables.codes, tables.code_lengths,
                        True, use_negative, 5, 5, True, 0.025, 1e-4, 1, 2)
    assert syn0.shape == (300, DIM) and out.shape[0] in (299, 300)
    hot = slice(0, 5) if use_negative else slice(-5, None)  # the most frequent words, the root-most nodes
    assert np.all(np.abs(out[hot]).sum(axis=1) > 0)
    assert np.all(np.abs(syn0[:5] - start[:5]).sum(axis=1) > 0)
    assert np.isfinite(syn0).all() and np.isfinite(out).all()
