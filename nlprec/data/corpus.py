"""A text corpus encoded once into one int32 array of word ids plus sentence boundaries.

Two passes over the file, each a regex and a few pandas/numpy operations per block of lines
(no Python loop per token): the first counts words, the second maps them to ids. Words below
min-count are dropped from the sequence, as word2vec.c and gensim do, so windows span them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from nlprec.data.tokenize import RegexTokenizer, iter_token_chunks
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


def count_tokens(path: str | os.PathLike, tokenizer: RegexTokenizer, **read_options) -> pd.Series:
    """Word -> count over the whole file."""
    totals: pd.Series | None = None
    for chunk in iter_token_chunks(path, tokenizer, READ_BLOCK_BYTES, **read_options):
        counts = pd.Series(chunk.tokens).value_counts()
        totals = counts if totals is None else totals.add(counts, fill_value=0)
    if totals is None:
        return pd.Series(dtype=np.int64)
    return totals.astype(np.int64)


def encode_corpus(path: str | os.PathLike, tokenizer: RegexTokenizer | None = None, min_count: int = 5,
                  max_vocab: int | None = None, vocab: Vocab | None = None, **read_options) -> EncodedCorpus:
    """Read, count (unless `vocab` is given, e.g. on resume) and encode a corpus file."""
    path = Path(path)
    if not path.is_file():
        raise NlprecError(f"{path}: no such corpus file")
    tokenizer = tokenizer or RegexTokenizer()
    if vocab is None:
        vocab = Vocab.from_counts(count_tokens(path, tokenizer, **read_options), min_count, max_vocab,
                                  source=str(path))
    id_blocks, length_blocks, raw_tokens = [], [], 0
    for chunk in iter_token_chunks(path, tokenizer, READ_BLOCK_BYTES, **read_options):
        ids = vocab.encode(chunk.tokens)  # (n,) -1 where out of vocabulary
        known = ids >= 0
        line_of_token = np.repeat(np.arange(len(chunk.line_lengths)), chunk.line_lengths)  # (n,)
        id_blocks.append(ids[known].astype(np.int32))
        length_blocks.append(np.bincount(line_of_token[known], minlength=len(chunk.line_lengths)))
        raw_tokens += len(ids)
    ids = np.concatenate(id_blocks) if id_blocks else np.zeros(0, np.int32)
    if len(ids) == 0:
        raise NlprecError(f"{path}: no token of the corpus is in the vocabulary; expected text in its words")
    lengths = np.concatenate(length_blocks)
    sentence_ends = np.cumsum(lengths[lengths > 0]).astype(np.int64)
    return EncodedCorpus(ids, sentence_ends, vocab, raw_tokens, sha256_file(path), str(path))
