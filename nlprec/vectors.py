"""Trained word vectors, kept apart from any training state (like gensim's `KeyedVectors`).

A `Vectors` holds the vocabulary (`keys`, in frequency order when a trainer wrote them), a float32
matrix with one row per key and free-form provenance (`meta`: config, seed, data checksum,
package version). Its queries are methods (`most_similar`, `analogy`, `batch_analogy`,
`similarity`, `vectors_for`), so the CLI and the server call one API whatever the vectors are:
`SubwordVectors` (fastText) overrides them to answer words outside the vocabulary from n-grams.
Searches go through `nlprec.index` (exact cosine by FAISS unless an approximate index is given).

File formats, chosen by suffix or by `format=`:

- `.npz` ("npz"): native. Keys (UTF-8, newline-joined), matrix and meta (a JSON string); read
  with `allow_pickle=False`.
- `.bin` ("bin"): word2vec.c binary. Header `"<count> <dim>\\n"`, then per word the UTF-8 word, a
  space, `dim` little-endian float32 and `"\\n"`. gensim writes no `"\\n"` after the floats;
  both are read.
- `.vec` / `.txt` ("text"): word2vec text. The same header, then `word v1 ... vdim` per line
  with single spaces; fastText's trailing space before the newline is accepted. Values are
  written with 9 significant digits, which round-trips float32 exactly.

The word2vec formats have no room for metadata, so `meta` goes to a sidecar `<file>.meta.json`.
Every file is written atomically (temporary file + rename).
"""

from __future__ import annotations

import csv
import difflib
import io
import json
import mmap
import os
import re
import zipfile
from pathlib import Path
from typing import Callable, ClassVar, Literal, Sequence

import numpy as np

from nlprec.errors import NlprecError
from nlprec.index import AnalogyMethod, VectorIndex, analogy_top_k, normalise, search_vectors
from nlprec.io import ARCHIVE_ERRORS, atomic_write, check_npz_sizes

VectorFormat = Literal["npz", "bin", "text"]
UnicodeErrors = Literal["strict", "replace"]

FORMAT_BY_SUFFIX: dict[str, VectorFormat] = {".npz": "npz", ".bin": "bin", ".vec": "text", ".txt": "text"}
NPZ_FORMAT_VERSION = 1
# Characters the word2vec formats use as separators; other Unicode spaces (fastText has words
# with U+00A0) are legal inside a word, as in gensim's reader.
_SEPARATOR = re.compile(r"[ \t\n\r\f\v]")
# Unknown-word suggestions compare against at most this many of the most frequent words.
_SUGGEST_POOL = 50_000


