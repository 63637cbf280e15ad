"""Vectors: validation, unknown-word messages, and the npz / word2vec binary / text formats."""

from __future__ import annotations

import json

import numpy as np
import pytest

from nlprec.errors import NlprecError
from nlprec.vectors import Vectors, sidecar_path


def make_vectors(n: int = 300, dim: int = 16, seed: int = 0, meta: dict | None = None) -> Vectors:
    """Random vectors over distinct words, a few of them non-ASCII."""
    rng = np.random.default_rng(seed)
    keys = [f"w{i}" for i in range(n - 3)] + ["café", "naïve", "日本"]
    return Vectors(keys, rng.standard_normal((n, dim)), meta)


def one_line_error(excinfo: pytest.ExceptionInfo) -> str:
    message = str(excinfo.value)
    assert "\n" not in message
    return message


# --- validation and lookups -------------------------------------------------------------------


def test_constructor_converts_and_indexes():
    vectors = Vectors(["a", "b"], [[1, 2], [3, 4]], {"seed": 1})
    assert vectors.matrix.dtype == np.float32 and vectors.matrix.shape == (2, 2)
    assert len(vectors) == 2 and vectors.dim == 2 and "b" in vectors and "c" not in vectors
    assert vectors.key_to_index == {"a": 0, "b": 1} and vectors.index("b") == 1
    np.testing.assert_array_equal(vectors["b"], [3, 4])
    np.testing.assert_array_equal(vectors.vector("a"), [1, 2])
    assert vectors.meta == {"seed": 1}


@pytest.mark.parametrize("keys, matrix, expected", [
    (["new york"], [[1.0]], "word 'new york' at row 0 contains whitespace"),
    (["tab\tword"], [[1.0]], "contains whitespace"),
    (["a", ""], [[1.0], [2.0]], "word at row 1 is ''"),
    (["a", "b", "a"], [[1.0], [2.0], [3.0]], "word 'a' appears twice, at rows 0 and 2"),
    (["a", "b"], [[1.0]], "2 words but 1 matrix rows"),
    (["a"], [1.0], "must be 2-D"),
    (["a", "b"], [[1.0], [np.nan]], "word 'b' (row 1) has NaN or infinite values"),
])
def test_bad_input_is_one_line_error(keys, matrix, expected):
    with pytest.raises(NlprecError) as excinfo:
        Vectors(keys, np.array(matrix))
    assert expected in one_line_error(excinfo)


def test_non_ascii_spaces_are_legal_inside_words():
    assert "a\u00a0b" in Vectors(["a\u00a0b"], [[1.0]])  # fastText has such words


def test_unknown_word_suggests_close_words():
    vectors = Vectors(["movie", "house", "movies", "mice", "zebra"], np.eye(5))
    with pytest.raises(NlprecError) as excinfo:
        vectors.index("mvoie")
    message = one_line_error(excinfo)
    assert message.startswith("unknown word 'mvoie' (not in the 5-word vocabulary); did you mean: movie")
    assert "zebra" not in message
    with pytest.raises(NlprecError, match=r"^unknown word 'qqqqqqqq' \(not in the 5-word vocabulary\)$"):
        vectors["qqqqqqqq"]


def test_unit_matrix_is_normalised_and_keeps_zero_rows():
    vectors = Vectors(["a", "b"], [[3.0, 4.0], [0.0, 0.0]])
    unit = vectors.unit_matrix()
    np.testing.assert_allclose(unit, [[0.6, 0.8], [0.0, 0.0]], rtol=1e-6)
    assert unit.dtype == np.float32 and vectors.unit_matrix() is unit
    with pytest.raises(ValueError):
        vectors.matrix[0, 0] = 1.0  # read-only, so the cached unit matrix cannot go stale


def test_plain_vectors_answer_their_vocabulary_only():
    vectors = Vectors(["movie", "house", "movies"], [[3.0, 4.0], [0.0, 2.0], [3.0, 4.5]])
    np.testing.assert_array_equal(vectors.vectors_for(["house", "movie"]), vectors.matrix[[1, 0]])
    assert vectors.vectors_for([]).shape == (0, 2)
    with pytest.raises(NlprecError, match=r"^unknown word 'mvoie' .*did you mean: movie"):
        vectors.vectors_for(["house", "mvoie", "qqq"])  # the first unknown word, as `index` says it
    assert vectors.unanswerable(["qqq", "house", "mvoie"]) == ["qqq", "mvoie"]
    assert vectors.with_words(["qqq", "house"]) is vectors  # nothing to compose
    assert vectors.subwords is False
    assert vectors.similarity("movie", "house") == pytest.approx(0.8, abs=1e-6)
    assert vectors.similarity("movie", "movie") == pytest.approx(1.0, abs=1e-6)
    with pytest.raises(NlprecError, match="unknown word 'qqq'"):
        vectors.similarity("movie", "qqq")


