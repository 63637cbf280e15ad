"""A text corpus encoded once into word ids plus sentence boundaries, streamed from disk.

Two passes over the data, neither of which holds the corpus in memory:
1. the file is read in blocks of lines; each block is factorized (a compiled byte scan for ASCII
   text and the default tokenizer, else pandas' hash table) into int codes of the file's
   distinct tokens, which are counted and appended to a temporary file;
2. with the vocabulary known, the codes are mapped to ids block by block, words below min-count
   are dropped (as word2vec.c and gensim do, so windows span them), and the ids and the
   sentence ends are appended to two more temporary files.

The encoded corpus then lives in those files (`spill_dir`, default the system's temporary
folder; they are unlinked when created, so nothing is left behind): training *streams* each
chunk with a positioned read (`read_ids`, `read_sentence_ends`), so the resident memory is
the vocabulary and the model, whatever the corpus size; files are read, not memory-mapped,
so the pages of a long corpus are the page cache's, never the process's. `ids` and
`sentence_ends` load everything, for callers that want whole arrays (GloVe's counter, tests).
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np

from nlprec.data.tokenize import RegexTokenizer, block_text, check_encoding, iter_raw_blocks, token_chunk
from nlprec.data.vocab import Vocab
from nlprec.errors import NlprecError
from nlprec.io import sha256_file

READ_BLOCK_BYTES = 8 << 20  # text per tokenizer block: bounds the memory of Python strings
SENTENCE_BLOCK = 1 << 20  # sentence ends per read when a whole file is scanned


@dataclass
class EncodedCorpus:
    """The corpus as ids on disk: `ids[sentence_ends[i-1]:sentence_ends[i]]` is sentence i."""

    ids_file: IO[bytes]  # (N,) int32 in-vocabulary word ids in corpus order (unlinked temporary file)
    ends_file: IO[bytes]  # (S,) int64 exclusive end offset of each non-empty sentence (likewise)
    n_words: int  # N, in-vocabulary words
    n_sentences: int  # S, non-empty sentences
    vocab: Vocab
    raw_tokens: int  # tokens in the file before dropping out-of-vocabulary words
    checksum: str  # sha256 of the file, recorded in every trained artifact
    path: str

    def read_ids(self, start: int, stop: int) -> np.ndarray:
        """ids[start:stop] as a fresh (stop - start,) int32 array."""
        return _pread(self.ids_file, np.int32, start, stop)

    def read_sentence_ends(self, first: int, last: int) -> np.ndarray:
        """sentence_ends[first:last] as a fresh (last - first,) int64 array."""
        return _pread(self.ends_file, np.int64, first, last)

    @property
    def ids(self) -> np.ndarray:
        """All ids in memory (N,) int32: for callers that need the whole array at once."""
        return self.read_ids(0, self.n_words)

    @property
    def sentence_ends(self) -> np.ndarray:
        """All sentence ends in memory (S,) int64."""
        return self.read_sentence_ends(0, self.n_sentences)

    def chunk_bounds(self, chunk_words: int) -> np.ndarray:
        """(C+1,) sentence indices where chunks of about `chunk_words` words start, plus S.

        A chunk ends with the sentence that crosses each multiple of `chunk_words`; computed
        by scanning the sentence ends in blocks.
        """
        cuts, target = [np.zeros(1, np.int64)], chunk_words
        for first in range(0, self.n_sentences, SENTENCE_BLOCK):
            ends = self.read_sentence_ends(first, min(first + SENTENCE_BLOCK, self.n_sentences))  # (b,)
            reach = min(int(ends[-1]), self.n_words - 1)  # targets below the corpus end, within this block
            targets = np.arange(target, reach + 1, chunk_words)  # (t,)
            cuts.append(first + np.searchsorted(ends, targets, side="left") + 1)
            target += len(targets) * chunk_words
        cuts.append(np.array([self.n_sentences], np.int64))
        return np.unique(np.concatenate(cuts)).astype(np.int64)


def _pread(handle: IO[bytes], dtype: type, first: int, last: int) -> np.ndarray:
    out = np.empty(max(last - first, 0), dtype)
    size = out.itemsize
    if out.nbytes and os.preadv(handle.fileno(), [memoryview(out).cast("B")], first * size) != out.nbytes:
        raise NlprecError(f"encoded corpus file ended early (items {first}..{last}); the temporary folder "
                          "may be full")
    return out


@dataclass
class _Tokens:
    """A file's tokens after the first pass: codes on disk, the distinct tokens and their counts."""

    codes_file: IO[bytes]  # (n,) int32 index into distinct, block after block
    lines_file: IO[bytes]  # (lines,) int64 tokens per line
    blocks: list[tuple[int, int]]  # per block (tokens, lines)
    distinct: np.ndarray  # (u,) object the file's distinct tokens
    counts: np.ndarray  # (u,) int64 occurrences of each


