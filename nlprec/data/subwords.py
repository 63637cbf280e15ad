"""Character n-grams hashed into buckets, exactly as Facebook's fastText does it.

Bojanowski, Grave, Joulin, Mikolov, "Enriching Word Vectors with Subword Information" (TACL 2017);
the rules below follow fastText's `Dictionary::computeSubwords` and `Dictionary::hash`
(src/dictionary.cc), so that a model read from a fastText `.bin` composes the same vectors:

- a word is wrapped as "<" + word + ">" and taken as UTF-8 bytes;
- an n-gram is n UTF-8 *characters* (a character is a lead byte plus its continuation bytes,
  those with `byte & 0xC0 == 0x80`), for min_n <= n <= max_n, starting at every character;
- the lone "<" and ">" are never n-grams (they only could be when min_n == 1);
- hash = 32-bit FNV-1a over the n-gram's bytes, each byte taken as a *signed* int8 and then
  cast to uint32 (so bytes >= 0x80 xor in 0xFFFFFF80 | byte), starting from 2166136261 and
  multiplying by 16777619; bucket = hash % buckets;
- the n-gram's row in the input matrix is n_words + bucket; a vocabulary word's own row is its id.

A word's vector is the mean of its rows. `max_n == 0` turns subwords off (plain word vectors).
Everything runs in compiled loops (nlprec.data.ngram_kernels, imported on first use so that
loading plain word vectors never loads numba) over one concatenated byte array, one call per word list.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nlprec.errors import NlprecError

BOW, EOW = "<", ">"


@dataclass(frozen=True)
class SubwordSpec:
    """Which n-grams a word has."""

    min_n: int = 3  # shortest n-gram in characters, >= 1
    max_n: int = 6  # longest n-gram in characters, >= min_n (0: no n-grams at all)
    buckets: int = 2_000_000  # hash buckets for n-gram vectors, >= 1

    def __post_init__(self) -> None:
        if self.max_n == 0:
            return
        if self.min_n < 1:
            raise NlprecError(f"--min-n must be >= 1, got {self.min_n} (or set --max-n 0 to turn n-grams off)")
        if self.min_n > self.max_n:
            raise NlprecError(f"--min-n ({self.min_n}) is above --max-n ({self.max_n}): "
                              "set --min-n <= --max-n, e.g. --min-n 3 --max-n 6")
        if self.buckets < 1:
            raise NlprecError(f"--buckets must be >= 1, got {self.buckets}: n-grams need hash buckets "
                              "(fastText's default is 2000000), or set --max-n 0 to turn n-grams off")

    @property
    def enabled(self) -> bool:
        return self.max_n > 0


def fnv1a(data: bytes) -> int:
    """fastText's hash of a byte string (for tests and single lookups)."""
    from nlprec.data.ngram_kernels import _hash

    return int(_hash(np.frombuffer(data, np.uint8), 0, len(data)))


def ngram_buckets(words: list[str], spec: SubwordSpec) -> tuple[np.ndarray, np.ndarray]:
    """The n-gram buckets of each word: (offsets (W+1,) int64, buckets (M,) int64).

    Word w's buckets are buckets[offsets[w]:offsets[w+1]], in fastText's order (by start
    character, then by length). Empty for every word when n-grams are off.
    """
    if not spec.enabled or not words:
        return np.zeros(len(words) + 1, np.int64), np.zeros(0, np.int64)
    encoded = [(BOW + word + EOW).encode("utf-8") for word in words]
    lengths = np.fromiter((len(item) for item in encoded), np.int64, len(encoded))  # (W,)
    ends = np.cumsum(lengths)
    starts = ends - lengths
    data = np.frombuffer(b"".join(encoded), np.uint8)
    from nlprec.data.ngram_kernels import _count_ngrams, _fill_ngrams  # numba loads only when n-grams are hashed

    counts = _count_ngrams(data, starts, ends, spec.min_n, spec.max_n)  # (W,)
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    out = np.empty(int(offsets[-1]), np.int64)
    _fill_ngrams(data, starts, ends, spec.min_n, spec.max_n, spec.buckets, offsets, out)
    return offsets, out


def ngrams(word: str, spec: SubwordSpec) -> list[str]:
    """The n-gram strings of one word, in the order of `ngram_buckets` (for display and tests)."""
    wrapped = BOW + word + EOW
    grams = []
    for i in range(len(wrapped)):
        for n in range(spec.min_n, spec.max_n + 1):
            if i + n > len(wrapped) or (n == 1 and (i == 0 or i + n == len(wrapped))):
                continue
            grams.append(wrapped[i:i + n])
    return grams


def subword_rows(words: list[str], spec: SubwordSpec, word_ids: np.ndarray | None = None,
                 n_words: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Input-matrix rows of each word as CSR: (offsets (W+1,) int64, rows (R,) int32).

    A word's rows are its own id (when `word_ids[w] >= 0`, i.e. it is in the vocabulary) and
    then `n_words + bucket` for each of its n-grams, as fastText's `getSubwords`.
    """
    offsets, buckets = ngram_buckets(words, spec)
    word_ids = np.full(len(words), -1, np.int64) if word_ids is None else np.asarray(word_ids, np.int64)
    own = (word_ids >= 0).astype(np.int64)  # (W,) 1 where the word has its own row
    counts = np.diff(offsets) + own  # (W,)
    new_offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    rows = np.empty(int(new_offsets[-1]), np.int64)
    ngram_position = np.arange(len(buckets)) + np.repeat(new_offsets[:-1] + own - offsets[:-1], np.diff(offsets))
    rows[ngram_position] = n_words + buckets
    rows[new_offsets[:-1][own == 1]] = word_ids[own == 1]
    if len(rows) and rows.max() >= 2**31:
        raise NlprecError(f"{n_words:,} words + {spec.buckets:,} buckets exceed 2**31 rows: lower --buckets")
    return new_offsets, rows.astype(np.int32)
