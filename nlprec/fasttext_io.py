"""Read and write Facebook fastText `.bin` models (format version 12), without fastText itself.

The layout, from fastText's FastText::saveModel, Args::save, Dictionary::save and
DenseMatrix::save (all little-endian):

    int32 magic 793712314, int32 version 12
    args: int32 dim, ws, epoch, minCount, neg, wordNgrams, loss (1 hs, 2 ns, 3 softmax, 4 ova),
          model (1 cbow, 2 skipgram, 3 supervised), bucket, minn, maxn, lrUpdateRate; float64 t
    dictionary: int32 size, nwords, nlabels; int64 ntokens, pruneidx_size; then per entry the
          UTF-8 word, a NUL byte, int64 count, int8 type (0 word, 1 label); then pruneidx_size
          pairs of int32
    bool quantised input; input matrix: int64 rows, int64 cols, rows x cols float32
          (nwords word rows, then bucket n-gram rows)
    bool quantised output; output matrix likewise

Reading gives the parts of a `SubwordVectors` (which `nlprec.subword_vectors` builds from them),
with word vectors equal to what fastText's `get_word_vector` returns (mean of the word row and
its n-gram rows; fastText's end-of-sentence token "</s>" has no n-grams). Quantised (.ftz) and
pruned models are refused with a one-line error. Writing lets fastText, gensim
(`load_facebook_model`) and nlprec read a model nlprec trained. This module knows the file
layout only: it imports nothing of nlprec's vector classes.
"""

from __future__ import annotations

import mmap
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nlprec.data.subwords import SubwordSpec, subword_rows
from nlprec.errors import NlprecError
from nlprec.io import atomic_write

FASTTEXT_MAGIC = 793712314  # first int32 of every Facebook fastText .bin / .ftz
FASTTEXT_VERSION = 12
COMPOSE_BLOCK = 65_536  # words composed per block: bounds the gathered rows' memory
EOS = "</s>"
_ARGS = struct.Struct("<12id")  # dim ws epoch minCount neg wordNgrams loss model bucket minn maxn lrUpdateRate t
_DICT_HEADER = struct.Struct("<3i2q")  # size nwords nlabels ntokens pruneidx_size
_MODEL_CODES = {"cbow": 1, "skipgram": 2, "supervised": 3}


@dataclass(frozen=True)
class FastTextArgs:
    """The training arguments stored in a `.bin` (those that matter for reading it, plus provenance)."""

    dim: int  # vector size
    window: int  # ws
    epochs: int  # epoch
    min_count: int  # minCount
    negative: int  # neg
    model: str  # "cbow", "skipgram" or "supervised"
    buckets: int  # bucket
    min_n: int  # minn
    max_n: int  # maxn
    sample: float  # t
    loss: int = 2  # 1 hs, 2 ns, 3 softmax, 4 ova
    word_ngrams: int = 1  # wordNgrams
    lr_update_rate: int = 100  # lrUpdateRate


class _Reader:
    """Sequential little-endian reads of a memory-mapped file; one-line errors name the file.

    Matrices are zero-copy views of the mapping, so a multi-GB model is paged in on demand.
    """

    def __init__(self, path: Path):
        self.path = path
        with open(path, "rb") as handle:
            self.data = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
        self.pos = 0

    def take(self, size: int) -> bytes:
        if size < 0 or self.pos + size > len(self.data):
            raise NlprecError(f"{self.path} is truncated at byte {self.pos:,}: not a complete fastText .bin model")
        chunk = self.data[self.pos:self.pos + size]
        self.pos += size
        return chunk

    def unpack(self, layout: struct.Struct) -> tuple:
        return layout.unpack(self.take(layout.size))

    def remaining(self) -> int:
        return len(self.data) - self.pos

    def matrix(self) -> np.ndarray:
        rows, cols = struct.unpack("<2q", self.take(16))
        if rows < 0 or cols < 0:
            raise NlprecError(f"{self.path}: a {rows:,} x {cols:,} matrix declared at byte {self.pos - 16:,}: "
                              "the file is damaged")
        if 4 * rows * cols > self.remaining():  # checked before any allocation
            raise NlprecError(f"{self.path} is truncated: a {rows:,} x {cols:,} matrix declared at byte "
                              f"{self.pos - 16:,} does not fit in the {self.remaining():,} bytes left")
        start = self.pos
        self.take(4 * rows * cols)
        return np.frombuffer(self.data, "<f4", rows * cols, start).reshape(rows, cols)  # (rows, cols)


def is_fasttext_bin(path: str | os.PathLike) -> bool:
    """Whether `path` starts with the magic number of a Facebook fastText model."""
    with open(path, "rb") as handle:
        head = handle.read(4)
    return len(head) == 4 and int(np.frombuffer(head, "<i4")[0]) == FASTTEXT_MAGIC


