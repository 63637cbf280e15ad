"""Fuzzed word2vec text and binary, nlprec .npz (plain and subword) and Facebook fastText .bin files.

Each reader gets damaged copies of a valid file (fuzz_support.mutations), hand-written edge
cases (wrong headers, huge declared sizes, NaN/inf, blank lines, other encodings) and every
truncation of a small valid file. Allowed: a correct load or a one-line NlprecError naming the file.
"""

from __future__ import annotations

import struct

import numpy as np
import pytest
from hypothesis import strategies as st

from fuzz_support import check_outcome, every_truncation, fuzz_pair, mutations, scratch
from nlprec.data.subwords import SubwordSpec
from nlprec.errors import NlprecError
from nlprec.fasttext_io import FastTextArgs, save_fasttext_bin
from nlprec.subword_vectors import SubwordVectors, load_vectors
from nlprec.vectors import Vectors

WORDS = ["the", "cat", "café", "日本語", "x"]
MATRIX = np.arange(len(WORDS) * 3, dtype=np.float32).reshape(len(WORDS), 3) / 7 - 1  # (5, 3)


def _valid(suffix: str) -> bytes:
    with scratch() as folder:
        path = folder / f"v{suffix}"
        Vectors(WORDS, MATRIX, {"seed": 1}).save(path)
        return path.read_bytes()


def _valid_subword_npz() -> bytes:
    spec = SubwordSpec(2, 3, 7)
    with scratch() as folder:
        path = folder / "s.npz"
        SubwordVectors(WORDS, MATRIX, np.ones((7, 3), np.float32), spec, {"seed": 1}).save(path)
        return path.read_bytes()


def _valid_fasttext_bin() -> bytes:
    args = FastTextArgs(dim=3, window=5, epochs=1, min_count=1, negative=5, model="skipgram", buckets=6,
                        min_n=2, max_n=3, sample=1e-4)
    rng = np.random.default_rng(0)
    with scratch() as folder:
        path = folder / "f.bin"
        save_fasttext_bin(path, args, WORDS, np.arange(5, 0, -1), rng.normal(size=(11, 3)).astype(np.float32),
                          rng.normal(size=(5, 3)).astype(np.float32), tokens=15)
        return path.read_bytes()


VALID = {".bin": _valid(".bin"), ".vec": _valid(".vec"), ".npz": _valid(".npz")}
VALID_SUBWORD = _valid_subword_npz()
VALID_FASTTEXT = _valid_fasttext_bin()


def _warm_up() -> None:
    """Load each valid file once, so lazy imports (pandas) do not count as the readers' allocations."""
    with scratch() as folder:
        files = [*(("v" + suffix, data) for suffix, data in VALID.items()), ("s.npz", VALID_SUBWORD),
                 ("f.bin", VALID_FASTTEXT)]
        for name, data in files:
            (folder / name).write_bytes(data)
            load_vectors(folder / name)


_warm_up()


def _check_vectors(vectors) -> None:
    """A load that succeeded gave a consistent, finite Vectors."""
    assert vectors.matrix.dtype == np.float32 and vectors.matrix.shape == (len(vectors.keys), vectors.dim)
    assert np.isfinite(vectors.matrix).all()
    assert len(set(vectors.keys)) == len(vectors.keys)


def _load(suffix: str, data: bytes, reader: str, loader=Vectors.load) -> str:
    with scratch() as folder:
        path = folder / f"input{suffix}"
        path.write_bytes(data)
        return check_outcome(reader, path, loader, _check_vectors)


# --- damaged copies of valid files ---------------------------------------------------------------

def _word2vec_bin(data: bytes) -> None:
    _load(".bin", data, "word2vec .bin")


def _word2vec_text(data: bytes) -> None:
    _load(".vec", data, "word2vec text")


def _npz(data: bytes) -> None:
    _load(".npz", data, "nlprec .npz", load_vectors)


def _npz_mapped(data: bytes) -> None:
    _load(".npz", data, "nlprec .npz memory-mapped", lambda path: Vectors.load(path, mmap=True))


