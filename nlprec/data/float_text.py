"""float32 rows as text in one compiled pass, for the word2vec/fastText text formats.

Each value gets at most 9 significant digits, which is enough to read back the same float32,
laid out as printf's "%.9g" (positional for exponents -4..8, else d.ddde+XX; trailing zeros
dropped). Python's %-formatting of the 42,593 x 100 IMDb vectors took as long as a third of a
CBOW epoch; this is about 4x faster (BENCHMARKS.md, word embeddings).

The 9 digits come from a float64 product |x| * 10^k rounded to an integer: its relative error
(~1e-16) can move a digit only at a near-tie in the tenth digit, far inside the half-ulp
(>= 3e-8 relative) that a float32 needs to read back unchanged.
"""

from __future__ import annotations

import math

import numba
import numpy as np

DIGITS = 9  # significant digits: the fewest that always read back as the same float32
_MAX_CHARS = 16  # "-1.23456789e-45" and a separator
_POWER_OFFSET = 64
POWERS_OF_TEN = np.array([float(f"1e{k}") for k in range(-_POWER_OFFSET, _POWER_OFFSET + 1)])  # correctly rounded


def format_rows(matrix: np.ndarray) -> list[bytes]:
    """Each row of a (n, d) float matrix as b"v1 v2 ... vd" (float32 values, see the module)."""
    values = np.ascontiguousarray(matrix, dtype=np.float32)  # (n, d)
    if values.size == 0:
        return [b""] * values.shape[0]
    text, row_ends = _format(values, POWERS_OF_TEN)
    starts = np.concatenate([[0], row_ends[:-1] + 1])  # (n,) after each row's trailing space
    data = text.tobytes()
    return [data[start:end] for start, end in zip(starts.tolist(), row_ends.tolist())]


@numba.njit(cache=True)
def _format(values, powers):
    """All values, space-separated, each row ending in one space; (bytes (B,), row ends (n,))."""
    n_rows, dim = values.shape
    out = np.empty(n_rows * dim * _MAX_CHARS, np.uint8)
    row_ends = np.empty(n_rows, np.int64)
    digits = np.zeros(DIGITS, np.uint8)  # one value's significant digits
    at = 0
    for row in range(n_rows):
        for column in range(dim):
            at = _write_value(float(values[row, column]), out, at, powers, digits)
            out[at] = 32  # " "
            at += 1
        row_ends[row] = at - 1
    return out[:at], row_ends


@numba.njit(inline="always")
def _write_text(out, at, text):
    for i in range(len(text)):
        out[at + i] = ord(text[i])
    return at + len(text)


@numba.njit(inline="always")
def _write_digits(out, at, digits, first, last):
    """ASCII of digits[first:last] (positions past the significant ones are zeros) at out[at:]."""
    for i in range(first, last):
        out[at] = 48 + digits[i]
        at += 1
    return at


@numba.njit(inline="always")
def _significand(magnitude, powers, digits):
    """The DIGITS significant decimal digits of `magnitude` into `digits` (zero-padded past the
    last non-zero one); returns (how many up to the last non-zero one, decimal exponent).

    The exponent is first guessed from the binary one (log10(2) ~ 0.30103): never high, at most
    one low, which the digit count shows."""
    exponent = int(math.floor((math.frexp(magnitude)[1] - 1) * 0.30102999566398120))
    number = np.uint64(round(magnitude * powers[_POWER_OFFSET + DIGITS - 1 - exponent]))
    while number >= np.uint64(10 ** DIGITS):  # the guess was low, or the rounding carried into a tenth digit
        exponent += 1
        number = np.uint64(round(magnitude * powers[_POWER_OFFSET + DIGITS - 1 - exponent]))
    for i in range(DIGITS - 1, -1, -1):  # division by a constant: a multiply and a shift
        digits[i] = number % np.uint64(10)
        number //= np.uint64(10)
    count = DIGITS
    while count > 1 and digits[count - 1] == 0:
        count -= 1
    return count, exponent


@numba.njit
def _write_value(value, out, at, powers, digits):
    """One value as "%.9g" lays it out; returns the next free position."""
    if value != value:
        return _write_text(out, at, "nan")
    if math.copysign(1.0, value) < 0:
        out[at] = 45  # "-"
        at += 1
    magnitude = abs(value)
    if math.isinf(magnitude):
        return _write_text(out, at, "inf")
    if magnitude == 0.0:
        return _write_text(out, at, "0")
    count, exponent = _significand(magnitude, powers, digits)
    if exponent < -4 or exponent >= DIGITS:  # d.ddd e+XX
        at = _write_digits(out, at, digits, 0, 1)
        if count > 1:
            out[at] = 46  # "."
            at = _write_digits(out, at + 1, digits, 1, count)
        out[at] = 101  # "e"
        out[at + 1] = 45 if exponent < 0 else 43  # "-" or "+"
        size = abs(exponent)
        if size >= 100:
            out[at + 2] = 48 + size // 100
            at += 1
        out[at + 2] = 48 + size // 10 % 10
        out[at + 3] = 48 + size % 10
        return at + 4
    if exponent < 0:  # 0.000ddd
        at = _write_text(out, at, "0.")
        for _ in range(-exponent - 1):
            out[at] = 48
            at += 1
        return _write_digits(out, at, digits, 0, count)
    whole = exponent + 1  # digits before the point (count <= DIGITS: zero-padded)
    at = _write_digits(out, at, digits, 0, whole)
    if count <= whole:
        return at
    out[at] = 46  # "."
    return _write_digits(out, at + 1, digits, whole, count)
