"""Tokenizers: the chunked whole-file path equals line-by-line reading; encodings, gzip, columns, sentencepiece.

Real data is copied only into tmp_path, never into the repository.
"""

from __future__ import annotations

import gzip
import itertools
from pathlib import Path

import numpy as np
import pytest

from nlprec.data.tokenize import (
    RegexTokenizer,
    SentencePieceTokenizer,
    iter_lines,
    iter_text_chunks,
    token_chunk,
)
from nlprec.errors import NlprecError


def _read_chunks(path: Path, tokenizer: RegexTokenizer, **options) -> tuple[list[str], list[int]]:
    tokens, lengths = [], []
    for text in iter_text_chunks(path, **options):
        chunk = token_chunk(text, tokenizer)
        assert chunk.line_lengths.dtype == np.int64 and chunk.line_lengths.sum() == len(chunk.tokens)
        tokens += chunk.tokens.tolist()
        lengths += chunk.line_lengths.tolist()
    return tokens, lengths


def test_regex_tokenizer_defaults() -> None:
    assert RegexTokenizer().tokenize("Don't STOP, 2 cats!\tcafé") == ["don't", "stop", "2", "cats", "caf"]
    assert RegexTokenizer(r"\S+", lowercase=False).tokenize("Hi there\n!") == ["Hi", "there", "!"]


@pytest.mark.parametrize("pattern, reason", [
    (r"(a)+", "capturing groups"), (r"[^ ]+", "matches a newline"), (r"\s", "matches a newline"),
    (r"[a-", "not a valid"),
])
def test_regex_tokenizer_rejects_bad_patterns(pattern: str, reason: str) -> None:
    with pytest.raises(NlprecError, match=reason):
        RegexTokenizer(pattern)


def test_chunks_equal_line_by_line_on_imdb(corpora_dir: Path, tmp_path: Path) -> None:
    sample = tmp_path / "imdb_head.tsv.gz"
    with gzip.open(corpora_dir / "imdb" / "imdb_train.tsv.gz") as full, gzip.open(sample, "wb") as out:
        head = b"".join(itertools.islice(full, 2000))
        out.write(head)
    assert "\u0085" in head.decode("utf-8")  # the sample holds the NEL quirk
    tokenizer = RegexTokenizer()
    expected_tokens, expected_lengths = [], []
    for raw in head.split(b"\n")[:-1]:
        line_tokens = tokenizer.tokenize(raw.decode("utf-8").split("\t", 1)[1])
        expected_tokens += line_tokens
        expected_lengths.append(len(line_tokens))
    tokens, lengths = _read_chunks(sample, tokenizer, chunk_bytes=64 << 10, column=1, maxsplit=1)
    assert len(lengths) == 2000
    assert lengths == expected_lengths and tokens == expected_tokens
    assert _read_chunks(sample, tokenizer, column=1, maxsplit=1) == (tokens, lengths)  # one big chunk


def test_rt_polarity_has_5331_lines_despite_u0085(corpora_dir: Path) -> None:
    path = corpora_dir / "rt-polarity" / "rt-polarity.pos"
    lines = list(iter_lines(path, encoding="latin-1"))
    assert len(lines) == 5331
    assert sum("\x85" in line for line in lines) == 12
    with pytest.raises(NlprecError, match=r"rt-polarity.pos: line \d+ \(byte \d+\) is not valid utf-8.*latin-1"):
        list(iter_lines(path))


@pytest.mark.parametrize("encoding, data", [
    ("utf-8", "one\u0085two three\nfour\n".encode("utf-8")),
    ("latin-1", b"one\x85two three\nfour\n"),
])
def test_u0085_is_not_a_line_break(tmp_path: Path, encoding: str, data: bytes) -> None:
    path = tmp_path / "nel.txt"
    path.write_bytes(data)
    assert _read_chunks(path, RegexTokenizer(), encoding=encoding) == (["one", "two", "three", "four"], [3, 1])
    assert list(iter_lines(path, encoding=encoding)) == ["one\x85two three", "four"]


def test_gzip_plain_and_unterminated_last_line(tmp_path: Path) -> None:
    text = b"The cat sat.\n\nOn the mat\nno newline at the end"
    plain, packed = tmp_path / "a.txt", tmp_path / "a.txt.gz"
    plain.write_bytes(text)
    packed.write_bytes(gzip.compress(text))
    expected = (["the", "cat", "sat", "on", "the", "mat", "no", "newline", "at", "the", "end"], [3, 0, 3, 5])
    for chunk_bytes in (1, 7, 1 << 20):
        assert _read_chunks(plain, RegexTokenizer(), chunk_bytes=chunk_bytes) == expected
        assert _read_chunks(packed, RegexTokenizer(), chunk_bytes=chunk_bytes) == expected


def test_undecodable_bytes_name_file_line_and_offset(tmp_path: Path) -> None:
    path = tmp_path / "bad.txt"
    path.write_bytes(b"fine line\nbad \xff byte\n")
    with pytest.raises(NlprecError, match=r"bad.txt: line 2 \(byte 14\) is not valid utf-8: b'\\xff by'"):
        list(iter_text_chunks(path))
    assert _read_chunks(path, RegexTokenizer(), encoding="latin-1") == (["fine", "line", "bad", "byte"], [2, 2])
    packed = tmp_path / "bad.txt.gz"
    packed.write_bytes(gzip.compress(path.read_bytes()))
    with pytest.raises(NlprecError, match=r"line 2 \(uncompressed byte 14\)"):
        list(iter_text_chunks(packed, chunk_bytes=4))


