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