# --- round trips ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["v.npz", "v.bin", "v.vec", "v.txt"])
def test_round_trip_is_exact(tmp_path, name):
    vectors = make_vectors(meta={"config": {"dim": 16}, "seed": 3, "sha256": "ab" * 32})
    path = vectors.save(tmp_path / name)
    loaded = Vectors.load(path)
    assert loaded.keys == vectors.keys
    np.testing.assert_array_equal(loaded.matrix, vectors.matrix)  # text keeps 9 digits: exact
    assert loaded.meta == vectors.meta


def test_explicit_format_overrides_suffix(tmp_path):
    vectors = make_vectors(n=5)
    vectors.save(tmp_path / "vectors.w2v", format="bin")
    loaded = Vectors.load(tmp_path / "vectors.w2v", format="bin")
    np.testing.assert_array_equal(loaded.matrix, vectors.matrix)


def test_word2vec_formats_keep_meta_in_a_sidecar(tmp_path):
    path = tmp_path / "v.bin"
    make_vectors(n=5, meta={"seed": 7}).save(path)
    assert json.loads(sidecar_path(path).read_text()) == {"seed": 7}
    make_vectors(n=5).save(path)  # no meta now: the stale sidecar must go
    assert not sidecar_path(path).exists() and Vectors.load(path).meta == {}


def test_binary_layout_matches_word2vec_c(tmp_path):
    path = Vectors(["ab", "c"], [[1.0, 2.0], [3.0, 4.0]]).save(tmp_path / "v.bin")
    expected = (b"2 2\n" + b"ab " + np.array([1, 2], "<f4").tobytes() + b"\n"
                + b"c " + np.array([3, 4], "<f4").tobytes() + b"\n")
    assert path.read_bytes() == expected


def test_text_layout(tmp_path):
    path = Vectors(["ab", "c"], [[1.0, 0.5], [-3.0, 1e-5]]).save(tmp_path / "v.vec")
    assert path.read_text() == "2 2\nab 1 0.5\nc -3 9.99999975e-06\n"


def test_reads_fasttext_vec_with_trailing_spaces_and_crlf(tmp_path):
    path = tmp_path / "ft.vec"
    path.write_bytes(b"2 3\nfoo 0.1 0.2 0.3 \r\n</s> -1 0 1e-3 \n")
    loaded = Vectors.load(path)
    assert loaded.keys == ["foo", "</s>"]
    np.testing.assert_allclose(loaded.matrix, [[0.1, 0.2, 0.3], [-1, 0, 1e-3]], rtol=1e-6)


def test_binary_round_trip_at_real_vocabulary_size(tmp_path):
    rng = np.random.default_rng(0)
    vectors = Vectors([f"word{i}" for i in range(71_291)], rng.standard_normal((71_291, 100)))
    loaded = Vectors.load(vectors.save(tmp_path / "big.bin"))
    assert loaded.keys == vectors.keys
    np.testing.assert_array_equal(loaded.matrix, vectors.matrix)


# --- interoperability with gensim -------------------------------------------------------------


@pytest.mark.parametrize("name, binary", [("v.bin", True), ("v.vec", False)])
def test_gensim_reads_our_files_with_same_neighbours(tmp_path, name, binary):
    from gensim import models as gensim_models

    vectors = make_vectors()
    path = vectors.save(tmp_path / name)
    kv = gensim_models.KeyedVectors.load_word2vec_format(str(path), binary=binary)
    assert list(kv.index_to_key) == vectors.keys
    np.testing.assert_array_equal(kv.vectors, vectors.matrix)
    queries = ["w0", "w17", "café"]
    ours = vectors.most_similar(queries, k=10)
    for query, neighbours in zip(queries, ours):
        theirs = kv.most_similar(query, topn=10)
        assert [w for w, _ in neighbours] == [w for w, _ in theirs]
        np.testing.assert_allclose([s for _, s in neighbours], [s for _, s in theirs], atol=1e-5)
        assert vectors.similarity(query, "w1") == pytest.approx(float(kv.similarity(query, "w1")), abs=1e-6)


