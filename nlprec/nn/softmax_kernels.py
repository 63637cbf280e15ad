"""Label-smoothed cross-entropy over a row of logits in one pass, compiled with numba (CPU).

A Transformer's output layer gives (N, V) logits, N target tokens by V = 8,000 pieces. The
torch version of `_SmoothedCrossEntropyTerms` (nlprec.nn.losses) walks them in cache-sized
blocks but still runs a dozen separate ops per block (convert, max, subtract, exp, sum, log,
mean; exp, scale, shift, scatter, convert back): about a fifth of a bf16 training step on a
2-core CPU. Here each row is read once per pass, in fp32 whatever the storage:

- forward: max m, mean, sum of exp(z - m) -> lse = m + log(sum), and the gold logit;
- backward: grad = scale * exp(z - lse) - shift, plus gold_shift at the gold column, written
  straight back in the logits' dtype.

exp is a vectorisable polynomial (`_exp_row`): 2^t = 2^round(t) * 2^f with |f| <= 1/2, 2^f by
its degree-6 Taylor polynomial (relative error < 2e-7, below fp32 rounding of the sums), and
2^round(t) built from its exponent bits. bf16 logits arrive as their int16 bit patterns
(numba has no bf16): widening is a 16-bit shift, narrowing rounds to nearest even as torch does.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import prange

_LOG2E = np.float32(1.4426950408889634)
_LN2 = 0.6931471805599453
# Taylor coefficients of 2^f = e^(f ln 2): (ln 2)^k / k!, k = 1..6
_C1, _C2, _C3 = np.float32(_LN2), np.float32(_LN2 ** 2 / 2), np.float32(_LN2 ** 3 / 6)
_C4, _C5, _C6 = np.float32(_LN2 ** 4 / 24), np.float32(_LN2 ** 5 / 120), np.float32(_LN2 ** 6 / 720)
_ROWS_PER_TASK = 16  # rows a thread takes at a time (scratch rows are allocated once per task)


@numba.njit(fastmath=True, inline="always")
def _exp_row(x: np.ndarray, out: np.ndarray, exponent_bits: np.ndarray) -> float:
    """out = exp(x) elementwise for x <= 0 (float32 rows); returns sum(out). Vectorised by LLVM."""
    powers = exponent_bits.view(np.float32)
    for j in range(x.shape[0]):
        t = max(x[j] * _LOG2E, np.float32(-126.0))  # exp(x) = 2^t; 2^-126 (smallest normal) stands for less
        whole = np.floor(t + np.float32(0.5))
        f = t - whole  # in [-1/2, 1/2]
        out[j] = np.float32(1.0) + f * (_C1 + f * (_C2 + f * (_C3 + f * (_C4 + f * (_C5 + f * _C6)))))
        exponent_bits[j] = (np.int32(whole) + np.int32(127)) << np.int32(23)  # the float 2^whole
    total = np.float32(0.0)
    for j in range(x.shape[0]):
        out[j] *= powers[j]
        total += out[j]
    return total


@numba.njit(fastmath=True, inline="always")
def _widen_bf16(bits: np.ndarray, out_bits: np.ndarray) -> None:
    """bf16 bit patterns (int16) -> float32 bit patterns (int32): the top 16 bits of the float."""
    for j in range(bits.shape[0]):
        out_bits[j] = np.int32(np.uint16(bits[j])) << np.int32(16)


@numba.njit(fastmath=True, inline="always")
def _narrow_bf16(float_bits: np.ndarray, out: np.ndarray) -> None:
    """float32 bit patterns (int32) -> bf16 bit patterns (int16), rounding to nearest even."""
    for j in range(float_bits.shape[0]):
        word = np.uint32(float_bits[j])
        rounded = word + np.uint32(0x7FFF) + ((word >> np.uint32(16)) & np.uint32(1))
        out[j] = np.int16(np.int32(rounded >> np.uint32(16)) - (np.int32(rounded >> np.uint32(31)) << 16))


@numba.njit(fastmath=True, inline="always")
def _max_bf16(bits: np.ndarray) -> float:
    """Largest of a row of bf16 bit patterns, as a float. Compared as integers: flipping the
    magnitude bits of negatives orders sign-magnitude patterns like their values (LLVM
    vectorises integer max; float max it does not)."""
    top = np.int32(-(1 << 16))
    for j in range(bits.shape[0]):
        word = np.int32(bits[j])
        key = word ^ ((word >> np.int32(15)) & np.int32(0x7FFF))
        top = key if key > top else top
    word = top ^ ((top >> np.int32(15)) & np.int32(0x7FFF))  # the key of the key is the pattern
    return np.array([np.int32(word) << np.int32(16)], np.int32).view(np.float32)[0]


@numba.njit(fastmath=True, inline="always")
def _max_f32(z: np.ndarray) -> float:
    """Largest of a float32 row, compared as integers as in `_max_bf16`."""
    bits = z.view(np.int32)
    top = np.int32(-(1 << 31))
    for j in range(bits.shape[0]):
        key = bits[j] ^ ((bits[j] >> np.int32(31)) & np.int32(0x7FFFFFFF))
        top = key if key > top else top
    word = top ^ ((top >> np.int32(31)) & np.int32(0x7FFFFFFF))
    return np.array([word], np.int32).view(np.float32)[0]


@numba.njit(fastmath=True, inline="always")
def _row_stats(z: np.ndarray, top: float, shifted: np.ndarray, scratch_bits: np.ndarray) -> tuple[float, float]:
    """(log-sum-exp, mean) of one float32 row whose largest value is `top`."""
    total = np.float32(0.0)
    for j in range(z.shape[0]):
        total += z[j]
        shifted[j] = z[j] - np.float32(top)
    sum_exp = _exp_row(shifted, shifted, scratch_bits)
    return top + np.log(sum_exp), total / z.shape[0]


@numba.njit(fastmath=True, inline="always")
def _row_gradient(z: np.ndarray, lse: float, scale: float, shift: float, out: np.ndarray,
                  scratch_bits: np.ndarray) -> None:
    """out = scale * exp(z - lse) - shift for one float32 row."""
    for j in range(z.shape[0]):
        out[j] = z[j] - np.float32(lse)
    _exp_row(out, out, scratch_bits)
    for j in range(z.shape[0]):
        out[j] = out[j] * np.float32(scale) - np.float32(shift)


@numba.njit(inline="always")
def _task_count(n: int) -> int:
    """Tasks of _ROWS_PER_TASK rows covering n rows (the last may be short)."""
    return (n + _ROWS_PER_TASK - 1) // _ROWS_PER_TASK


@numba.njit(inline="always")
def _task_rows(task: int, n: int) -> tuple[int, int]:
    """First and past-the-last row of `task`."""
    return task * _ROWS_PER_TASK, min(n, (task + 1) * _ROWS_PER_TASK)


@numba.njit(parallel=True, fastmath=True, cache=True)
def forward_f32(logits, targets, lse, mean, gold):  # pragma: no cover - compiled
    """Per row of float32 logits (N, V): lse, mean and the gold logit, into (N,) float32 arrays."""
    n, vocab = logits.shape
    for task in prange(_task_count(n)):
        shifted = np.empty(vocab, np.float32)
        scratch_bits = np.empty(vocab, np.int32)
        for row in range(*_task_rows(task, n)):
            lse[row], mean[row] = _row_stats(logits[row], _max_f32(logits[row]), shifted, scratch_bits)
            gold[row] = logits[row, targets[row]]


@numba.njit(parallel=True, fastmath=True, cache=True)
def forward_bf16(logit_bits, targets, lse, mean, gold):  # pragma: no cover - compiled
    """As `forward_f32` for bf16 logits given as their int16 bit patterns (N, V)."""
    n, vocab = logit_bits.shape
    for task in prange(_task_count(n)):
        z_bits = np.empty(vocab, np.int32)
        z = z_bits.view(np.float32)
        shifted = np.empty(vocab, np.float32)
        scratch_bits = np.empty(vocab, np.int32)
        for row in range(*_task_rows(task, n)):
            _widen_bf16(logit_bits[row], z_bits)
            lse[row], mean[row] = _row_stats(z, _max_bf16(logit_bits[row]), shifted, scratch_bits)
            gold[row] = z[targets[row]]


@numba.njit(parallel=True, fastmath=True, cache=True)
def backward_f32(logits, targets, lse, scale, shift, gold_shift, grad):  # pragma: no cover - compiled
    """grad (N, V) float32 = scale * softmax - shift per row, plus gold_shift at the gold column."""
    n, vocab = logits.shape
    for task in prange(_task_count(n)):
        scratch_bits = np.empty(vocab, np.int32)
        for row in range(*_task_rows(task, n)):
            _row_gradient(logits[row], lse[row], scale[row], shift[row], grad[row], scratch_bits)
            grad[row, targets[row]] += gold_shift[row]


@numba.njit(parallel=True, fastmath=True, cache=True)
def backward_bf16(logit_bits, targets, lse, scale, shift, gold_shift, grad_bits):  # pragma: no cover - compiled
    """As `backward_f32` for bf16 logits and gradient given as int16 bit patterns (N, V)."""
    n, vocab = logit_bits.shape
    for task in prange(_task_count(n)):
        z_bits = np.empty(vocab, np.int32)
        z = z_bits.view(np.float32)
        row_grad = np.empty(vocab, np.float32)
        scratch_bits = np.empty(vocab, np.int32)
        for row in range(*_task_rows(task, n)):
            _widen_bf16(logit_bits[row], z_bits)
            _row_gradient(z, lse[row], scale[row], shift[row], row_grad, scratch_bits)
            row_grad[targets[row]] += gold_shift[row]
            _narrow_bf16(row_grad.view(np.int32), grad_bits[row])


__all__ = ["forward_f32", "forward_bf16", "backward_f32", "backward_bf16"]
