"""Facebook fastText .bin: our writer and reader round-trip, and (with fasttext-wheel) golden
tests that our vectors equal fastText's own `get_word_vector`, seen and unseen words, both ways."""

from __future__ import annotations

import numpy as np
import pytest

from nlprec.errors import NlprecError
from nlprec.fasttext_io import FastTextArgs, is_fasttext_bin, read_fasttext_bin, save_fasttext_bin
from nlprec.subword_vectors import SubwordVectors, load_vectors

WORDS = ["the", "cat", "sat", "café", "</s>"]
ARGS = FastTextArgs(dim=4, window=5, epochs=1, min_count=1, negative=5, model="skipgram", buckets=50, min_n=2,
                    max_n=4, sample=1e-4)


def write_model(path, args=ARGS):
    rng = np.random.default_rng(0)
    input_matrix = rng.standard_normal((len(WORDS) + args.buckets, args.dim)).astype(np.float32)
    output_matrix = rng.standard_normal((len(WORDS), args.dim)).astype(np.float32)
    save_fasttext_bin(path, args, WORDS, np.array([9, 5, 4, 3, 9]), input_matrix, output_matrix, tokens=30)
    return input_matrix


def test_write_then_read_round_trips(tmp_path):
    input_matrix = write_model(tmp_path / "m.bin")
    args, words, counts, read_input, read_output = read_fasttext_bin(tmp_path / "m.bin")
    assert args == ARGS and words == WORDS and counts.tolist() == [9, 5, 4, 3, 9]
    np.testing.assert_array_equal(read_input, input_matrix)
    assert read_output.shape == (5, 4)


def test_end_of_sentence_token_has_no_ngrams(tmp_path):
    input_matrix = write_model(tmp_path / "m.bin")
    vectors = SubwordVectors.load(tmp_path / "m.bin")
    np.testing.assert_allclose(vectors.vector("</s>"), input_matrix[4], rtol=1e-6)
    assert isinstance(load_vectors(tmp_path / "m.bin"), SubwordVectors)  # found by magic number
    assert is_fasttext_bin(tmp_path / "m.bin")


def test_truncated_and_foreign_files_are_one_line_errors(tmp_path):
    write_model(tmp_path / "m.bin")
    data = (tmp_path / "m.bin").read_bytes()
    (tmp_path / "short.bin").write_bytes(data[:200])
    with pytest.raises(NlprecError, match="is truncated"):
        read_fasttext_bin(tmp_path / "short.bin")
    (tmp_path / "old.bin").write_bytes(data[:4] + (11).to_bytes(4, "little") + data[8:])
    with pytest.raises(NlprecError, match="version 11"):
        read_fasttext_bin(tmp_path / "old.bin")
    (tmp_path / "other.bin").write_bytes(b"\x00" * 64)
    with pytest.raises(NlprecError, match="not a fastText .bin model"):
        read_fasttext_bin(tmp_path / "other.bin")


@pytest.fixture(scope="module")
def facebook_model(tmp_path_factory):
    import fasttext

    folder = tmp_path_factory.mktemp("fasttext")
    rng = np.random.default_rng(0)
    vocabulary = ["the", "cat", "dog", "sat", "on", "mat", "café", "naïve", "über", "日本語", "running", "runner"]
    corpus = folder / "corpus.txt"
    corpus.write_text("\n".join(" ".join(rng.choice(vocabulary, 10)) for _ in range(200)), encoding="utf-8")
    model = fasttext.train_unsupervised(str(corpus), model="skipgram", dim=10, epoch=2, minCount=1, minn=2, maxn=5,
                                        bucket=3000, thread=1, verbose=0)
    model.save_model(str(folder / "facebook.bin"))
    return fasttext, model, folder / "facebook.bin"


PROBES = ["cat", "café", "日本語", "</s>", "catz", "runs", "überall", "xyzzy", "naïveté"]


def test_our_reader_gives_fasttexts_vectors(facebook_model):
    _, model, path = facebook_model
    vectors = load_vectors(path)
    assert isinstance(vectors, SubwordVectors) and set(vectors.keys) == set(model.words)
    for word in PROBES:
        np.testing.assert_allclose(vectors.vector(word), model.get_word_vector(word), atol=1e-6, err_msg=word)


def test_fasttext_reads_our_writer(facebook_model, tmp_path):
    fasttext, model, path = facebook_model
    args, words, counts, input_matrix, output_matrix = read_fasttext_bin(path)
    save_fasttext_bin(tmp_path / "ours.bin", args, words, counts, input_matrix, output_matrix, tokens=2000)
    again = fasttext.load_model(str(tmp_path / "ours.bin"))
    for word in PROBES:
        np.testing.assert_allclose(again.get_word_vector(word), model.get_word_vector(word), atol=1e-6)