@pytest.mark.parametrize("name, binary", [("g.bin", True), ("g.vec", False)])
def test_we_read_gensim_files(tmp_path, name, binary):
    from gensim import models as gensim_models

    vectors = make_vectors()
    kv = gensim_models.KeyedVectors(vector_size=vectors.dim)
    kv.add_vectors(vectors.keys, vectors.matrix)
    kv.save_word2vec_format(str(tmp_path / name), binary=binary)  # binary: no "\n" after vectors
    loaded = Vectors.load(tmp_path / name)
    assert loaded.keys == vectors.keys
    np.testing.assert_allclose(loaded.matrix, vectors.matrix, rtol=1e-6, atol=1e-7)


# --- damaged and foreign files ----------------------------------------------------------------


def test_truncated_binary_names_counts(tmp_path):
    path = make_vectors(n=50, dim=8).save(tmp_path / "vectors.bin")
    data = path.read_bytes()
    path.write_bytes(data[: data.index(b"\nw20 ") + 10])  # 20 whole rows, then part of a word and floats
    with pytest.raises(NlprecError) as excinfo:
        Vectors.load(path)
    assert one_line_error(excinfo) == f"{path} is truncated: expected 50 vectors of dim 8, found 20"


def test_truncated_text_names_counts(tmp_path):
    path = make_vectors(n=50, dim=8).save(tmp_path / "vectors.vec")
    lines = path.read_text().split("\n")
    path.write_text("\n".join(lines[:11]) + "\n" + lines[11][:20])
    with pytest.raises(NlprecError, match=r"is truncated: expected 50 vectors of dim 8, found 10$"):
        Vectors.load(path)


@pytest.mark.parametrize("name", ["vectors.bin", "vectors.vec"])
def test_bad_header(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(b"hello world\nfoo 1 2\n")
    with pytest.raises(NlprecError) as excinfo:
        Vectors.load(path)
    assert one_line_error(excinfo) == f"{path} line 1: expected '<count> <dim>' header, got 'hello world'"


def test_empty_binary_file(tmp_path):
    (tmp_path / "v.bin").write_bytes(b"")
    with pytest.raises(NlprecError, match="line 1: expected '<count> <dim>' header, got an empty file"):
        Vectors.load(tmp_path / "v.bin")


def test_text_row_with_wrong_value_count_names_line(tmp_path):
    path = tmp_path / "v.vec"
    path.write_text("3 2\na 1 2\nb 1 2 3\nc 1 2\n")
    with pytest.raises(NlprecError, match=r"v.vec line 3: expected 2 values after the word.*got 3$"):
        Vectors.load(path)


def test_text_non_number_names_line(tmp_path):
    path = tmp_path / "v.vec"
    path.write_text("2 2\na 1 2\nb 1 x\n")
    with pytest.raises(NlprecError, match=r"v.vec line 3: expected a number, got 'x'"):
        Vectors.load(path)


def test_more_rows_than_header(tmp_path):
    path = tmp_path / "v.vec"
    path.write_text("1 2\na 1 2\nb 1 2\n")
    with pytest.raises(NlprecError, match=r"line 3: the header says 1 vectors but more rows follow"):
        Vectors.load(path)


def test_non_utf8_word(tmp_path):
    path = tmp_path / "v.bin"
    payload = np.ones(2, "<f4").tobytes()
    path.write_bytes(b"2 2\nok " + payload + b"\ncaf\xe9 " + payload + b"\n")
    with pytest.raises(NlprecError) as excinfo:
        Vectors.load(path)
    message = one_line_error(excinfo)
    assert "byte 16: word b'caf\\xe9' is not UTF-8" in message and "unicode_errors='replace'" in message
    assert Vectors.load(path, unicode_errors="replace").keys == ["ok", "caf\ufffd"]


def test_missing_file_and_unknown_suffix(tmp_path):
    with pytest.raises(NlprecError, match="does not exist"):
        Vectors.load(tmp_path / "nope.bin")
    (tmp_path / "v.pkl").write_bytes(b"x")
    with pytest.raises(NlprecError, match=r"cannot tell the vectors format of .*v\.pkl.*\.npz, \.bin, \.vec or \.txt"):
        Vectors.load(tmp_path / "v.pkl")
    with pytest.raises(NlprecError, match="cannot tell the vectors format"):
        make_vectors(n=3).save(tmp_path / "v.pkl")


def test_npz_without_our_fields_is_rejected(tmp_path):
    np.savez(tmp_path / "other.npz", weights=np.ones(3))
    with pytest.raises(NlprecError, match="not an nlprec vectors file"):
        Vectors.load(tmp_path / "other.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(NlprecError, match="not a readable .npz vectors file"):
        Vectors.load(tmp_path / "junk.npz")
