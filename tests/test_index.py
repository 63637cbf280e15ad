"""Exact and FAISS nearest-neighbour search, exclusions, recall, save/load, analogies."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from nlprec.errors import NlprecError
from nlprec.index import COSMUL_EPS, VectorIndex, analogy_scores, analogy_top_k
from nlprec.vectors import Vectors


def random_vectors(n: int = 400, dim: int = 16, seed: int = 0, clusters: int = 0) -> Vectors:
    """Gaussian vectors; with `clusters`, drawn around that many centres (as real embeddings are)."""
    rng = np.random.default_rng(seed)
    matrix = rng.standard_normal((n, dim))
    if clusters:
        matrix = 3 * rng.standard_normal((clusters, dim))[rng.integers(0, clusters, n)] + matrix
    return Vectors([f"w{i}" for i in range(n)], matrix)


def brute_force(vectors: Vectors, queries: np.ndarray, k: int, exclude: list[list[int]]):
    """Cosine top-k by the definition, one query at a time."""
    unit = vectors.matrix / np.linalg.norm(vectors.matrix, axis=1, keepdims=True)
    ids, scores = [], []
    for query, skip in zip(queries, exclude):
        cos = unit @ (query / np.linalg.norm(query))
        cos[skip] = -np.inf
        best = np.argsort(-cos, kind="stable")[:k]
        ids.append(best)
        scores.append(cos[best])
    return np.array(scores), np.array(ids)


def planted_analogies() -> Vectors:
    """man : king :: woman : queen (and France : Paris :: Italy : Rome) planted among random words."""
    rng = np.random.default_rng(1)
    dim = 32
    royal, female, capital, france, italy = (rng.standard_normal(dim) for _ in range(5))
    person = rng.standard_normal(dim)
    named = {
        "man": person, "woman": person + female, "king": person + royal, "queen": person + royal + female,
        "France": france, "Paris": france + capital, "Italy": italy, "Rome": italy + capital,
    }
    noise = 0.1 * rng.standard_normal((len(named), dim))
    keys = list(named) + [f"w{i}" for i in range(200)]
    matrix = np.vstack([np.array(list(named.values())) + noise, rng.standard_normal((200, dim))])
    return Vectors(keys, matrix)


# --- search -----------------------------------------------------------------------------------


def test_flat_index_equals_brute_force_cosine_with_exclusions():
    vectors = random_vectors()
    queries = np.random.default_rng(5).standard_normal((7, vectors.dim)).astype(np.float32)
    exclude = [[], [0, 1, 2], [3], [], [399], [10, 11], [4]]
    scores, ids = VectorIndex(vectors).search(queries, 10, exclude)
    want_scores, want_ids = brute_force(vectors, queries, 10, exclude)
    assert scores.shape == ids.shape == (7, 10) and ids.dtype == np.int64
    np.testing.assert_array_equal(ids, want_ids)
    np.testing.assert_allclose(scores, want_scores, atol=1e-5)


def test_exclusion_removes_ids_and_still_returns_k():
    vectors = random_vectors(n=50)
    queries = vectors.matrix[:3]
    _, plain = VectorIndex(vectors).search(queries, 5)
    exclude = [set(plain[0, :3].tolist()), set(), {int(plain[2, 0])}]
    _, ids = VectorIndex(vectors).search(queries, 5, exclude)
    for row, skip in zip(ids, exclude):
        assert len(row) == 5 and not skip & set(row.tolist())
    np.testing.assert_array_equal(ids[1], plain[1])
    np.testing.assert_array_equal(ids[0, :2], plain[0, 3:])


def test_asking_for_more_than_exist_pads_with_minus_one():
    vectors = random_vectors(n=4)
    scores, ids = VectorIndex(vectors).search(vectors.matrix[:1], 6, [[0]])
    assert ids[0, :3].tolist() != [-1] * 3 and ids[0, 3:].tolist() == [-1] * 3
    assert np.isneginf(scores[0, 3:]).all()
    assert [len(row) for row in vectors.most_similar(["w0", "w1"], k=10)] == [3, 3]


@pytest.mark.parametrize("kind, options", [("hnsw", {}), ("ivf", {"nlist": 16, "nprobe": 4})])
def test_approximate_recall_is_reported_and_high(kind, options):
    vectors = random_vectors(n=2000, clusters=20)
    recall = VectorIndex(vectors, kind, **options).recall_at_k(k=10, n_queries=200)
    assert 0.9 <= recall <= 1.0
    assert VectorIndex(vectors).recall_at_k(k=10, n_queries=50) == 1.0


def test_ivf_recall_falls_with_fewer_probes():
    vectors = random_vectors(n=2000)  # no cluster structure: a hard case for IVF
    low = VectorIndex(vectors, "ivf", nlist=32, nprobe=1).recall_at_k(k=10, n_queries=200)
    high = VectorIndex(vectors, "ivf", nlist=32, nprobe=32).recall_at_k(k=10, n_queries=200)
    assert 0.0 <= low < high and high == pytest.approx(1.0)


@pytest.mark.parametrize("kind", ["flat", "ivf", "hnsw"])
def test_save_load_round_trip(tmp_path, kind):
    vectors = random_vectors(n=500, clusters=10)
    index = VectorIndex(vectors, kind, ef_search=64)
    index.save(tmp_path / "idx")
    loaded = VectorIndex.load(tmp_path / "idx")
    assert loaded.config == index.config and loaded.keys == vectors.keys and loaded.matches(vectors)
    before = index.search(vectors.matrix[:20], 5, [[i] for i in range(20)])
    after = loaded.search(vectors.matrix[:20], 5, [[i] for i in range(20)])
    np.testing.assert_array_equal(before[1], after[1])
    np.testing.assert_allclose(before[0], after[0])
    assert vectors.most_similar("w3", index=loaded) == vectors.most_similar("w3", index=index)


def test_load_rejects_incomplete_directory(tmp_path):
    with pytest.raises(NlprecError, match="not a saved index .missing index.json."):
        VectorIndex.load(tmp_path)


def test_ip_metric_uses_raw_inner_products():
    vectors = Vectors(["a", "b", "c"], [[1.0, 0.0], [10.0, 1.0], [0.5, 0.5]])
    scores, ids = VectorIndex(vectors, metric="ip").search(np.array([[1.0, 0.0]]), 2)
    assert ids[0].tolist() == [1, 0] and scores[0].tolist() == [10.0, 1.0]


def test_bad_config_and_query_dim():
    vectors = random_vectors(n=10)
    with pytest.raises(NlprecError, match="index kind 'lsh'"):
        VectorIndex(vectors, "lsh")
    with pytest.raises(NlprecError, match="nprobe=0"):
        VectorIndex(vectors, "ivf", nprobe=0)
    with pytest.raises(NlprecError, match="queries have dim 3, the index has dim 16"):
        VectorIndex(vectors).search(np.ones((1, 3)), 2)


def test_missing_faiss_gives_install_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "faiss", None)
    with pytest.raises(ImportError, match="pip install faiss-cpu"):
        VectorIndex(random_vectors(n=10))


# --- Vectors.most_similar and analogies, searched through this module -------------------------


def test_most_similar_is_batched_exact_and_excludes_the_query():
    vectors = random_vectors()
    results = vectors.most_similar(["w0", "w5"], k=8)
    want_scores, want_ids = brute_force(vectors, vectors.matrix[[0, 5]], 8, [[0], [5]])
    for rows, ids, scores in zip(results, want_ids, want_scores):
        assert [w for w, _ in rows] == [vectors.keys[i] for i in ids]
        np.testing.assert_allclose([s for _, s in rows], scores, atol=1e-5)
    single = vectors.most_similar("w0", k=8)  # a list per query word, also for one str
    assert len(single) == 1 and [w for w, _ in single[0]] == [w for w, _ in results[0]]
    assert vectors.most_similar("w0", k=8, index=VectorIndex(vectors))[0][0][0] == results[0][0][0]


def test_unknown_query_word_and_foreign_index_raise():
    vectors = planted_analogies()
    with pytest.raises(NlprecError, match="unknown word 'qeen'.*did you mean: queen"):
        vectors.most_similar(["king", "qeen"])
    with pytest.raises(NlprecError, match="unknown word 'kng'"):
        vectors.analogy("man", "kng", "woman")
    with pytest.raises(NlprecError, match="differ from these"):
        vectors.most_similar("king", index=VectorIndex(random_vectors(n=20, dim=32)))


@pytest.mark.parametrize("method", ["3cosadd", "3cosmul"])
def test_planted_analogies_are_solved(method):
    vectors = planted_analogies()
    assert vectors.analogy("man", "king", "woman", method=method)[0][0] == "queen"
    answers = vectors.batch_analogy([("man", "king", "woman"), ("France", "Paris", "Italy")], k=3, method=method)
    assert [rows[0][0] for rows in answers] == ["queen", "Rome"]
    assert all(len(rows) == 3 and not {"France", "Paris", "Italy"} & {w for w, _ in rows} for rows in answers[1:])


def test_3cosadd_with_index_matches_exact():
    vectors = planted_analogies()
    exact = vectors.analogy("man", "king", "woman", k=5)
    indexed = vectors.analogy("man", "king", "woman", k=5, index=VectorIndex(vectors))
    assert [w for w, _ in indexed] == [w for w, _ in exact]
    np.testing.assert_allclose([s for _, s in indexed], [s for _, s in exact], atol=1e-5)


def test_analogy_scores_follow_the_formulas():
    unit = random_vectors(n=30, dim=8).unit_matrix()
    a, b, c = unit[1], unit[2], unit[3]
    triple = np.array([[1, 2, 3]])
    target = (b - a + c) / np.linalg.norm(b - a + c)
    np.testing.assert_allclose(analogy_scores(unit, triple, "3cosadd")[0], unit @ target, atol=1e-5)
    shifted = lambda v: (unit @ v + 1) / 2  # noqa: E731 - the paper's cos' in [0, 1]
    cosmul = shifted(b) * shifted(c) / (shifted(a) + COSMUL_EPS)
    np.testing.assert_allclose(analogy_scores(unit, triple, "3cosmul")[0], cosmul, rtol=1e-5)


def test_analogy_top_k_excludes_groups_and_blocks_agree():
    unit = random_vectors(n=60, dim=8).unit_matrix()
    triples = np.random.default_rng(2).integers(0, 60, size=(50, 3))
    groups = (np.arange(60) // 2) * 2  # rows 2i and 2i+1 share a group, named by its first row
    scores, ids = analogy_top_k(unit, triples, 4, groups=groups, batch_size=7)
    for row, triple in zip(ids, triples):
        assert not set(groups[row].tolist()) & set(groups[triple].tolist())
    np.testing.assert_array_equal(ids, analogy_top_k(unit, triples, 4, groups=groups)[1])
    assert (np.diff(scores, axis=1) <= 0).all()
