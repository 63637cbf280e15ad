"""Fuzzed ratings files (CSV, TSV, Parquet), translation pairs and text corpora (plain and gzip).

Inputs: damaged copies of valid files, generated lines (ids, numbers with NaN/inf, blank and
whitespace-only lines, other separators and encodings) and every truncation of small valid
files. Allowed: a correct load or a one-line NlprecError naming the file (and line).
"""

from __future__ import annotations

import gzip
import io

import numpy as np
import pandas as pd
import pytest
from hypothesis import strategies as st

from fuzz_support import check_outcome, every_truncation, fuzz_pair, mutations, scratch
from nlprec.data.word_corpus import encode_corpus
from nlprec.data.interactions import read_interactions
from nlprec.data.pairs import read_pairs
from nlprec.data.tokenize import RegexTokenizer

RATINGS_TSV = "".join(f"{u}\t{i}\t{(u * 7 + i) % 5 + 1}\t{881250949 + u * 10 + i}\n"
                      for u in range(1, 5) for i in range(1, 4)).encode()
RATINGS_CSV = b"userId,movieId,rating,timestamp\n" + RATINGS_TSV.replace(b"\t", b",")
PAIRS = "Hallo Welt\tHello world\nWie geht's?\tHow are you?\n\nDanke\tThanks\tignored\n".encode()
CORPUS = "the cat sat on the mat\nthe dog ate the café\n\n  \nnaïve 日本語 the cat\n".encode()


def _parquet() -> bytes:
    frame = pd.read_csv(io.BytesIO(RATINGS_CSV))
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


RATINGS_PARQUET = _parquet()


def _check_interactions(data) -> None:
    n = len(data.users)
    assert len(data.items) == n and n > 0
    assert data.users.max() < len(data.user_ids) and data.items.max() < len(data.item_ids)
    assert data.ratings is None or (len(data.ratings) == n and np.isfinite(data.ratings).all())


def _check_pairs(pairs) -> None:
    assert len(pairs.sources) == len(pairs.targets) > 0
    assert all(s.strip() and t.strip() for s, t in zip(pairs.sources, pairs.targets))


def _check_corpus(corpus) -> None:
    assert len(corpus.ids) > 0 and corpus.ids.max() < len(corpus.vocab)
    assert corpus.sentence_ends[-1] == len(corpus.ids)


def _ratings(name: str, reader: str):
    def body(data: bytes) -> None:
        with scratch() as folder:
            path = folder / name
            path.write_bytes(data)
            check_outcome(reader, path, read_interactions, _check_interactions)
    return body


def _pairs(data: bytes) -> None:
    with scratch() as folder:
        path = folder / "pairs.tsv"
        path.write_bytes(data)
        check_outcome("translation pairs", path, read_pairs, _check_pairs)


def _corpus(name: str, reader: str, pack=lambda data: data):
    def body(data: bytes) -> None:
        with scratch() as folder:
            path = folder / name
            path.write_bytes(pack(data))
            check_outcome(reader, path, lambda p: encode_corpus(p, RegexTokenizer(), min_count=1), _check_corpus)
    return body


