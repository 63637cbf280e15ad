"""The compiled ASCII scan equals the regex tokenizer + pandas.factorize, and corpora encode the same either way."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from nlprec.data.ascii_kernels import factorize_ascii
from nlprec.data.corpus import encode_corpus
from nlprec.data.tokenize import RegexTokenizer, token_chunk

ASCII_TEXT = st.text(alphabet="abzAZ09'- \t\n.,!", max_size=300)


def regex_path(text: str) -> tuple[np.ndarray, list[str], np.ndarray]:
    chunk = token_chunk(text if text.endswith("\n") else text + "\n", RegexTokenizer())
    codes, uniques = pd.factorize(chunk.tokens)
    return codes, list(uniques), chunk.line_lengths


@settings(max_examples=300, deadline=None)
@given(ASCII_TEXT)
def test_scan_equals_regex_and_factorize(text):
    codes, distinct, line_lengths = factorize_ascii(text.encode("ascii"))
    expected_codes, expected_distinct, expected_lines = regex_path(text)
    assert list(distinct) == expected_distinct
    assert np.array_equal(codes, expected_codes) and codes.dtype == np.int32
    assert np.array_equal(line_lengths, expected_lines)


def test_many_distinct_tokens_grow_the_table():
    rng = np.random.default_rng(0)
    words = rng.integers(0, 300_000, 400_000)  # far past the first table's 65,536 slots
    text = "\n".join(" ".join(f"w{w}" for w in words[i:i + 8]) for i in range(0, len(words), 8)) + "\n"
    codes, distinct, line_lengths = factorize_ascii(text.encode("ascii"))
    expected_codes, expected_distinct, expected_lines = regex_path(text)
    assert list(distinct) == expected_distinct and len(distinct) > 200_000
    assert np.array_equal(codes, expected_codes) and np.array_equal(line_lengths, expected_lines)


def test_encoding_an_ascii_corpus_does_not_import_pandas(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text("The cat sat on the mat.\nthe dog sat\n" * 20, encoding="ascii")
    code = ("import sys; from nlprec.data.corpus import encode_corpus; "
            f"corpus = encode_corpus({str(path)!r}, min_count=1); "
            "assert 'pandas' not in sys.modules, 'pandas was imported'; print(len(corpus.vocab))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["6"]


def test_corpus_encodes_the_same_through_the_scan_and_the_regex(tmp_path, monkeypatch):
    import nlprec.data.ascii_kernels as kernels
    import nlprec.data.corpus as corpus_module

    scanned_blocks = []
    monkeypatch.setattr(corpus_module, "READ_BLOCK_BYTES", 256)  # many blocks: ASCII ones and two that are not
    scan = kernels.factorize_ascii
    monkeypatch.setattr(kernels, "factorize_ascii", lambda block: scanned_blocks.append(block) or scan(block))
    path = tmp_path / "corpus.txt"
    ascii_lines = ["The cat sat on the mat.", "", "Don't STOP, 2 cats!", "the cat's mat"] * 50
    path.write_text("\n".join(ascii_lines + ["café naïve cat", "Straße the"] + ascii_lines) + "\n", encoding="utf-8")
    scanned = encode_corpus(path, RegexTokenizer(), min_count=1)  # ASCII blocks: the compiled scan
    assert len(scanned_blocks) > 10
    regex = encode_corpus(path, RegexTokenizer(pattern="(?:[a-z0-9']+)"), min_count=1)  # the same tokens by regex
    assert scanned.vocab.words == regex.vocab.words
    assert np.array_equal(scanned.vocab.counts, regex.vocab.counts)
    assert np.array_equal(scanned.ids, regex.ids) and np.array_equal(scanned.sentence_ends, regex.sentence_ends)