class Vectors:
    """Word vectors: `keys`, `key_to_index` and a read-only float32 `matrix` of shape (n, dim).

    Args:
        keys: the words, one per matrix row; unique, non-empty, without spaces, tabs or newlines.
        matrix: (n, dim) array of finite numbers; copied to float32.
        meta: JSON-serialisable provenance (config, seed, data checksum, package version).
        copy: False keeps a read-only, C-contiguous float32 `matrix` as it is (a memory map of
            the file, shared by every process that maps it); anything else is copied anyway.
    """

    # True for vectors that compose unseen words from character n-grams (`SubwordVectors`); they
    # are searched by their own exact matrix product, so a FAISS `index` does not apply to them.
    subwords: ClassVar[bool] = False

    def __init__(self, keys: list[str], matrix: np.ndarray, meta: dict | None = None, copy: bool = True) -> None:
        if copy or matrix.dtype != np.float32 or not matrix.flags.c_contiguous or matrix.flags.writeable:
            matrix = np.array(matrix, dtype=np.float32, order="C")  # (n, dim), a private copy
        keys = list(keys)
        _check_shape(keys, matrix)
        _check_keys(keys)
        self.key_to_index: dict[str, int] = {key: i for i, key in enumerate(keys)}
        if len(self.key_to_index) != len(keys):
            _raise_duplicate(keys)
        _check_finite(keys, matrix)
        matrix.flags.writeable = False  # the cached unit matrix must never go stale
        self.keys = keys
        self.matrix = matrix
        self.meta: dict = dict(meta or {})
        self._unit: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.keys)

    def __contains__(self, word: object) -> bool:
        return word in self.key_to_index

    def __repr__(self) -> str:
        return f"Vectors({len(self):,} words, dim {self.dim})"

    @property
    def dim(self) -> int:
        """Number of components per vector."""
        return self.matrix.shape[1]

    def index(self, word: str) -> int:
        """Row of `word`; an unknown word raises `NlprecError` with close matches to suggest."""
        try:
            return self.key_to_index[word]
        except KeyError:
            raise NlprecError(self._unknown_word_message(word)) from None

    def vector(self, word: str) -> np.ndarray:
        """The (dim,) read-only row of `word`."""
        return self.matrix[self.index(word)]

    __getitem__ = vector

    def unit_matrix(self) -> np.ndarray:
        """Rows scaled to unit L2 norm, float32, computed once; all-zero rows stay zero."""
        if self._unit is None:
            norms = np.linalg.norm(self.matrix, axis=1, keepdims=True)  # (n, 1)
            unit = self.matrix / np.where(norms > 0, norms, 1)  # (n, dim)
            unit.flags.writeable = False
            self._unit = unit
        return self._unit

    def unit_rows(self, rows: np.ndarray | Sequence[int]) -> np.ndarray:
        """Rows `rows` scaled to unit L2 norm: the values of `unit_matrix()[rows]`, computed for
        those rows only (so a memory-mapped matrix is never copied whole)."""
        if self._unit is not None:
            return self._unit[rows]
        picked = self.matrix[rows]  # (Q, dim)
        norms = np.linalg.norm(picked, axis=-1, keepdims=True)  # (Q, 1)
        return picked / np.where(norms > 0, norms, 1)

    def suggest(self, word: str, n: int = 3) -> list[str]:
        """Up to `n` vocabulary words spelled like `word` (difflib ratio >= 0.6).

        Only the most frequent words within two characters of the length of `word` are compared,
        so the cost stays in milliseconds for any vocabulary size.
        """
        pool = [key for key in self.keys[:_SUGGEST_POOL] if abs(len(key) - len(word)) <= 2]
        return difflib.get_close_matches(word, pool, n=n)

    def _unknown_word_message(self, word: str) -> str:
        message = f"unknown word {word!r} (not in the {len(self):,}-word vocabulary)"
        suggestions = self.suggest(word)
        return f"{message}; did you mean: {', '.join(suggestions)}?" if suggestions else message

    # --- queries: one API for plain and subword vectors ------------------------------------------

    def vectors_for(self, words: Sequence[str]) -> np.ndarray:
        """(Q, dim) vectors of `words`, for callers that need vectors rather than rows.

        Plain vectors answer from their rows, and the first unknown word raises the one-line
        `index` error; `SubwordVectors` composes unseen words from n-grams instead.
        """
        return self.matrix[[self.index(word) for word in words]]

    def unanswerable(self, words: Sequence[str]) -> list[str]:
        """The `words` that have no vector here, in order, found without building any vector.

        A cheap check (a server runs it on its event loop); `vectors_for` on them raises the
        message that says why. Plain vectors answer their vocabulary only.
        """
        return [word for word in words if word not in self.key_to_index]

    def with_words(self, words: Sequence[str]) -> Vectors:
        """Vectors that also hold whichever of `words` this store can compose, for evaluation files.

        Plain vectors compose no word, so they come back as they are; `SubwordVectors` adds
        unseen words built from their n-grams.
        """
        return self

    def similarity(self, word1: str, word2: str) -> float:
        """Cosine similarity of two words (float32 unit vectors), as gensim's `similarity`; a
        word `vectors_for` cannot answer raises its one-line error."""
        first, second = normalise(self.vectors_for([word1, word2]))  # (dim,) each
        return float(first @ second)

    def most_similar(
        self, words: str | Sequence[str], k: int = 10, index: VectorIndex | None = None
    ) -> list[list[tuple[str, float]]]:
        """The `k` nearest words to each query word by cosine, the query word itself excluded.

        Returns one list of (word, cosine) per query word, best first, also for a single str.
        Exact (a FAISS flat index built once per `Vectors`) unless `index` is an approximate
        `VectorIndex` built over these vectors.
        """
        words = [words] if isinstance(words, str) else list(words)
        ids = [self.index(word) for word in words]
        scores, found = search_vectors(self, index, self.unit_rows(ids), k, [[i] for i in ids])
        return _as_words(self.keys, scores, found)

    def analogy(
        self, a: str, b: str, c: str, k: int = 5, method: AnalogyMethod = "3cosadd", index: VectorIndex | None = None
    ) -> list[tuple[str, float]]:
        """Answers to "a : b :: c : ?", best first, as (word, score); see `batch_analogy`."""
        return self.batch_analogy([(a, b, c)], k, method, index)[0]

    def batch_analogy(
        self, questions: Sequence[tuple[str, str, str]], k: int = 5, method: AnalogyMethod = "3cosadd",
        index: VectorIndex | None = None,
    ) -> list[list[tuple[str, float]]]:
        """Top-`k` answers for many (a, b, c) questions at once, input words never among them.

        3CosAdd scores are cosines with b - a + c; with an `index` it is searched instead of the
        exact matmul. 3CosMul needs every candidate's three cosines, so it always scores the full
        unit matrix exactly and ignores `index`. A server merges many requests into one call.
        """
        if method not in ("3cosadd", "3cosmul"):
            raise NlprecError(f"analogy method {method!r}: expected '3cosadd' or '3cosmul'")
        triples = np.array([[self.index(w) for w in q] for q in questions], dtype=np.int64).reshape(-1, 3)  # (Q, 3)
        if method == "3cosadd" and index is not None:
            a, b, c = (self.unit_rows(triples[:, j]) for j in range(3))  # (Q, dim) each
            scores, ids = search_vectors(self, index, b - a + c, k, triples.tolist())
        else:
            scores, ids = analogy_top_k(self.unit_matrix(), triples, k, method)
        return _as_words(self.keys, scores, ids)

    def save(self, path: str | os.PathLike, format: VectorFormat | None = None) -> Path:
        """Write the vectors in `format` (default: from the suffix) and return the path.

        For "bin" and "text" a non-empty `meta` goes to `<path>.meta.json`; a stale sidecar from
        an earlier save is removed so a file is never paired with another run's metadata.
        """
        path = Path(path)
        fmt = format or format_from_suffix(path)
        if fmt == "npz":
            return write_npz(path, self)
        meta_json = _meta_to_json(self.meta)
        if fmt == "bin":
            _save_word2vec_binary(path, self)
        elif fmt == "text":
            _save_word2vec_text(path, self)
        else:
            raise NlprecError(f"unknown vectors format {fmt!r}: expected 'npz', 'bin' or 'text'")
        sidecar = sidecar_path(path)
        if self.meta:
            with atomic_write(sidecar, "w", encoding="utf-8") as handle:
                handle.write(meta_json)
        elif sidecar.exists():
            sidecar.unlink()
        return path

    @classmethod
    def load(
        cls,
        path: str | os.PathLike,
        format: VectorFormat | None = None,
        unicode_errors: UnicodeErrors = "strict",
        mmap: bool = False,
    ) -> "Vectors":
        """Read vectors written by nlprec, gensim, word2vec.c or fastText (`.vec`).

        Args:
            path: the file; its suffix picks the format unless `format` is given.
            format: "npz", "bin" or "text".
            unicode_errors: words that are not UTF-8 raise `NlprecError` ("strict") or get
                U+FFFD in place of the bad bytes ("replace").
            mmap: map the matrix of an `.npz` read-only from the file instead of reading it, so
                processes serving the same file share its pages (the word2vec formats interleave
                words and rows, so they are always read).
        """
        path = Path(path)
        fmt = format or format_from_suffix(path)
        if not path.is_file():
            raise NlprecError(f"vectors file {str(path)!r} does not exist" if not path.exists()
                              else f"vectors path {str(path)!r} is not a file")
        if fmt == "npz":
            return _load_npz(path, mmap)
        if fmt == "bin":
            keys, matrix = _read_word2vec_binary(path, unicode_errors)
        elif fmt == "text":
            keys, matrix = _read_word2vec_text(path, unicode_errors)
        else:
            raise NlprecError(f"unknown vectors format {fmt!r}: expected 'npz', 'bin' or 'text'")
        return _build(path, keys, matrix, _read_sidecar(path))


