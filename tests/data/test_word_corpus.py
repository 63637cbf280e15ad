"""Encoding a word corpus: an ASCII corpus never loads pandas, and the compiled scan and the regex give the same ids."""

from __future__ import annotations

import subprocess
import sys

import numpy as np

from nlprec.data.tokenize import RegexTokenizer
from nlprec.data.word_corpus import encode_corpus


def test_encoding_an_ascii_corpus_does_not_import_pandas(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text("The cat sat on the mat.\nthe dog sat\n" * 20, encoding="ascii")
    code = ("import sys; from nlprec.data.word_corpus import encode_corpus; "
            f"corpus = encode_corpus({str(path)!r}, min_count=1); "
            "assert 'pandas' not in sys.modules, 'pandas was imported'; print(len(corpus.vocab))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["6"]


def test_corpus_encodes_the_same_through_the_scan_and_the_regex(tmp_path, monkeypatch):
    import nlprec.data.ascii_kernels as kernels
    import nlprec.data.word_corpus as corpus_module

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
