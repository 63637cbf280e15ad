"""Subsampling probabilities, the negative table and Huffman codes, against their definitions."""

import numpy as np

from nlprec.data.embedding_tables import huffman_codes, keep_probabilities, negative_table


def test_keep_probability_is_mikolovs_formula():
    counts = np.array([1_000_000, 1000, 10])
    sample = 1e-3
    threshold = sample * counts.sum()
    expected = np.minimum((np.sqrt(counts / threshold) + 1) * threshold / counts, 1.0)
    np.testing.assert_allclose(keep_probabilities(counts, sample), expected, rtol=1e-6)
    assert keep_probabilities(counts, 0).tolist() == [1.0, 1.0, 1.0]


def test_negative_table_follows_count_to_the_three_quarters():
    counts = np.array([800, 100, 27, 1])
    table = negative_table(counts, size=1_000_000)
    observed = np.bincount(table, minlength=4) / len(table)
    expected = counts ** 0.75 / (counts ** 0.75).sum()
    np.testing.assert_allclose(observed, expected, atol=1e-5)


def test_huffman_codes_are_a_prefix_free_optimal_code():
    counts = np.array([45, 13, 12, 16, 9, 5])[np.argsort([-45, -13, -12, -16, -9, -5], kind="stable")]
    points, codes, lengths = huffman_codes(counts)
    words = ["".join(map(str, codes[w, :lengths[w]])) for w in range(len(counts))]
    assert len(set(words)) == len(words)
    assert not any(a != b and b.startswith(a) for a in words for b in words)
    # The classic CLRS example: total cost 224 for counts 45, 16, 13, 12, 9, 5.
    assert int((lengths * counts).sum()) == 224
    root = len(counts) - 2
    assert all(points[w, 0] == root for w in range(len(counts)))
    assert points.max() <= root


def test_alias_table_gives_count_to_the_three_quarters_exactly():
    from nlprec.data.embedding_tables import ALIAS_COIN_BITS, alias_table

    counts = np.array([1000, 300, 300, 50, 7, 1, 1])
    table = alias_table(counts)
    threshold = (table & 0xFFFFFFFF) / 2**ALIAS_COIN_BITS  # (V,) chance a slot keeps its own word
    alias = table >> 32
    mass = threshold.copy()  # each slot has mass 1 (of V): its word keeps threshold, its alias the rest
    np.add.at(mass, alias, 1.0 - threshold)
    expected = counts ** 0.75 / (counts ** 0.75).sum()
    np.testing.assert_allclose(mass / len(counts), expected, atol=1e-6)


def test_kernel_draws_follow_the_alias_table():
    import numba

    from nlprec.data.embedding_tables import alias_table
    from nlprec.nn.embedding_kernels import _draw

    @numba.njit
    def draws(table, n):
        out = np.zeros(table.shape[0], np.int64)
        state = np.uint64(12345)
        for _ in range(n):
            word, state = _draw(table, state)
            out[word] += 1
        return out

    counts = np.array([5000, 1200, 400, 90, 10, 3])
    seen = draws(alias_table(counts), 400_000) / 400_000
    np.testing.assert_allclose(seen, counts ** 0.75 / (counts ** 0.75).sum(), atol=3e-3)