def sidecar_path(path: str | os.PathLike) -> Path:
    """Where the metadata of a word2vec-format file lives: `<path>.meta.json`."""
    return Path(f"{path}.meta.json")


# --- validation -------------------------------------------------------------------------------


def _check_shape(keys: list[str], matrix: np.ndarray) -> None:
    if matrix.ndim != 2:
        raise NlprecError(f"vector matrix must be 2-D (words, dim), got shape {matrix.shape}")
    if len(keys) != matrix.shape[0]:
        raise NlprecError(f"{len(keys):,} words but {matrix.shape[0]:,} matrix rows: expected one row per word")


def _check_keys(keys: list[str]) -> None:
    for row, key in enumerate(keys):
        if not isinstance(key, str) or not key:
            raise NlprecError(f"word at row {row} is {key!r}: expected a non-empty string")
        if _SEPARATOR.search(key):
            raise NlprecError(f"word {key!r} at row {row} contains whitespace: the word2vec formats "
                              "separate fields with spaces, so words must not contain them")


def _raise_duplicate(keys: list[str]) -> None:
    first: dict[str, int] = {}
    for row, key in enumerate(keys):
        if key in first:
            raise NlprecError(f"word {key!r} appears twice, at rows {first[key]} and {row}: expected unique words")
        first[key] = row