def _gzip(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


def _warm_up() -> None:
    """One load of each kind first, so lazy imports do not count as the readers' allocations."""
    with scratch() as folder:
        for name, data in (("r.tsv", RATINGS_TSV), ("r.csv", RATINGS_CSV), ("r.parquet", RATINGS_PARQUET)):
            (folder / name).write_bytes(data)
            read_interactions(folder / name)
        (folder / "c.txt.gz").write_bytes(_gzip(CORPUS))
        encode_corpus(folder / "c.txt.gz", RegexTokenizer(), min_count=1)
        (folder / "p.tsv").write_bytes(PAIRS)
        read_pairs(folder / "p.tsv")


_warm_up()

# --- damaged copies of valid files ---------------------------------------------------------------

test_ratings_tsv_mutations, test_ratings_tsv_mutations_slow = fuzz_pair(
    mutations(RATINGS_TSV), _ratings("ratings.tsv", "ratings TSV"))
test_ratings_csv_mutations, test_ratings_csv_mutations_slow = fuzz_pair(
    mutations(RATINGS_CSV), _ratings("ratings.csv", "ratings CSV"))
test_ratings_parquet_mutations, test_ratings_parquet_mutations_slow = fuzz_pair(
    mutations(RATINGS_PARQUET), _ratings("ratings.parquet", "ratings Parquet"))
test_pairs_mutations, test_pairs_mutations_slow = fuzz_pair(mutations(PAIRS), _pairs)
test_corpus_mutations, test_corpus_mutations_slow = fuzz_pair(mutations(CORPUS), _corpus("corpus.txt", "corpus"))
test_gzip_corpus_mutations, test_gzip_corpus_mutations_slow = fuzz_pair(
    mutations(_gzip(CORPUS)), _corpus("corpus.txt.gz", "corpus .gz"))

# --- generated lines -------------------------------------------------------------------------------

_FIELD = st.one_of(st.text(max_size=5), st.integers(-5, 10**15).map(str),
                   st.sampled_from(["nan", "NaN", "inf", "-inf", "1e400", "", " ", "NULL", "NA", "\"a,b\"", "\"",
                                    "2020-01-01", "2020-13-45T99:00", "1.5", "5", "0x10", "userId", "rating"]))
_ENCODING = st.sampled_from(["utf-8", "utf-8", "utf-8", "latin-1", "utf-16", "cp1252"])


@st.composite
def _delimited(draw, sep: str) -> bytes:
    rows = draw(st.lists(st.lists(_FIELD, min_size=0, max_size=5), min_size=0, max_size=8))
    lines = [sep.join(row) for row in rows]
    blank = draw(st.lists(st.sampled_from(["", " ", "\t", "\r"]), max_size=2))
    text = "\n".join(lines + blank) + draw(st.sampled_from(["", "\n", "\r\n"]))
    return text.encode(draw(_ENCODING), errors="replace")


test_ratings_tsv_generated, test_ratings_tsv_generated_slow = fuzz_pair(
    _delimited("\t"), _ratings("ratings.tsv", "ratings TSV"))
test_ratings_csv_generated, test_ratings_csv_generated_slow = fuzz_pair(
    _delimited(","), _ratings("ratings.csv", "ratings CSV"))
test_pairs_generated, test_pairs_generated_slow = fuzz_pair(_delimited("\t"), _pairs)
test_corpus_generated, test_corpus_generated_slow = fuzz_pair(_delimited(" "), _corpus("corpus.txt", "corpus"))


# --- every truncation ------------------------------------------------------------------------------

# The default run cuts at every STEP-th length; the slow run at every length.
STEPS = [7, pytest.param(1, marks=pytest.mark.slow)]


@pytest.mark.parametrize("step", STEPS)
def test_every_truncation_of_a_parquet_file_is_refused(step):
    seen = every_truncation("truncation Parquet", RATINGS_PARQUET, "r.parquet", read_interactions, step=step)
    assert seen == {"error": len(range(0, len(RATINGS_PARQUET), step))}


@pytest.mark.parametrize("step", STEPS)
def test_every_truncation_of_a_gzip_corpus_is_refused(step):
    packed = _gzip(CORPUS)
    seen = every_truncation("truncation corpus .gz", packed, "c.txt.gz",
                            lambda p: encode_corpus(p, RegexTokenizer(), min_count=1), step=step)
    assert seen == {"error": len(range(0, len(packed), step))}  # a gzip stream cut short is always reported


@pytest.mark.parametrize("step", STEPS)
def test_every_truncation_of_text_files_loads_a_prefix_or_errors(step):
    for reader, data, name, load in (("truncation ratings TSV", RATINGS_TSV, "r.tsv", read_interactions),
                                     ("truncation pairs", PAIRS, "p.tsv", read_pairs)):
        with scratch() as folder:
            path = folder / name
            for size in range(0, len(data), step):
                path.write_bytes(data[:size])
                check_outcome(reader, path, load)  # a text cut at a line end is a shorter, valid file


# --- regressions found by the fuzz tests ------------------------------------------------------------

@pytest.mark.parametrize("name,data", [("r.tsv", b'\t\t:\t"\n\t\t0\n"a,b"'), ("r.csv", b',:,",\n,0,"a,b"')])
def test_a_header_name_holding_a_newline_gives_a_one_line_error(name, data):
    """A quoted header field may hold a newline; the error listing the columns stays one line."""
    with scratch() as folder:
        (folder / name).write_bytes(data)
        assert check_outcome("regression", folder / name, read_interactions) == "error"