def read_fasttext_bin(path: str | os.PathLike) -> tuple[FastTextArgs, list[str], np.ndarray, np.ndarray, np.ndarray]:
    """(args, words, counts (V,), input matrix (V + buckets, d), output matrix) of a fastText model."""
    reader = _Reader(Path(path))
    magic, version = struct.unpack("<2i", reader.take(8))
    if magic != FASTTEXT_MAGIC:
        raise NlprecError(f"{path}: not a fastText .bin model (magic number {magic}, expected {FASTTEXT_MAGIC})")
    if version != FASTTEXT_VERSION:
        raise NlprecError(f"{path}: fastText model version {version}; this reader reads version {FASTTEXT_VERSION} "
                          "(re-save it with a current fastText)")
    dim, ws, epoch, min_count, neg, word_ngrams, loss, model, bucket, minn, maxn, lr_rate, t = reader.unpack(_ARGS)
    model_name = {code: name for name, code in _MODEL_CODES.items()}.get(model, str(model))
    args = FastTextArgs(dim, ws, epoch, min_count, neg, model_name, bucket, minn, maxn, t, loss, word_ngrams, lr_rate)
    if dim < 1 or bucket < 0 or minn < 0 or maxn < 0:
        raise NlprecError(f"{path}: impossible fastText arguments (dim {dim}, bucket {bucket}, minn {minn}, "
                          f"maxn {maxn}): the file is damaged")
    size, nwords, _, _, prune_size = reader.unpack(_DICT_HEADER)
    if not 0 <= nwords <= size or 10 * size > reader.remaining():  # an entry takes >= 10 bytes
        raise NlprecError(f"{path}: the dictionary declares {size:,} entries ({nwords:,} words) at byte 84, more "
                          f"than the {reader.remaining():,} bytes left can hold: the file is damaged")
    words, counts = _read_entries(reader, size)
    if prune_size > 0:
        raise NlprecError(f"{path}: a pruned (quantised) fastText model; only full unsupervised .bin models are read")
    if reader.take(1) != b"\x00":
        raise NlprecError(f"{path}: a quantised fastText model (.ftz); only full .bin models are read")
    input_matrix = reader.matrix()
    reader.take(1)  # quantised output flag; the output matrix follows
    output_matrix = reader.matrix()
    if input_matrix.shape != (nwords + bucket, dim):
        raise NlprecError(f"{path}: input matrix {input_matrix.shape}, expected ({nwords + bucket}, {dim})")
    return args, words[:nwords], counts[:nwords], input_matrix, output_matrix


def _read_entries(reader: _Reader, size: int) -> tuple[list[str], np.ndarray]:
    words, counts = [], np.zeros(size, np.int64)
    data = reader.data
    for entry in range(size):
        end = data.find(b"\x00", reader.pos)
        if end < 0:
            raise NlprecError(f"{reader.path} is truncated in the dictionary (entry {entry:,} of {size:,})")
        words.append(data[reader.pos:end].decode("utf-8", errors="replace"))
        reader.pos = end + 1
        counts[entry] = struct.unpack("<qb", reader.take(9))[0]
    return words, counts


def read_fasttext_vectors(path: str | os.PathLike) -> tuple[list[str], np.ndarray, np.ndarray, SubwordSpec, dict]:
    """The parts of a `SubwordVectors` in a fastText model: words, their (V, d) vectors as fastText
    computes them, the (buckets, d) n-gram rows ((0, d) without n-grams), the n-gram spec and meta."""
    args, words, counts, input_matrix, _ = read_fasttext_bin(path)
    try:  # the parts are each well-formed; checks across them (n-gram settings, words) name the file
        spec = SubwordSpec(args.min_n, args.max_n, args.buckets) if args.max_n > 0 else SubwordSpec(0, 0, 0)
        matrix = np.vstack([_compose(words[start:start + COMPOSE_BLOCK], start, len(words), spec, input_matrix)
                            for start in range(0, len(words), COMPOSE_BLOCK)]) if words else \
            np.zeros((0, args.dim), np.float32)  # (V, d)
    except NlprecError as err:
        raise NlprecError(f"{path}: {err}") from None
    meta = {"model": "fasttext", "source": "facebook fastText .bin", "args": args.__dict__,
            "counts_total": int(counts.sum())}
    ngram_matrix = input_matrix[len(words):] if spec.enabled else np.zeros((0, args.dim), np.float32)
    return words, matrix, ngram_matrix, spec, meta


def _compose(words: list[str], first_id: int, n_words: int, spec: SubwordSpec,
             input_matrix: np.ndarray) -> np.ndarray:
    """(W, d) mean of each word's own row and n-gram rows; fastText gives "</s>" no n-grams."""
    plain = [word if word != EOS else "" for word in words]  # "" has n-grams only when min_n <= 2; masked below
    offsets, rows = subword_rows(plain, spec, np.arange(first_id, first_id + len(words)), n_words)
    eos = np.array([word == EOS for word in words])  # (W,)
    lengths = np.where(eos, 1, np.diff(offsets))  # (W,) rows used per word
    keep = np.arange(len(rows)) < np.repeat(offsets[:-1] + lengths, np.diff(offsets))  # (R,) drop masked rows
    sums = np.add.reduceat(input_matrix[rows[keep]], np.concatenate([[0], np.cumsum(lengths)[:-1]]), axis=0)
    return sums / lengths[:, None]


def save_fasttext_bin(path: str | os.PathLike, args: FastTextArgs, words: list[str], counts: np.ndarray,
                      input_matrix: np.ndarray, output_matrix: np.ndarray, tokens: int) -> Path:
    """Write an unsupervised model fastText can load; input (V + buckets, d), output (V, d)."""
    path = Path(path)
    with atomic_write(path) as handle:
        handle.write(struct.pack("<2i", FASTTEXT_MAGIC, FASTTEXT_VERSION))
        handle.write(_ARGS.pack(args.dim, args.window, args.epochs, args.min_count, args.negative, args.word_ngrams,
                                args.loss, _MODEL_CODES[args.model], args.buckets, args.min_n, args.max_n,
                                args.lr_update_rate, args.sample))
        handle.write(_DICT_HEADER.pack(len(words), len(words), 0, int(tokens), -1))
        handle.writelines(word.encode("utf-8") + b"\x00" + struct.pack("<qb", int(count), 0)
                          for word, count in zip(words, counts))
        for flag, matrix in ((b"\x00", input_matrix), (b"\x00", output_matrix)):
            handle.write(flag + struct.pack("<2q", *matrix.shape))
            handle.write(np.ascontiguousarray(matrix, "<f4").tobytes())
    return path