def _check_finite(keys: list[str], matrix: np.ndarray) -> None:
    bad_rows = np.flatnonzero(~np.isfinite(matrix).all(axis=1))
    if bad_rows.size:
        row = int(bad_rows[0])
        raise NlprecError(f"vector of word {keys[row]!r} (row {row}) has NaN or infinite values "
                          f"({bad_rows.size:,} such rows): expected finite numbers")


def _as_words(keys: list[str], scores: np.ndarray, ids: np.ndarray) -> list[list[tuple[str, float]]]:
    """Rows of (word, score), dropping the -1 fillers of a search that found fewer than k."""
    return [[(keys[i], float(s)) for s, i in zip(row_scores, row_ids) if i >= 0]
            for row_scores, row_ids in zip(scores.tolist(), ids.tolist())]


def _build(path: Path, keys: list[str], matrix: np.ndarray, meta: dict, copy: bool = True) -> Vectors:
    """A `Vectors` from loaded parts; validation errors name the file."""
    try:
        return Vectors(keys, matrix, meta, copy)
    except NlprecError as err:
        raise NlprecError(f"{path}: {err}") from None


def format_from_suffix(path: Path) -> VectorFormat:
    try:
        return FORMAT_BY_SUFFIX[path.suffix.lower()]
    except KeyError:
        raise NlprecError(f"cannot tell the vectors format of {str(path)!r} from its suffix: expected "
                          ".npz, .bin, .vec or .txt, or pass format='npz', 'bin' or 'text'") from None


