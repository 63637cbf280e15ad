"""The compiled ASCII scan equals the regex tokenizer + pandas.factorize (word_corpus's use of it: test_word_corpus.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from nlprec.data.ascii_kernels import factorize_ascii
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