def _subword_npz(data: bytes) -> None:
    _load(".npz", data, "nlprec subword .npz", load_vectors)


def _fasttext_bin(data: bytes) -> None:
    _load(".bin", data, "fastText .bin", load_vectors)


test_word2vec_bin_mutations, test_word2vec_bin_mutations_slow = fuzz_pair(mutations(VALID[".bin"]), _word2vec_bin)
test_word2vec_text_mutations, test_word2vec_text_mutations_slow = fuzz_pair(mutations(VALID[".vec"]), _word2vec_text)
test_npz_mutations, test_npz_mutations_slow = fuzz_pair(mutations(VALID[".npz"]), _npz)
test_npz_mapped_mutations, test_npz_mapped_mutations_slow = fuzz_pair(mutations(VALID[".npz"]), _npz_mapped)
test_subword_npz_mutations, test_subword_npz_mutations_slow = fuzz_pair(mutations(VALID_SUBWORD), _subword_npz)
test_fasttext_bin_mutations, test_fasttext_bin_mutations_slow = fuzz_pair(mutations(VALID_FASTTEXT), _fasttext_bin)


# --- generated text files: headers, numbers, blank lines, encodings ------------------------------

_NUMBER = st.one_of(st.floats(width=32, allow_nan=True, allow_infinity=True).map(repr),
                    st.sampled_from(["nan", "inf", "-inf", "1e400", "-1e400", "NaN", "0x1p3", "", "1,5", "--1",
                                     "1e", "٣", "１"]))
_WORD = st.one_of(st.text(min_size=1, max_size=6), st.sampled_from(["</s>", "a b", "\t", "\u00a0x", "x\r"]))
_HEADER = st.one_of(st.tuples(st.integers(0, 6), st.integers(0, 4)).map(lambda cd: f"{cd[0]} {cd[1]}"),
                    st.sampled_from(["1000000000000 3", "3 1000000000000", "-1 3", "3", "", " ", "3 3 3", "a b",
                                     "99999999999999999999999 1", "3\t3", "0 0"]))
_LINE = st.one_of(st.tuples(_WORD, st.lists(_NUMBER, max_size=5)).map(lambda wv: " ".join([wv[0], *wv[1]])),
                  st.sampled_from(["", " ", "\t", "\r", "  \t "]))
_ENCODING = st.sampled_from(["utf-8", "utf-8", "utf-8", "latin-1", "utf-16", "cp1252"])


@st.composite
def _text_files(draw) -> bytes:
    text = "\n".join([draw(_HEADER), *draw(st.lists(_LINE, max_size=8))]) + draw(st.sampled_from(["", "\n", "\r\n"]))
    return text.encode(draw(_ENCODING), errors="replace")


def _generated_text(data: bytes) -> None:
    _load(".vec", data, "word2vec text")


test_word2vec_text_generated, test_word2vec_text_generated_slow = fuzz_pair(_text_files(), _generated_text)


@st.composite
def _binary_files(draw) -> bytes:
    header = draw(_HEADER).encode("ascii") + b"\n"
    rows = draw(st.lists(st.tuples(_WORD.map(lambda w: w.encode("utf-8", "replace")),
                                   st.lists(st.floats(width=32), max_size=4)), max_size=6))
    body = b"".join(word + b" " + struct.pack(f"<{len(v)}f", *v) + draw(st.sampled_from([b"", b"\n"]))
                    for word, v in rows)
    return header + body


def _generated_bin(data: bytes) -> None:
    _load(".bin", data, "word2vec .bin")


test_word2vec_bin_generated, test_word2vec_bin_generated_slow = fuzz_pair(_binary_files(), _generated_bin)


# --- every truncation, and huge declared sizes ---------------------------------------------------

# The default run cuts the .npz (1.5 kB) at every STEP-th length; the slow run at every length.
NPZ_STEPS = [3, pytest.param(1, marks=pytest.mark.slow)]