def _meta_to_json(meta: dict) -> str:
    try:
        return json.dumps(meta, indent=2, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as err:
        raise NlprecError(f"vectors meta is not JSON-serialisable: {err}") from None


def _read_sidecar(path: Path) -> dict:
    sidecar = sidecar_path(path)
    if not sidecar.exists():
        return {}
    try:
        meta = json.loads(sidecar.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as err:
        raise NlprecError(f"{sidecar}: not valid JSON metadata ({err})") from None
    if not isinstance(meta, dict):
        raise NlprecError(f"{sidecar}: expected a JSON object, got {type(meta).__name__}")
    return meta


# --- native .npz ------------------------------------------------------------------------------


def write_npz(path: Path, vectors: Vectors, **extra: np.ndarray) -> Path:
    """Write the native `.npz` of `vectors` atomically, with `extra` arrays after the plain ones
    (`SubwordVectors` adds its n-grams there, so `Vectors.load` still reads the file)."""
    meta_json = _meta_to_json(vectors.meta)
    keys_utf8 = np.frombuffer("\n".join(vectors.keys).encode("utf-8"), dtype=np.uint8)  # newline can't be in a key
    with atomic_write(path) as handle:
        np.savez(handle, format_version=np.array(NPZ_FORMAT_VERSION), keys=keys_utf8,
                 matrix=vectors.matrix, meta=np.array(meta_json), **extra)
    return path


def _load_npz(path: Path, mmap: bool = False) -> Vectors:
    try:
        check_npz_sizes(path, ".npz vectors file")  # before numpy allocates what a damaged header claims
        with np.load(path, allow_pickle=False) as archive:
            missing = {"format_version", "keys", "matrix", "meta"} - set(archive.files)
            if missing:
                raise NlprecError(f"{path}: not an nlprec vectors file (missing {', '.join(sorted(missing))})")
            version = int(archive["format_version"])
            if version != NPZ_FORMAT_VERSION:
                raise NlprecError(f"{path}: vectors format version {version}, this nlprec reads {NPZ_FORMAT_VERSION}")
            keys_blob = archive["keys"].tobytes().decode("utf-8")
            matrix = _map_npz_member(path, "matrix") if mmap else None
            matrix = archive["matrix"] if matrix is None else matrix
            if matrix.dtype.kind not in "fiu":
                raise NlprecError(f"{path}: the vector matrix holds {matrix.dtype} values, expected numbers")
            meta = json.loads(str(archive["meta"]))
    except NlprecError:
        raise
    except ARCHIVE_ERRORS as err:
        raise NlprecError(f"{path}: not a readable .npz vectors file ({' '.join(str(err).split())[:160]})") from None
    if not isinstance(meta, dict):
        raise NlprecError(f"{path}: meta must be a JSON object, got {type(meta).__name__}")
    keys = keys_blob.split("\n") if keys_blob else []
    return _build(path, keys, matrix, meta, copy=not isinstance(matrix, np.memmap))


def _map_npz_member(path: Path, name: str) -> np.memmap | None:
    """A read-only memory map of the `.npy` member `name` of an uncompressed `.npz` (what
    `np.savez` writes), or None when it is compressed or not little-endian float32."""
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo(f"{name}.npy")
    if info.compress_type != zipfile.ZIP_STORED:
        return None
    with open(path, "rb") as handle:
        handle.seek(info.header_offset)
        local = handle.read(30)  # the zip local file header; name and extra field lengths at 26 and 28
        handle.seek(info.header_offset + 30 + int.from_bytes(local[26:28], "little")
                    + int.from_bytes(local[28:30], "little"))
        version = np.lib.format.read_magic(handle)
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, fortran, dtype = read_header(handle)
        offset = handle.tell()
    if fortran or dtype != np.dtype("<f4") or len(shape) != 2 or 0 in shape:
        return None
    return np.memmap(path, dtype="<f4", mode="r", offset=offset, shape=shape)


# --- word2vec text and binary -----------------------------------------------------------------


def _save_word2vec_binary(path: Path, vectors: Vectors) -> None:
    rows = vectors.matrix.astype("<f4", copy=False)  # (n, dim) little-endian, as word2vec.c writes
    with atomic_write(path) as handle:
        handle.write(f"{len(vectors)} {vectors.dim}\n".encode("ascii"))
        handle.writelines(key.encode("utf-8") + b" " + row.tobytes() + b"\n" for key, row in zip(vectors.keys, rows))


def _save_word2vec_text(path: Path, vectors: Vectors) -> None:
    from nlprec.data.float_text import format_rows  # numba loads only when text is written

    rows = format_rows(vectors.matrix)  # 9 significant digits ("%.9g"): exact for float32
    with atomic_write(path) as handle:
        handle.write(f"{len(vectors)} {vectors.dim}\n".encode("ascii"))
        handle.writelines(key.encode("utf-8") + b" " + row + b"\n" for key, row in zip(vectors.keys, rows))


def _parse_header(path: Path, first_line: bytes, complete: bool) -> tuple[int, int]:
    """(count, dim) from the `"<count> <dim>"` line, or a one-line error quoting what was there."""
    parts = first_line.split()
    if complete and len(parts) == 2 and all(p.isdigit() for p in parts) and int(parts[1]) > 0:
        return int(parts[0]), int(parts[1])
    shown = first_line[:60].decode("utf-8", errors="replace").strip()
    raise NlprecError(f"{path} line 1: expected '<count> <dim>' header, got {shown!r}")


def _truncated(path: Path, count: int, dim: int, found: int) -> NlprecError:
    return NlprecError(f"{path} is truncated: expected {count:,} vectors of dim {dim}, found {found:,}")


def _decode_words(
    path: Path, raw_words: list[bytes], unicode_errors: UnicodeErrors, where: Callable[[int], str]
) -> list[str]:
    """Decode all words in one call; a bad word is reported at `where(row)` in the file."""
    if not raw_words:
        return []
    blob = b"\n".join(raw_words)  # "\n" cannot occur inside a word
    try:
        return blob.decode("utf-8", errors=unicode_errors).split("\n")
    except UnicodeDecodeError as err:
        row = blob.count(b"\n", 0, err.start)
        raise NlprecError(f"{path} {where(row)}: word {raw_words[row][:40]!r} is not UTF-8; "
                          "load with unicode_errors='replace' to accept it") from None


def _read_word2vec_binary(path: Path, unicode_errors: UnicodeErrors) -> tuple[list[str], np.ndarray]:
    """Parse a word2vec.c / gensim binary file, memory-mapped rather than read into memory.

    Words have variable length, so finding each one is a scan; each row's floats are one memory
    copy into a preallocated buffer, and all words are decoded in a single call.
    """
    with open(path, "rb") as handle:
        if os.fstat(handle.fileno()).st_size == 0:
            raise NlprecError(f"{path} line 1: expected '<count> <dim>' header, got an empty file")
        data = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
    with data:
        header_end = data.find(b"\n", 0, 64)
        count, dim = _parse_header(path, data[: header_end if header_end >= 0 else 64], header_end >= 0)
        size, pos, find = len(data), header_end + 1, data.find
        row_bytes = 4 * dim
        capacity = min(count, (size - pos) // (row_bytes + 2))  # a row is >= 1 byte, space, floats
        payload = bytearray(capacity * row_bytes)
        out = memoryview(payload)
        raw_words: list[bytes] = []
        offsets: list[int] = []
        for row in range(count):
            while pos < size and data[pos] == 0x0A:  # word2vec.c's "\n" after each vector
                pos += 1
            space = find(b" ", pos)
            if row == capacity or space < 0 or space + 1 + row_bytes > size:
                raise _truncated(path, count, dim, row)
            raw_words.append(data[pos:space])
            offsets.append(pos)
            out[row * row_bytes : (row + 1) * row_bytes] = data[space + 1 : space + 1 + row_bytes]
            pos = space + 1 + row_bytes
        if data[pos : pos + 64].strip():
            raise NlprecError(f"{path}: the header says {count:,} vectors but more data follows at byte {pos:,}")
    keys = _decode_words(path, raw_words, unicode_errors, lambda row: f"byte {offsets[row]:,}")
    return keys, np.frombuffer(payload, dtype="<f4").reshape(count, dim)  # (count, dim)


def _read_word2vec_text(path: Path, unicode_errors: UnicodeErrors) -> tuple[list[str], np.ndarray]:
    """Parse word2vec / gensim / fastText text: words split off in Python, numbers parsed in C."""
    lines = path.read_bytes().split(b"\n")  # file line i + 1 is lines[i]
    count, dim = _parse_header(path, lines[0][:64], len(lines) > 1 and len(lines[0]) <= 64)
    raw_words, values = [], []
    for row, line in enumerate(lines[1 : count + 1]):
        word, _, rest = line.rstrip().partition(b" ")
        if rest.count(b" ") != dim - 1 or not rest:  # fast check: single spaces, as every writer uses
            if not any(later.strip() for later in lines[row + 2 :]) or row + 2 == len(lines):
                raise _truncated(path, count, dim, row)  # nothing after it, or no newline after it
            got = len(rest.split(b" ")) if rest else 0
            raise NlprecError(f"{path} line {row + 2}: expected {dim} values after the word, "
                              f"separated by single spaces, got {got}")
        raw_words.append(word)
        values.append(rest)
    if len(values) < count:
        raise _truncated(path, count, dim, len(values))
    extra = next((i for i, line in enumerate(lines[count + 1 :]) if line.strip()), None)
    if extra is not None:
        raise NlprecError(f"{path} line {count + 2 + extra}: the header says {count:,} vectors but more rows follow")
    keys = _decode_words(path, raw_words, unicode_errors, lambda row: f"line {row + 2}")
    return keys, _parse_values(path, values, count, dim)


def _parse_values(path: Path, values: list[bytes], count: int, dim: int) -> np.ndarray:
    """Parse the space-separated numbers of every row at once (pandas' C parser, exact float32)."""
    if count == 0:
        return np.zeros((0, dim), dtype=np.float32)
    import pandas as pd  # only text vectors need it; keeps the CLI's start fast

    try:
        frame = pd.read_csv(io.BytesIO(b"\n".join(values)), sep=" ", header=None, dtype=np.float32,
                            quoting=csv.QUOTE_NONE, na_filter=False, engine="c")
        return frame.to_numpy(dtype=np.float32)  # (count, dim)
    except (ValueError, TypeError):  # a token pandas does not parse: find it, or parse as Python does (nan, inf)
        rows = []
        for row, line in enumerate(values):
            try:
                rows.append([float(token) for token in line.split(b" ")])
            except ValueError:
                token = next(t for t in line.split(b" ") if not _is_number(t))
                shown = token[:30].decode("utf-8", "replace")
                raise NlprecError(f"{path} line {row + 2}: expected a number, got {shown!r}") from None
        return np.array(rows, dtype=np.float32)  # (count, dim); NaN/inf rows are reported by the caller


def _is_number(token: bytes) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True
