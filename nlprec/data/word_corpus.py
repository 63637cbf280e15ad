"""A text corpus encoded once into one int32 array of word ids plus sentence boundaries.

One pass over the file; each block of lines is factorized (a compiled byte scan for ASCII text
and the default tokenizer, else pandas' hash table) into int codes of the file's distinct
tokens, so counting and mapping to ids work on the distinct tokens, never with a Python loop
per token. Words below min-count are dropped from the sequence, as word2vec.c and gensim do,
so windows span them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nlprec.data.tokenize import RegexTokenizer, block_text, check_encoding, iter_raw_blocks, token_chunk
from nlprec.data.vocab import Vocab
from nlprec.errors import NlprecError
from nlprec.io import sha256_file

READ_BLOCK_BYTES = 8 << 20  # text per tokenizer block: bounds the memory of Python strings


@dataclass
class EncodedCorpus:
    """The corpus as ids: `ids[sentence_ends[i-1]:sentence_ends[i]]` is sentence i."""

    ids: np.ndarray  # (N,) int32 in-vocabulary word ids in corpus order
    sentence_ends: np.ndarray  # (S,) int64 exclusive end offset of each non-empty sentence
    vocab: Vocab
    raw_tokens: int  # tokens in the file before dropping out-of-vocabulary words
    checksum: str  # sha256 of the file, recorded in every trained artifact
    path: str


@dataclass
class _Tokens:
    """A file's tokens: per block, codes into the file's distinct tokens."""

    codes: list[np.ndarray]  # per block (n,) int32 index into distinct
    line_lengths: list[np.ndarray]  # per block (lines,) int64 tokens per line
    distinct: np.ndarray  # (u,) object the file's distinct tokens


def _factorize_file(path: Path, tokenizer: RegexTokenizer, encoding: str = "utf-8", column: int | None = None,
                    maxsplit: int = -1, delimiter: str = "\t") -> _Tokens:
    """One pass over the file; its tokens become int codes into one array of distinct tokens.

    Each block is factorized on its own: pure-ASCII blocks read with the default tokenizer by the
    compiled byte scan of nlprec.data.ascii_kernels (same result, no Python string per token),
    others by the regex and pandas' factorize. A dict then merges the blocks' distinct tokens,
    so an ASCII corpus never loads pandas.
    """
    check_encoding(encoding)
    byte_scan = tokenizer == RegexTokenizer() and column is None
    if byte_scan:
        from nlprec.data import ascii_kernels  # numba loads here, when a corpus is encoded
    codes, line_lengths, index = [], [], {}  # index: distinct token -> code in the file
    for raw in iter_raw_blocks(path, READ_BLOCK_BYTES):
        if byte_scan and raw.data.isascii():
            block_codes, uniques, block_lines = ascii_kernels.factorize_ascii(raw.data)
        else:
            import pandas as pd

            chunk = token_chunk(block_text(raw, path, encoding, column, maxsplit, delimiter), tokenizer)
            block_codes, uniques = pd.factorize(chunk.tokens)
            block_lines = chunk.line_lengths
        file_codes = np.fromiter((index.setdefault(token, len(index)) for token in uniques), np.int32, len(uniques))
        codes.append(file_codes[block_codes])  # (n,) the block's tokens as file codes
        line_lengths.append(block_lines)
    return _Tokens(codes, line_lengths, np.array(list(index), dtype=object))


def encode_corpus(path: str | os.PathLike, tokenizer: RegexTokenizer | None = None, min_count: int = 5,
                  max_vocab: int | None = None, vocab: Vocab | None = None, **read_options) -> EncodedCorpus:
    """Read, count (unless `vocab` is given, e.g. on resume) and encode a corpus file."""
    path = Path(path)
    if not path.is_file():
        raise NlprecError(f"{path}: no such corpus file")
    tokens = _factorize_file(path, tokenizer or RegexTokenizer(), **read_options)
    if vocab is None:
        counts = np.bincount(np.concatenate(tokens.codes), minlength=len(tokens.distinct)) if tokens.codes else []
        vocab = Vocab.from_arrays(tokens.distinct, counts, min_count, max_vocab, source=str(path))
    id_of_code = vocab.lookup(tokens.distinct)  # (u,) -1 where out of vocabulary
    id_blocks, length_blocks, raw_tokens = [], [], 0
    for codes, line_lengths in zip(tokens.codes, tokens.line_lengths):
        ids = id_of_code[codes]  # (n,)
        known = ids >= 0
        line_of_token = np.repeat(np.arange(len(line_lengths)), line_lengths)  # (n,)
        id_blocks.append(ids[known].astype(np.int32))
        length_blocks.append(np.bincount(line_of_token[known], minlength=len(line_lengths)))
        raw_tokens += len(ids)
    ids = np.concatenate(id_blocks) if id_blocks else np.zeros(0, np.int32)
    if len(ids) == 0:
        raise NlprecError(f"{path}: no token of the corpus is in the vocabulary; expected text in its words")
    lengths = np.concatenate(length_blocks)
    sentence_ends = np.cumsum(lengths[lengths > 0]).astype(np.int64)
    return EncodedCorpus(ids, sentence_ends, vocab, raw_tokens, sha256_file(path), str(path))
