"""SubwordVectors: unseen words from n-grams, queries, evaluation words, the .npz format and
the loader that tells the formats apart."""

from __future__ import annotations

import numpy as np
import pytest

from nlprec.data.subwords import SubwordSpec, ngram_buckets
from nlprec.errors import NlprecError
from nlprec.index import VectorIndex
from nlprec.subword_vectors import SubwordVectors, load_vectors
from nlprec.vectors import Vectors

SPEC = SubwordSpec(3, 4, 101)


@pytest.fixture()
def vectors() -> SubwordVectors:
    rng = np.random.default_rng(0)
    words = ["king", "queen", "man", "woman", "kings", "apple"]
    return SubwordVectors(words, rng.standard_normal((6, 8)), rng.standard_normal((101, 8)), SPEC, {"model": "t"})


def test_unseen_word_is_the_mean_of_its_ngram_rows(vectors):
    _, buckets = ngram_buckets(["kingz"], SPEC)
    np.testing.assert_allclose(vectors.vector("kingz"), vectors.ngram_matrix[buckets].mean(0), rtol=1e-6)
    np.testing.assert_array_equal(vectors.vector("king"), vectors.matrix[0])
    assert vectors.vectors_for(["king", "kingz"]).shape == (2, 8)


def test_word_too_short_for_any_ngram_is_a_one_line_error():
    long_grams = SubwordVectors(["king"], np.ones((1, 8)), np.ones((101, 8)), SubwordSpec(5, 6, 101))
    with pytest.raises(NlprecError, match=r"unknown word 'q'.*shorter than the 5-character n-grams"):
        long_grams.vector("q")


def test_unanswerable_lists_only_words_without_ngrams():
    long_grams = SubwordVectors(["king"], np.ones((1, 8)), np.ones((101, 8)), SubwordSpec(5, 6, 101))
    assert long_grams.unanswerable(["king", "q", "kingz", "ab"]) == ["q", "ab"]
    assert long_grams.subwords is True
    with pytest.raises(NlprecError, match=r"unknown word 'q'.*shorter than the 5-character n-grams"):
        long_grams.vectors_for(long_grams.unanswerable(["kingz", "q"]))
    no_grams = SubwordVectors(["king"], np.ones((1, 8)), np.zeros((0, 8)), SubwordSpec(0, 0, 0))
    assert no_grams.unanswerable(["king", "kingz"]) == ["kingz"]


def test_most_similar_agrees_with_the_index_for_vocabulary_words(vectors):
    ours = vectors.most_similar(["king", "apple"], k=3)
    plain = Vectors(vectors.keys, vectors.matrix)
    theirs = plain.most_similar(["king", "apple"], k=3)
    assert [[w for w, _ in row] for row in ours] == [[w for w, _ in row] for row in theirs]
    assert "kingz" not in {w for w, _ in vectors.most_similar("kingz", k=6)[0]}  # only vocabulary answers
    with pytest.raises(NlprecError, match="searched exactly .* pass no index"):
        vectors.most_similar("king", index=VectorIndex(plain))


def test_similarity_composes_unseen_words(vectors):
    king, kingz = vectors.vectors_for(["king", "kingz"])
    cosine = king @ kingz / (np.linalg.norm(king) * np.linalg.norm(kingz))
    assert vectors.similarity("king", "kingz") == pytest.approx(float(cosine), abs=1e-6)


def test_analogy_excludes_the_question_words(vectors):
    answers = [w for w, _ in vectors.analogy("man", "king", "womanz", k=5)]
    assert {"man", "king"}.isdisjoint(answers) and len(answers) == 4  # 6 words minus 2 in the vocabulary
    with pytest.raises(NlprecError, match="expected '3cosadd' or '3cosmul'"):
        vectors.analogy("man", "king", "woman", method="3cosfoo")
    questions = [("man", "king", "womanz"), ("king", "queen", "man")]
    assert vectors.batch_analogy(questions, k=3, method="3cosmul") == [
        vectors.analogy(a, b, c, k=3, method="3cosmul") for a, b, c in questions]


def test_with_words_adds_composable_unseen_words_only(vectors):
    extended = vectors.with_words(["kingz", "q", "king", "kingz", ""])
    assert type(extended) is Vectors and extended.keys == vectors.keys + ["kingz", "q"]
    np.testing.assert_allclose(extended.vector("kingz"), vectors.vector("kingz"))


def test_npz_round_trip_keeps_ngrams_and_meta(tmp_path, vectors):
    path = vectors.save(tmp_path / "v.npz")
    loaded = load_vectors(path)
    assert isinstance(loaded, SubwordVectors) and loaded.spec == SPEC and loaded.meta == {"model": "t"}
    np.testing.assert_array_equal(loaded.vector("kingz"), vectors.vector("kingz"))
    assert type(Vectors.load(path)) is Vectors  # the plain reader still reads it


def test_text_export_keeps_the_vocabulary_only(tmp_path, vectors):
    vectors.save(tmp_path / "v.vec")
    loaded = load_vectors(tmp_path / "v.vec")
    assert type(loaded) is Vectors and loaded.keys == vectors.keys
    with pytest.raises(NlprecError, match="without n-grams"):
        SubwordVectors.load(tmp_path / "v.vec")


def test_word2vec_binary_is_not_mistaken_for_fasttext(tmp_path, vectors):
    Vectors(vectors.keys, vectors.matrix).save(tmp_path / "v.bin")
    assert type(load_vectors(tmp_path / "v.bin")) is Vectors


def test_wrong_ngram_matrix_shape_is_refused():
    with pytest.raises(NlprecError, match=r"n-gram matrix has shape \(5, 8\), expected \(101, 8\)"):
        SubwordVectors(["a"], np.zeros((1, 8)), np.zeros((5, 8)), SPEC)
