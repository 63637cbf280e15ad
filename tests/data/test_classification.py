"""Classification data: readers and their errors, vectorised encoding, embedding init, batches."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nlprec.data.classification import (ClassificationData, Encoded, WordEncoder, embedding_init, pad_rows,
                                        read_class_files, read_labelled, read_table, stratified_split, truncate)
from nlprec.data.subwords import SubwordSpec
from nlprec.data.tokenize import RegexTokenizer
from nlprec.errors import NlprecError
from nlprec.subword_vectors import SubwordVectors
from nlprec.vectors import Vectors


def test_tsv_keeps_tabs_of_the_text_and_u0085_inside_lines(tmp_path):
    path = tmp_path / "d.tsv"
    path.write_bytes("pos\tgood\u0085film\there\nneg\tbad one\n\n".encode("utf-8"))
    data = read_table(path)
    assert data.labels == ["pos", "neg"]
    assert data.texts == ["good\u0085film\there", "bad one"]
    assert len(data.sha256) == 64


def test_columns_by_name_read_the_header_and_csv_quoting(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text('id,text,label\n1,"hello, world",a\n2,bye,b\n', encoding="utf-8")
    data = read_table(path, label_col="label", text_col="text")
    assert data.texts == ["hello, world", "bye"] and data.labels == ["a", "b"]
    with pytest.raises(NlprecError, match=r"no column named 'sentiment'.*id, text, label"):
        read_table(path, label_col="sentiment", text_col="text")


@pytest.mark.parametrize("content, message", [
    ("pos\tfine\nneg no tab here\n", r"d.tsv: line 2 has 1 field\(s\), no column 1"),
    ("pos\tfine\nneg\t   \n", r"d.tsv: line 2 has an empty text"),
    ("\tfine\n", r"d.tsv: line 1 has an empty label"),
])
def test_bad_lines_name_file_and_line(tmp_path, content, message):
    path = tmp_path / "d.tsv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(NlprecError, match=message):
        read_table(path)


def test_class_files_latin1_and_errors(tmp_path):
    (tmp_path / "p.txt").write_bytes(b"caf\xe9 good\nnice\n")
    (tmp_path / "n.txt").write_bytes(b"awful\n")
    data = read_labelled(class_files=[f"pos={tmp_path / 'p.txt'}", f"neg={tmp_path / 'n.txt'}"], encoding="latin-1")
    assert data.texts == ["caf\xe9 good", "nice", "awful"] and data.labels == ["pos", "pos", "neg"]
    with pytest.raises(NlprecError, match="LABEL=PATH"):
        read_labelled(class_files=["nolabel"])
    with pytest.raises(NlprecError, match="not both"):
        read_labelled(tmp_path / "p.txt", class_files=[f"pos={tmp_path / 'p.txt'}"])
    with pytest.raises(NlprecError, match="line 1 .*not valid utf-8"):
        read_class_files([("pos", tmp_path / "p.txt")])


def test_encoding_matches_per_text_tokenization_and_truncates():
    texts = ["The cat sat, the cat!", "dog", "???", "A cat and a dog don't"]
    encoder = WordEncoder.fit(texts, RegexTokenizer(), max_len=3)
    assert encoder.words[:5] == ["<pad>", "<unk>", "cat", "a", "dog"]  # by count, then alphabetically
    encoded = encoder.encode(texts + ["zebra cat"])
    index = {word: i for i, word in enumerate(encoder.words)}
    for i, text in enumerate(texts):
        expected = [index[w] for w in RegexTokenizer().tokenize(text)][:3]
        assert encoded.ids[encoded.offsets[i]:encoded.offsets[i + 1]].tolist() == expected
    assert encoded.lengths.tolist() == [3, 1, 0, 3, 2]
    assert encoded.ids[encoded.offsets[4]:].tolist() == [1, index["cat"]]  # unknown word -> 1


def test_subset_truncate_and_pad_rows_are_consistent():
    encoded = Encoded(np.arange(2, 12), np.array([0, 4, 5, 10]))
    sub = encoded.subset(np.array([2, 0]))
    assert sub.ids.tolist() == [7, 8, 9, 10, 11, 2, 3, 4, 5]
    assert truncate(encoded, 2).ids.tolist() == [2, 3, 6, 7, 8]
    tokens, lengths = pad_rows(encoded, np.array([1, 0]))
    assert tokens.tolist() == [[6, 0, 0, 0], [2, 3, 4, 5]] and lengths.tolist() == [1, 4]
    empty = Encoded(np.zeros(0, np.int64), np.array([0, 0]))
    tokens, lengths = pad_rows(empty, np.array([0]))
    assert tokens.tolist() == [[0]] and lengths.tolist() == [1]  # a text without tokens still has one step


def test_stratified_split_is_seeded_and_keeps_class_shares():
    labels = np.array([0] * 90 + [1] * 10)
    train, valid = stratified_split(labels, 0.2, seed=3)
    assert sorted(np.concatenate([train, valid]).tolist()) == list(range(100))
    assert (labels[valid] == 0).sum() == 18 and (labels[valid] == 1).sum() == 2
    again = stratified_split(labels, 0.2, seed=3)[1]
    assert np.array_equal(valid, again) and not np.array_equal(valid, stratified_split(labels, 0.2, seed=4)[1])


def test_embedding_init_uses_vectors_composes_ngrams_and_counts_the_rest():
    words = ["<pad>", "<unk>", "cat", "cats", "zz"]
    rng = np.random.default_rng(0)
    plain = Vectors(["cat", "dog"], rng.standard_normal((2, 4)))
    matrix, coverage = embedding_init(words, plain, seed=0)
    assert np.array_equal(matrix[2], plain.matrix[0]) and np.all(matrix[0] == 0)
    assert coverage == {"words": 3, "found": 1, "composed": 0, "random": 2}
    assert np.array_equal(matrix, embedding_init(words, plain, seed=0)[0])
    spec = SubwordSpec(5, 6, 50)  # "<zz>" has no 5-gram, "<cats>" has
    subword = SubwordVectors(["cat", "dog"], plain.matrix, rng.standard_normal((50, 4)), spec)
    matrix, coverage = embedding_init(words, subword, seed=0)
    assert coverage == {"words": 3, "found": 1, "composed": 1, "random": 1}
    assert np.allclose(matrix[3], subword.vector("cats"))


def test_batches_cover_each_example_once_are_length_bucketed_and_seeded():
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 50, 1000)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    encoded = Encoded(rng.integers(2, 100, offsets[-1]), offsets)
    labels = rng.integers(0, 3, 1000)
    data = ClassificationData(encoded, labels, batch_size=32, seed=1, valid=(encoded.subset(np.arange(10)),
                                                                             labels[:10]))
    loader = data.train_dataloader(epoch=0)
    batches = list(loader)
    assert len(batches) == len(loader) == data.steps_per_epoch()
    seen = torch.cat([b["labels"] for b in batches])
    assert len(seen) == 1000 and sorted(seen.tolist()) == sorted(labels.tolist())
    padding = sum(int((b["tokens"] == 0).sum()) for b in batches)
    assert padding < 0.2 * lengths.sum()  # unsorted batches would pad about half
    same = list(data.train_dataloader(epoch=0))
    assert all(torch.equal(a["tokens"], b["tokens"]) for a, b in zip(batches, same))
    other = list(data.train_dataloader(epoch=1))
    assert not all(torch.equal(a["labels"], b["labels"]) for a, b in zip(batches, other))
    assert sum(len(b["labels"]) for b in data.val_dataloader()) == 10