@pytest.mark.parametrize("suffix", [".bin", ".vec"])
def test_every_truncation_of_a_word2vec_file_is_refused(suffix):
    valid = VALID[suffix]
    seen = every_truncation(f"truncation {suffix}", valid, f"v{suffix}", load_vectors, _same_as_saved)
    assert seen["error"] >= len(valid) - 1  # only a cut final newline may still load (as the whole file)


@pytest.mark.parametrize("step", NPZ_STEPS)
def test_every_truncation_of_an_npz_file_is_refused(step):
    seen = every_truncation("truncation .npz", VALID[".npz"], "v.npz", load_vectors, step=step)
    assert seen == {"error": len(range(0, len(VALID[".npz"]), step))}


def _same_as_saved(vectors) -> None:
    assert vectors.keys == WORDS
    np.testing.assert_array_equal(vectors.matrix, MATRIX)


def test_every_truncation_of_a_fasttext_bin_is_refused():
    seen = every_truncation("truncation fastText .bin", VALID_FASTTEXT, "f.bin", load_vectors)
    assert seen == {"error": len(VALID_FASTTEXT)}


@pytest.mark.parametrize("suffix,data", [
    (".bin", b"1000000000000 300\nthe " + b"\0" * 1200),
    (".bin", b"3 1000000000000\nthe " + b"\0" * 12),
    (".vec", b"1000000000000 300\nthe 1 2 3\n"),
    (".vec", b"2 1000000000000\nthe 1 2 3\n"),
])
def test_a_header_claiming_huge_sizes_does_not_allocate(suffix, data):
    assert _load(suffix, data, f"huge header {suffix}") == "error"


def _fasttext_header(size: int, nwords: int, rows: int, cols: int, dim: int = 3, buckets: int = 6) -> bytes:
    head = struct.pack("<2i", 793712314, 12) + struct.pack("<12id", dim, 5, 1, 1, 5, 1, 2, 2, buckets, 2, 3, 100, 1e-4)
    return head + struct.pack("<3i2q", size, nwords, 0, 10, -1) + b"the\0" + struct.pack("<qb", 1, 0) + b"\0" + \
        struct.pack("<2q", rows, cols)


@pytest.mark.parametrize("fields", [
    dict(size=2**31 - 1, nwords=1, rows=7, cols=3),  # a dictionary of two billion words
    dict(size=1, nwords=1, rows=10**12, cols=3),  # an input matrix of 10^12 rows
    dict(size=1, nwords=1, rows=-1, cols=-3),  # negative sizes
    dict(size=-5, nwords=1, rows=7, cols=3),
    dict(size=1, nwords=1, rows=7, cols=3, dim=-3),
    dict(size=1, nwords=1, rows=1, cols=3, buckets=-6),
])
def test_a_fasttext_header_with_impossible_sizes_is_refused(fields):
    assert _load(".bin", _fasttext_header(**fields) + b"\0" * 64, "huge header fastText .bin", load_vectors) == "error"


def test_npz_with_a_matrix_header_claiming_10_to_the_12_rows_does_not_allocate():
    import io
    import zipfile

    with scratch() as folder:
        path = folder / "v.npz"
        path.write_bytes(VALID[".npz"])
        with zipfile.ZipFile(path) as archive:
            members = {name: archive.read(name) for name in archive.namelist()}
        header = io.BytesIO()
        np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False,
                                                      "shape": (10**12, 3)})
        members["matrix.npy"] = np.lib.format.magic(1, 0) + header.getvalue()[8:] + b"\0" * 60
        with zipfile.ZipFile(path, "w") as archive:
            for name, data in members.items():
                archive.writestr(name, data)
        assert check_outcome("huge header .npz", path, Vectors.load) == "error"


def test_nan_and_inf_values_name_the_word_and_row():
    with scratch() as folder:
        path = folder / "v.vec"
        path.write_text("2 2\nok 1 2\nbad nan inf\n", encoding="utf-8")
        with pytest.raises(NlprecError, match=r"v\.vec.*'bad' \(row 1\) has NaN"):
            Vectors.load(path)