def test_unreadable_inputs(tmp_path: Path) -> None:
    with pytest.raises(NlprecError, match="missing.txt: cannot open"):
        list(iter_lines(tmp_path / "missing.txt"))
    truncated = tmp_path / "cut.gz"
    truncated.write_bytes(gzip.compress(b"some text\n" * 1000)[:40])
    with pytest.raises(NlprecError, match="cut.gz: unreadable after byte 0"):
        list(iter_lines(truncated))
    with pytest.raises(NlprecError, match="not ASCII-compatible"):
        list(iter_lines(truncated, encoding="utf-16"))


def test_column_keeps_tabs_after_maxsplit(tmp_path: Path) -> None:
    path = tmp_path / "labelled.tsv"
    path.write_bytes(b"pos\tgreat film\twith a tab\nneg\tdull\n")
    assert list(iter_lines(path, column=1, maxsplit=1)) == ["great film\twith a tab", "dull"]
    assert list(iter_lines(path, column=0)) == ["pos", "neg"]
    assert _read_chunks(path, RegexTokenizer(), column=1, maxsplit=1) == (["great", "film", "with", "a", "tab", "dull"],
                                                                          [5, 1])
    with pytest.raises(NlprecError, match=r"labelled.tsv: line 2 has no column 2; expected at least 3"):
        list(iter_lines(path, column=2))


@pytest.fixture(scope="module")
def rt_lines(corpora_dir: Path) -> list[str]:
    """3,000 positive and negative rt-polarity snippets."""
    pos = itertools.islice(iter_lines(corpora_dir / "rt-polarity" / "rt-polarity.pos", encoding="latin-1"), 1500)
    neg = itertools.islice(iter_lines(corpora_dir / "rt-polarity" / "rt-polarity.neg", encoding="latin-1"), 1500)
    return [*pos, *neg]


def test_sentencepiece_round_trip(tmp_path: Path, rt_lines: list[str]) -> None:
    corpus = tmp_path / "rt.txt"
    corpus.write_text("\n".join(rt_lines[:2000]) + "\n", encoding="utf-8")
    model_path = tmp_path / "rt.model"
    tok = SentencePieceTokenizer.train(model_path, 600, paths=[corpus], sentences=rt_lines[2000:],
                                       user_symbols=["[MASK]", "[CLS]"])
    assert model_path.is_file() and not list(tmp_path.glob(".rt.model*"))
    assert (tok.pad_id, tok.unk_id, tok.bos_id, tok.eos_id) == (0, 1, 2, 3)
    assert [tok.id_to_piece(i) for i in range(4)] == ["<pad>", "<unk>", "<s>", "</s>"]
    assert (tok.piece_to_id("[MASK]"), tok.piece_to_id("[CLS]"), tok.vocab_size) == (4, 5, 600)
    texts = [" ".join(line.split()) for line in rt_lines[:50] if line.isascii()]
    ids = tok.encode(texts, add_bos=True, add_eos=True)
    assert all(row[0] == 2 and row[-1] == 3 for row in ids)
    assert tok.decode(ids) == texts
    loaded = SentencePieceTokenizer.load(model_path)
    assert loaded.encode(texts) == tok.encode(texts)
    assert "".join(loaded.tokenize("the film")).replace("\u2581", " ").strip() == "the film"
    with pytest.raises(NlprecError, match="piece id is out of range; expected 0 <= id < 600"):
        tok.decode([[5, 600]])


def test_sentencepiece_bpe_is_deterministic(tmp_path: Path, rt_lines: list[str]) -> None:
    first = SentencePieceTokenizer.train(tmp_path / "a.model", 400, sentences=rt_lines, model_type="bpe", seed=7)
    SentencePieceTokenizer.train(tmp_path / "b.model", 400, sentences=rt_lines, model_type="bpe", seed=7)
    assert (tmp_path / "a.model").read_bytes() == (tmp_path / "b.model").read_bytes()
    assert first.vocab_size == 400


def test_sentencepiece_errors(tmp_path: Path) -> None:
    with pytest.raises(NlprecError, match="no such sentencepiece model file"):
        SentencePieceTokenizer.load(tmp_path / "none.model")
    junk = tmp_path / "junk.model"
    junk.write_bytes(b"not a model")
    with pytest.raises(NlprecError, match="junk.model: not a sentencepiece model"):
        SentencePieceTokenizer.load(junk)
    with pytest.raises(NlprecError, match=r"Vocabulary size too high \(5000\)"):
        SentencePieceTokenizer.train(tmp_path / "x.model", 5000, sentences=["a small text"] * 20)
    with pytest.raises(NlprecError, match="no non-empty input lines"):
        SentencePieceTokenizer.train(tmp_path / "x.model", 50, sentences=["", "  "])
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"good line\n\xff\n")
    with pytest.raises(NlprecError, match=r"bad.txt: line 2 \(byte 10\) is not valid utf-8"):
        SentencePieceTokenizer.train(tmp_path / "x.model", 50, paths=[bad])
    assert not (tmp_path / "x.model").exists()
