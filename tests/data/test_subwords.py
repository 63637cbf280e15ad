"""Character n-grams and their buckets: the paper's example, UTF-8 characters, fastText's
hash bit for bit (a plain-Python reference here, and fastText itself when installed)."""

from __future__ import annotations

import numpy as np
import pytest

from nlprec.data.subwords import SubwordSpec, fnv1a, ngram_buckets, ngrams, subword_rows
from nlprec.errors import NlprecError


def reference_hash(text: str) -> int:
    """fastText's Dictionary::hash, written out: FNV-1a over signed bytes cast to uint32."""
    h = 2166136261
    for byte in text.encode("utf-8"):
        signed = byte - 256 if byte >= 128 else byte
        h = ((h ^ (signed & 0xFFFFFFFF)) * 16777619) & 0xFFFFFFFF
    return h


def test_paper_example_where_with_trigrams():
    assert ngrams("where", SubwordSpec(3, 3, 10)) == ["<wh", "whe", "her", "ere", "re>"]


def test_ngrams_are_over_characters_not_bytes():
    grams = ngrams("née", SubwordSpec(2, 2, 10))
    assert grams == ["<n", "né", "ée", "e>"]
    offsets, buckets = ngram_buckets(["née"], SubwordSpec(2, 2, 1_000_003))
    assert buckets.tolist() == [reference_hash(g) % 1_000_003 for g in grams]


@pytest.mark.parametrize("text", ["<the>", "é", "日本", "😀>", "a"])
def test_hash_matches_fasttext_rule(text):
    assert fnv1a(text.encode("utf-8")) == reference_hash(text)


def test_buckets_follow_fasttext_order_for_many_words():
    spec = SubwordSpec(2, 5, 2_000_000)
    words = ["cat", "naïve", "über", "日本語", "x"]
    offsets, buckets = ngram_buckets(words, spec)
    for index, word in enumerate(words):
        expected = [reference_hash(g) % spec.buckets for g in ngrams(word, spec)]
        assert buckets[offsets[index]:offsets[index + 1]].tolist() == expected


def test_single_bracket_is_never_an_ngram():
    assert ngrams("ab", SubwordSpec(1, 1, 10)) == ["a", "b"]


def test_subword_rows_put_the_word_row_first():
    spec = SubwordSpec(3, 4, 100)
    offsets, rows = subword_rows(["cat", "dog"], spec, np.array([0, -1]), n_words=2)
    _, buckets = ngram_buckets(["cat", "dog"], spec)
    assert rows[offsets[0]] == 0 and offsets[1] - offsets[0] == 1 + len(ngrams("cat", spec))
    assert rows[offsets[1]:offsets[2]].tolist() == (2 + buckets[len(ngrams("cat", spec)):]).tolist()


def test_no_ngrams_when_max_n_is_zero():
    offsets, buckets = ngram_buckets(["cat"], SubwordSpec(3, 0, 0))
    assert offsets.tolist() == [0, 0] and len(buckets) == 0


@pytest.mark.parametrize("spec, message", [
    (dict(min_n=5, max_n=3), r"--min-n \(5\) is above --max-n \(3\)"),
    (dict(min_n=3, max_n=6, buckets=0), "--buckets must be >= 1"),
    (dict(min_n=0, max_n=6), "--min-n must be >= 1"),
])
def test_bad_specs_are_one_line_errors(spec, message):
    with pytest.raises(NlprecError, match=message) as error:
        SubwordSpec(**spec)
    assert "\n" not in str(error.value)


def test_buckets_match_fasttext_itself(tmp_path):
    import fasttext

    corpus = tmp_path / "c.txt"
    corpus.write_text("\n".join(["the cat sat on the mat café naïve 日本語"] * 20), encoding="utf-8")
    model = fasttext.train_unsupervised(str(corpus), model="skipgram", dim=4, epoch=1, minCount=1, minn=2, maxn=5,
                                        bucket=5000, thread=1, verbose=0)
    spec = SubwordSpec(2, 5, 5000)
    for word in ["café", "日本語", "unseen", "naïveté"]:
        _, ids = model.get_subwords(word)
        theirs = [i - len(model.words) for i in ids if i >= len(model.words)]
        assert ngram_buckets([word], spec)[1].tolist() == theirs