def _factorize_file(path: Path, tokenizer: RegexTokenizer, spill_dir: str | None, encoding: str = "utf-8",
                    column: int | None = None, maxsplit: int = -1, delimiter: str = "\t") -> _Tokens:
    """Pass 1: the file's tokens become int codes into one array of distinct tokens, on disk.

    Pure-ASCII blocks read with the default tokenizer go through the compiled byte scan of
    nlprec.data.ascii_kernels (same result, no Python string per token), others through the
    regex and pandas' factorize. A dict merges the blocks' distinct tokens, so an ASCII corpus
    never loads pandas.
    """
    check_encoding(encoding)
    byte_scan = tokenizer == RegexTokenizer() and column is None
    if byte_scan:
        from nlprec.data import ascii_kernels  # numba loads here, when a corpus is encoded
    codes_file, lines_file = _spill(spill_dir), _spill(spill_dir)
    blocks, index, counts = [], {}, np.zeros(0, np.int64)  # index: distinct token -> code in the file
    for raw in iter_raw_blocks(path, READ_BLOCK_BYTES):
        if byte_scan and raw.data.isascii():
            block_codes, uniques, block_lines = ascii_kernels.factorize_ascii(raw.data)
        else:
            import pandas as pd

            chunk = token_chunk(block_text(raw, path, encoding, column, maxsplit, delimiter), tokenizer)
            block_codes, uniques = pd.factorize(chunk.tokens)
            block_lines = chunk.line_lengths
        file_codes = np.fromiter((index.setdefault(token, len(index)) for token in uniques), np.int32, len(uniques))
        codes = file_codes[block_codes].astype(np.int32)  # (n,) the block's tokens as file codes
        block_counts = np.bincount(codes, minlength=len(index))  # (u,)
        block_counts[:len(counts)] += counts
        counts = block_counts
        _append(codes_file, codes)
        _append(lines_file, np.asarray(block_lines, np.int64))
        blocks.append((len(codes), len(block_lines)))
    codes_file.flush()
    lines_file.flush()
    return _Tokens(codes_file, lines_file, blocks, np.array(list(index), dtype=object), counts)


def _spill(spill_dir: str | None) -> IO[bytes]:
    """An anonymous temporary file (removed from the folder at once, freed when closed)."""
    try:
        return tempfile.TemporaryFile(dir=spill_dir)
    except OSError as err:
        raise NlprecError(f"cannot create a temporary file in {spill_dir or tempfile.gettempdir()} for the "
                          f"encoded corpus ({err.strerror or err}); set TMPDIR to a writable folder") from None


def _append(handle: IO[bytes], array: np.ndarray) -> None:
    try:
        handle.write(memoryview(np.ascontiguousarray(array)).cast("B"))
    except OSError as err:
        raise NlprecError(f"cannot write the encoded corpus to the temporary folder ({err.strerror or err}); "
                          "free space there or set TMPDIR to a folder with room") from None


def encode_corpus(path: str | os.PathLike, tokenizer: RegexTokenizer | None = None, min_count: int = 5,
                  max_vocab: int | None = None, vocab: Vocab | None = None, spill_dir: str | os.PathLike | None = None,
                  **read_options) -> EncodedCorpus:
    """Read, count (unless `vocab` is given, e.g. on resume) and encode a corpus file.

    The encoded ids and sentence ends go to temporary files in `spill_dir` (default: the
    system's temporary folder, $TMPDIR), about 4 bytes per token, and are streamed from there.
    """
    path = Path(path)
    if not path.is_file():
        raise NlprecError(f"{path}: no such corpus file")
    spill = None if spill_dir is None else str(spill_dir)
    tokens = _factorize_file(path, tokenizer or RegexTokenizer(), spill, **read_options)
    if vocab is None:
        vocab = Vocab.from_arrays(tokens.distinct, tokens.counts, min_count, max_vocab, source=str(path))
    id_of_code = vocab.lookup(tokens.distinct)  # (u,) -1 where out of vocabulary
    ids_file, ends_file = _spill(spill), _spill(spill)
    n_words, n_sentences, raw_tokens = 0, 0, 0
    token_at, line_at = 0, 0
    for n_tokens, n_lines in tokens.blocks:
        ids = id_of_code[_pread(tokens.codes_file, np.int32, token_at, token_at + n_tokens)]  # (n,)
        line_lengths = _pread(tokens.lines_file, np.int64, line_at, line_at + n_lines)  # (lines,)
        token_at, line_at = token_at + n_tokens, line_at + n_lines
        known = ids >= 0
        line_of_token = np.repeat(np.arange(n_lines), line_lengths)  # (n,)
        kept_per_line = np.bincount(line_of_token[known], minlength=n_lines)  # (lines,)
        kept_per_line = kept_per_line[kept_per_line > 0]
        _append(ids_file, ids[known].astype(np.int32))
        _append(ends_file, n_words + np.cumsum(kept_per_line, dtype=np.int64))
        n_words += int(kept_per_line.sum())
        n_sentences += len(kept_per_line)
        raw_tokens += n_tokens
    tokens.codes_file.close()
    tokens.lines_file.close()
    if n_words == 0:
        raise NlprecError(f"{path}: no token of the corpus is in the vocabulary; expected text in its words")
    ids_file.flush()
    ends_file.flush()
    return EncodedCorpus(ids_file, ends_file, n_words, n_sentences, vocab, raw_tokens, sha256_file(path), str(path))
