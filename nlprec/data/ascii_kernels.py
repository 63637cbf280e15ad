"""The default tokenizer on pure-ASCII text as one compiled pass: tokens, their codes, line lengths.

For ASCII bytes, `RegexTokenizer()` (lower-case, then runs of a-z, 0-9 and the apostrophe) is a
byte scan. Each token is hashed (FNV-1a) into an open-addressing table of the block's distinct
tokens, so Python only ever builds one string per distinct token, not one per token: the
result equals the regex tokens factorized by pandas (codes in order of first occurrence). On
the IMDb corpus this replaces about 3.5 s of regex and factorize (BENCHMARKS.md, start-up).
Kept apart from nlprec.data.tokenize so that numba loads only when a corpus is encoded.
"""

from __future__ import annotations

import numba
import numpy as np

WORD_BYTES = np.zeros(256, np.bool_)  # bytes a default token is made of
WORD_BYTES[np.frombuffer(b"abcdefghijklmnopqrstuvwxyz0123456789'", np.uint8)] = True
LOWER = np.arange(256, dtype=np.uint8)  # ASCII lower-casing, as str.lower() on ASCII text
LOWER[65:91] += 32

_FNV_OFFSET = np.uint64(14695981039346656037)
_FNV_PRIME = np.uint64(1099511628211)


def factorize_ascii(block: bytes) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(codes (n,) int32, distinct tokens (u,) object array of str, tokens per line (lines,) int64).

    `block` is pure ASCII; lines end at b"\\n" (a last line without one still counts).
    """
    if not block.endswith(b"\n"):
        block += b"\n"
    data = LOWER[np.frombuffer(block, np.uint8)]  # (bytes,) lower-cased copy
    codes, line_lengths, starts, lengths = _scan(data, WORD_BYTES, block.count(b"\n"))
    joined = _join(data, starts, lengths)  # distinct tokens, each followed by "\n"
    distinct = np.array(joined.tobytes().decode("ascii").split("\n")[:-1], dtype=object)  # (u,)
    return codes, distinct, line_lengths


@numba.njit(cache=True)
def _scan(data, word, n_lines):
    """Codes of the tokens of `data` (lower-cased bytes), tokens per line, and where each
    distinct token first occurs (start, length)."""
    n = data.shape[0]
    most = n // 2 + 1  # at most this many tokens: each needs a byte and a separator
    codes = np.empty(most, np.int32)
    line_lengths = np.zeros(n_lines, np.int64)
    starts = np.empty(most, np.int64)
    lengths = np.empty(most, np.int64)
    hashes = np.empty(most, np.uint64)
    table = np.full(1 << 16, -1, np.int64)  # slot -> distinct token, -1 empty; doubled at half full
    n_tokens, n_distinct, line, i = 0, 0, 0, 0
    while i < n:
        byte = data[i]
        if byte == 10:
            line += 1
            i += 1
            continue
        if not word[byte]:
            i += 1
            continue
        start = i
        h = _FNV_OFFSET
        while i < n and word[data[i]]:
            h = (h ^ np.uint64(data[i])) * _FNV_PRIME
            i += 1
        code = _find(table, data, starts, lengths, hashes, h, start, i - start)
        if code < 0:  # a new distinct token
            code = n_distinct
            starts[code], lengths[code], hashes[code] = start, i - start, h
            n_distinct += 1
            _insert(table, hashes, code)
            if 2 * n_distinct > table.shape[0]:
                table = _rehash(hashes, n_distinct, 2 * table.shape[0])
        codes[n_tokens] = code
        n_tokens += 1
        line_lengths[line] += 1
    return codes[:n_tokens].copy(), line_lengths, starts[:n_distinct], lengths[:n_distinct]


@numba.njit(cache=True, inline="always")
def _find(table, data, starts, lengths, hashes, h, start, length):
    """The code of the token data[start:start+length] with hash h, or -1 if not yet seen."""
    mask = np.uint64(table.shape[0] - 1)
    slot = h & mask
    while True:
        code = table[slot]
        if code < 0:
            return -1
        if hashes[code] == h and lengths[code] == length:
            other = starts[code]
            same = True
            for k in range(length):
                if data[other + k] != data[start + k]:
                    same = False
                    break
            if same:
                return code
        slot = (slot + np.uint64(1)) & mask


@numba.njit(cache=True, inline="always")
def _insert(table, hashes, code):
    mask = np.uint64(table.shape[0] - 1)
    slot = hashes[code] & mask
    while table[slot] >= 0:
        slot = (slot + np.uint64(1)) & mask
    table[slot] = code


@numba.njit(cache=True)
def _rehash(hashes, n_distinct, capacity):
    table = np.full(capacity, -1, np.int64)
    for code in range(n_distinct):
        _insert(table, hashes, code)
    return table


@numba.njit(cache=True)
def _join(data, starts, lengths):
    """The distinct tokens' bytes, each followed by a newline, in code order."""
    out = np.empty(int(lengths.sum()) + lengths.shape[0], np.uint8)
    at = 0
    for code in range(starts.shape[0]):
        for k in range(lengths[code]):
            out[at] = data[starts[code] + k]
            at += 1
        out[at] = 10
        at += 1
    return out
