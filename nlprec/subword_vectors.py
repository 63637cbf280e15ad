"""Word vectors that also answer words outside the vocabulary, from character n-grams (fastText).

A `SubwordVectors` is a `Vectors` (the vocabulary's composed word vectors, used by every lookup,
index and evaluation as they are) plus the n-gram bucket rows and the `SubwordSpec` that maps
a word to its buckets. `vector(word)` answers any word: a vocabulary word by its row, another
word by the mean of its n-gram rows, exactly as fastText's `get_word_vector`. The query methods
of `Vectors` it overrides (`vectors_for`, `unanswerable`, `with_words`, `most_similar`,
`batch_analogy`) answer unseen words too, so callers never ask which kind they hold; its
searches are an exact matrix product over the vocabulary, without a FAISS index.

File format (`.npz`, read with `allow_pickle=False`): the plain vectors' arrays (`format_version`,
`keys`, `matrix`, `meta`, so `Vectors.load` reads it as ordinary vectors) plus
- `ngram_matrix`: (buckets, dim) float32, row b = the vector of n-gram bucket b;
- `subwords`: a JSON string {"min_n", "max_n", "buckets", "hash": "fasttext-fnv1a", "version": 1}.
`.vec`/`.txt`/word2vec `.bin` exports keep only the vocabulary's vectors. `load_vectors` opens
any vectors file: an `.npz` with n-grams or a Facebook fastText `.bin` (recognised by its magic
number, not its suffix; read by `nlprec.fasttext_io`) as `SubwordVectors`, everything else as
`Vectors`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Sequence

import numpy as np

from nlprec.data.subwords import SubwordSpec, ngram_buckets
from nlprec.errors import NlprecError
from nlprec.fasttext_io import is_fasttext_bin, read_fasttext_vectors
from nlprec.index import COSMUL_EPS, AnalogyMethod, VectorIndex, normalise
from nlprec.io import ARCHIVE_ERRORS
from nlprec.vectors import Vectors, format_from_suffix, write_npz

SUBWORD_FORMAT_VERSION = 1
HASH_NAME = "fasttext-fnv1a"


class SubwordVectors(Vectors):
    """Vectors of a vocabulary plus n-gram rows for any other word.

    Args:
        keys: the vocabulary words.
        matrix: (n, dim) their word vectors (mean of each word's own and n-gram rows).
        ngram_matrix: (buckets, dim) n-gram bucket rows; (0, dim) when the model has no n-grams.
        spec: min_n, max_n and buckets of the hashing.
        meta: provenance.
    """

    subwords = True  # unseen words composed from n-grams; searched exactly, never through a FAISS index

    def __init__(self, keys: list[str], matrix: np.ndarray, ngram_matrix: np.ndarray, spec: SubwordSpec,
                 meta: dict | None = None) -> None:
        super().__init__(keys, matrix, meta)
        ngram_matrix = np.asarray(ngram_matrix, dtype=np.float32)  # (buckets, dim)
        expected = (spec.buckets if spec.enabled else 0, self.dim)
        if ngram_matrix.shape != expected:
            raise NlprecError(f"n-gram matrix has shape {ngram_matrix.shape}, expected {expected} "
                              f"for {spec.buckets:,} buckets of dim {self.dim}")
        self.ngram_matrix = ngram_matrix
        self.spec = spec

    def __repr__(self) -> str:
        return (f"SubwordVectors({len(self):,} words, dim {self.dim}, n-grams {self.spec.min_n}-{self.spec.max_n} "
                f"in {self.spec.buckets:,} buckets)")

    def vector(self, word: str) -> np.ndarray:
        """The (dim,) vector of any word: its row, or the mean of its n-gram rows when unseen."""
        return self.vectors_for([word])[0]

    __getitem__ = vector

    def vectors_for(self, words: Sequence[str]) -> np.ndarray:
        """(Q, dim) vectors of `words`; an unseen word with no n-gram raises a one-line error."""
        ids = np.array([self.key_to_index.get(word, -1) for word in words], dtype=np.int64)  # (Q,)
        out = np.zeros((len(words), self.dim), np.float32)  # (Q, dim)
        out[ids >= 0] = self.matrix[ids[ids >= 0]]
        unseen = np.flatnonzero(ids < 0)
        if len(unseen):
            out[unseen] = self._compose([words[i] for i in unseen])
        return out

    def unanswerable(self, words: Sequence[str]) -> list[str]:
        """The `words` outside the vocabulary that have no n-gram to compose them from, in order."""
        missing = [word for word in words if word not in self.key_to_index]
        if not missing or not self.spec.enabled:
            return missing
        counts = np.diff(ngram_buckets(missing, self.spec)[0])  # (W,) n-grams per word
        return [word for word, count in zip(missing, counts) if count == 0]

    def _compose(self, words: list[str]) -> np.ndarray:
        offsets, buckets = ngram_buckets(words, self.spec)
        counts = np.diff(offsets)  # (W,)
        if (counts == 0).any():
            word = words[int(np.flatnonzero(counts == 0)[0])]
            reason = ("this model has no n-grams (trained with --max-n 0)" if not self.spec.enabled
                      else f"it is shorter than the {self.spec.min_n}-character n-grams")
            raise NlprecError(self._unknown_word_message(word) + f"; it cannot be composed from n-grams: {reason}")
        sums = np.add.reduceat(self.ngram_matrix[buckets], offsets[:-1], axis=0)  # (W, dim)
        return (sums / counts[:, None]).astype(np.float32)

    def most_similar(
        self, words: str | Sequence[str], k: int = 10, index: VectorIndex | None = None
    ) -> list[list[tuple[str, float]]]:
        """The `k` nearest vocabulary words by cosine to each word (itself excluded), unseen words
        too: one exact matrix product of the composed queries with the unit vocabulary."""
        _refuse_index(index)
        words = [words] if isinstance(words, str) else list(words)
        queries = normalise(self.vectors_for(words))  # (Q, dim)
        exclude = [[self.key_to_index[w]] if w in self.key_to_index else [] for w in words]
        return self._top_k(queries @ self.unit_matrix().T, exclude, k)  # scores (Q, V)

    def batch_analogy(
        self, questions: Sequence[tuple[str, str, str]], k: int = 5, method: AnalogyMethod = "3cosadd",
        index: VectorIndex | None = None,
    ) -> list[list[tuple[str, float]]]:
        """Answers to each "a : b :: c : ?" over the vocabulary, as `Vectors.batch_analogy`, unseen
        words composed from n-grams; the vocabulary words among a, b, c are never answers."""
        _refuse_index(index)
        return [self._analogy(a, b, c, k, method) for a, b, c in questions]

    def _analogy(self, a: str, b: str, c: str, k: int, method: str) -> list[tuple[str, float]]:
        """One question, scored against every vocabulary word with one matrix-vector product."""
        unit = self.unit_matrix()
        qa, qb, qc = normalise(self.vectors_for([a, b, c]))  # (dim,) each
        if method == "3cosadd":
            scores = unit @ normalise((qb - qa + qc)[None])[0]  # (V,)
        elif method == "3cosmul":
            scores = (1 + unit @ qb) * (1 + unit @ qc) / (2 * (1 + unit @ qa + 2 * COSMUL_EPS))  # (V,)
        else:
            raise NlprecError(f"analogy method {method!r}: expected '3cosadd' or '3cosmul'")
        exclude = [self.key_to_index[w] for w in (a, b, c) if w in self.key_to_index]
        return self._top_k(scores[None], [exclude], k)[0]

    def _top_k(self, scores: np.ndarray, exclude: list[list[int]], k: int) -> list[list[tuple[str, float]]]:
        results = []
        for row, excluded in zip(scores, exclude):
            row = row.copy()
            row[excluded] = -np.inf
            top = np.argsort(-row, kind="stable")[:k] if k >= len(row) else np.argpartition(-row, k)[:k]
            top = top[np.argsort(-row[top], kind="stable")]
            results.append([(self.keys[i], float(row[i])) for i in top if np.isfinite(row[i])])
        return results

    def with_words(self, words: Sequence[str]) -> Vectors:
        """Plain `Vectors` of the vocabulary plus the composable unseen `words` (for evaluation files)."""
        extra = list(dict.fromkeys(w for w in words if w and w not in self.key_to_index and " " not in w))
        if extra and self.spec.enabled:
            counts = np.diff(ngram_buckets(extra, self.spec)[0])
            extra = [w for w, n in zip(extra, counts) if n > 0]
        else:
            extra = []
        matrix = np.vstack([self.matrix, self._compose(extra)]) if extra else self.matrix
        return Vectors(self.keys + extra, matrix, self.meta)

    def save(self, path: str | os.PathLike, format: str | None = None) -> Path:
        """`.npz`: vectors and n-grams (module docstring); other formats: the vocabulary's vectors only."""
        path = Path(path)
        if (format or format_from_suffix(path)) != "npz":
            return super().save(path, format)
        settings = json.dumps({"min_n": self.spec.min_n, "max_n": self.spec.max_n, "buckets": self.spec.buckets,
                               "hash": HASH_NAME, "version": SUBWORD_FORMAT_VERSION})
        return write_npz(path, self, ngram_matrix=self.ngram_matrix, subwords=np.array(settings))

    @classmethod
    def load(cls, path: str | os.PathLike, format: str | None = None, unicode_errors: str = "strict") -> SubwordVectors:
        """Read an nlprec subword `.npz` or a Facebook fastText `.bin`."""
        vectors = load_vectors(path)
        if not isinstance(vectors, SubwordVectors):
            raise NlprecError(f"{path} holds word vectors without n-grams: train with --arch fasttext and save "
                              "as .npz, or load a fastText .bin")
        return vectors


def _refuse_index(index: VectorIndex | None) -> None:
    if index is not None:
        raise NlprecError("subword vectors are searched exactly (their own matrix product): pass no index")


def load_vectors(path: str | os.PathLike) -> Vectors:
    """Any vectors file: `SubwordVectors` for an n-gram `.npz` or a fastText `.bin`, else `Vectors`."""
    path = Path(path)
    if path.is_file() and path.suffix.lower() == ".npz":
        subword = _load_subword_npz(path)
        if subword is not None:
            return subword
    if path.is_file() and is_fasttext_bin(path):
        return _load_fasttext_bin(path)
    return Vectors.load(path)


def _load_fasttext_bin(path: Path) -> SubwordVectors:
    """A Facebook fastText `.bin` as `SubwordVectors` (word vectors as fastText computes them)."""
    words, matrix, ngram_matrix, spec, meta = read_fasttext_vectors(path)
    try:  # the parts are each well-formed; checks across them (words, shapes) name the file
        return SubwordVectors(words, matrix, ngram_matrix, spec, meta)
    except NlprecError as err:
        raise NlprecError(f"{path}: {err}") from None


def _load_subword_npz(path: Path) -> SubwordVectors | None:
    """The `SubwordVectors` of an n-gram `.npz`, None for a plain one; a damaged file is a one-line error."""
    plain = Vectors.load(path)  # checks the archive, its sizes and the plain arrays first
    try:
        with np.load(path, allow_pickle=False) as archive:
            if "ngram_matrix" not in archive.files:
                return None
            settings = json.loads(str(archive["subwords"]))
            ngram_matrix = archive["ngram_matrix"]
        if not isinstance(settings, dict) or ngram_matrix.dtype.kind not in "fiu":
            raise NlprecError(f"subword settings {str(settings)[:80]}, n-gram matrix of {ngram_matrix.dtype}")
        if not np.isfinite(ngram_matrix).all():
            raise NlprecError("the n-gram matrix has NaN or infinite values: expected finite numbers")
        if settings.get("hash") != HASH_NAME or settings.get("version") != SUBWORD_FORMAT_VERSION:
            raise NlprecError(f"subword format {settings}, this nlprec reads version "
                              f"{SUBWORD_FORMAT_VERSION} with hash {HASH_NAME!r}")
        spec = SubwordSpec(int(settings["min_n"]), int(settings["max_n"]), int(settings["buckets"]))
        return SubwordVectors(plain.keys, plain.matrix, ngram_matrix, spec, plain.meta)
    except NlprecError as err:
        raise NlprecError(f"{path}: not a readable subword .npz ({err})") from None
    except ARCHIVE_ERRORS as err:
        raise NlprecError(f"{path}: not a readable subword .npz ({type(err).__name__}: "
                          f"{' '.join(str(err).split())[:120]})") from None
