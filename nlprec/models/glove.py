"""GloVe: global log-bilinear regression on word-word co-occurrence counts.

Pennington, Socher, Manning, "GloVe: Global Vectors for Word Representation" (EMNLP 2014).
For every non-zero X[i, j] (nlprec.data.cooccurrence):

    J = sum f(X_ij) (w_i . c_j + b_i + b'_j - log X_ij)^2,   f(x) = min(1, (x / x_max)^alpha)

with AdaGrad, as the Stanford tools (glove.c): gradient-squared sums start at 1, each vector
gradient is clipped to +-100 and scaled by the rate before it is squared and summed, the biases
take AdaGrad steps without the rate (as glove.c does: they settle fast and leave the vectors to
model what frequency does not), and the exported vector of a word is w + c (glove.c's `-model 2`).

Two ways to train the same objective, as word2vec:
- backend "numba" (CPU): `train_step` runs a compiled Hogwild AdaGrad loop over a batch of
  shuffled entries, in float32, the accumulators kept as buffers so checkpoints resume exactly;
- backend "torch" (GPU): `loss` is `glove_loss` on a batch of entries and the shared trainer's
  Adagrad optimises it (sparse gradients).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numba
import numpy as np
import torch
from numba import prange
from torch import nn

from nlprec.errors import NlprecError
from nlprec.registry import register
from nlprec.vectors import Vectors

GRAD_CLIP = np.float32(100.0)  # glove.c's grad_clip_value


def glove_loss(dot: torch.Tensor, counts: torch.Tensor, x_max: float = 100.0, alpha: float = 0.75) -> torch.Tensor:
    """GloVe's weighted least squares, mean over entries: 0.5 f(x) (dot - log x)^2.

    `dot` already holds w_i . c_j + b_i + b'_j; f(x) = min(1, (x / x_max)^alpha).

    Shape:
        - dot: (E,) model scores of E co-occurrence entries.
        - counts: (E,) their co-occurrence values X_ij > 0.
        - Output: scalar.

    >>> glove_loss(torch.tensor([0.0, 1.0]), torch.tensor([1.0, 100.0]), x_max=100.0, alpha=1.0)
    tensor(3.2493)
    """
    weight = torch.clamp(counts / x_max, max=1.0).pow(alpha)  # (E,)
    return (0.5 * weight * (dot - torch.log(counts)).pow(2)).mean()


@dataclass(frozen=True)
class GloVeConfig:
    """The model; the co-occurrence window lives with the data."""

    vocab_size: int  # words in the vocabulary, >= 1 (set from the data)
    dim: int = 100  # vector size, >= 1
    x_max: float = 100.0  # counts at or above this get weight 1, > 0
    alpha: float = 0.75  # exponent of the weighting function below x_max, > 0
    backend: Literal["numba", "torch"] = "numba"  # compiled Hogwild AdaGrad, or batched tensors (GPU)
    threads: int = 2  # CPU threads of the numba kernel, >= 1

    def __post_init__(self) -> None:
        for name, value, low in (("vocab_size", self.vocab_size, 1), ("dim", self.dim, 1),
                                 ("threads", self.threads, 1)):
            if not isinstance(value, int) or value < low:
                raise NlprecError(f"--{name.replace('_', '-')} must be an integer >= {low}, got {value!r}")
        if not self.x_max > 0:
            raise NlprecError(f"--x-max must be > 0, got {self.x_max}")
        if not self.alpha > 0:
            raise NlprecError(f"--alpha (weighting exponent) must be > 0, got {self.alpha}")


@register("glove", config=GloVeConfig, family="embeddings",
          description="GloVe weighted least squares on co-occurrences, AdaGrad (Pennington et al. 2014)")
class GloVe(nn.Module):
    """Word and context vectors and biases; exported as word + context vectors."""

    supports_amp = False  # log counts and AdaGrad sums stay in float32

    def __init__(self, config: GloVeConfig):
        super().__init__()
        self.config = config
        self.manual_optimization = config.backend == "numba"
        vocab, dim = config.vocab_size, config.dim
        sparse = config.backend == "torch"
        self.word_vectors = nn.Embedding(vocab, dim, sparse=sparse)  # (V, d) w
        self.context_vectors = nn.Embedding(vocab, dim, sparse=sparse)  # (V, d) c
        self.word_biases = nn.Embedding(vocab, 1, sparse=sparse)  # (V, 1) b
        self.context_biases = nn.Embedding(vocab, 1, sparse=sparse)  # (V, 1) b'
        with torch.no_grad():  # glove.c: uniform in [-0.5, 0.5) / dim, biases too
            for table in (self.word_vectors, self.context_vectors, self.word_biases, self.context_biases):
                table.weight.uniform_(-0.5 / dim, 0.5 / dim)
        if self.manual_optimization:  # AdaGrad sums of squared gradients, glove.c starts them at 1
            self.register_buffer("word_gradsq", torch.ones(vocab, dim + 1))  # (V, d + 1) vector then bias
            self.register_buffer("context_gradsq", torch.ones(vocab, dim + 1))  # (V, d + 1)

    # ----- CPU: the compiled kernel -------------------------------------------------------------
    def train_step(self, batch: dict[str, Any], lr: float, lr_end: float | None = None) -> dict[str, float]:
        """AdaGrad over the batch's entries in place (rate `lr`); returns the mean loss per entry."""
        config = self.config
        loss = train_entries(
            self.word_vectors.weight.data.numpy(), self.context_vectors.weight.data.numpy(),
            self.word_biases.weight.data.numpy(), self.context_biases.weight.data.numpy(),
            self.word_gradsq.numpy(), self.context_gradsq.numpy(), batch["rows"].numpy(), batch["cols"].numpy(),
            batch["counts"].numpy(), config.x_max, config.alpha, lr, config.threads)
        return {"loss": loss / max(len(batch["rows"]), 1)}

    # ----- any device: the same objective as tensors ------------------------------------------
    def loss(self, batch: dict[str, Any]) -> torch.Tensor:
        """Weighted least squares over the batch's co-occurrence entries (mean per entry)."""
        rows, cols = batch["rows"].long(), batch["cols"].long()  # (E,)
        dot = (self.word_vectors(rows) * self.context_vectors(cols)).sum(-1)  # (E,)
        dot = dot + self.word_biases(rows)[:, 0] + self.context_biases(cols)[:, 0]
        return glove_loss(dot, batch["counts"].float(), self.config.x_max, self.config.alpha)

    # ----- export -----------------------------------------------------------------------------
    def to_vectors(self, words: list[str], meta: dict[str, Any] | None = None) -> Vectors:
        """w + c per word (glove.c's `-model 2`)."""
        summed = self.word_vectors.weight.detach() + self.context_vectors.weight.detach()  # (V, d)
        return Vectors(words, summed.float().cpu().numpy(), meta)


# Fast-math without 'nnan'/'ninf', so the finiteness check below is not optimised away.
_FASTMATH = {"nsz", "arcp", "contract", "afn", "reassoc"}


@numba.njit(fastmath=_FASTMATH, inline="always")
def _update_entry(w, c, bw, bc, gw, gc, i, j, x, x_max, log_x_max, alpha, lr, step_w, step_c):
    """glove.c's AdaGrad step for one entry X[i, j] = x; returns its loss 0.5 f (diff)^2."""
    dim = w.shape[1]
    log_x = np.float32(np.log(x))
    diff = np.float32(0.0)
    for k in range(dim):
        diff += w[i, k] * c[j, k]
    diff += bw[i, 0] + bc[j, 0] - log_x
    weight = np.float32(1.0) if x > x_max else np.float32(np.exp(alpha * (log_x - log_x_max)))
    fdiff = weight * diff
    loss = 0.5 * fdiff * diff
    sum_w = np.float32(0.0)
    sum_c = np.float32(0.0)
    for k in range(dim):
        g_w = min(max(fdiff * c[j, k], -GRAD_CLIP), GRAD_CLIP) * lr
        g_c = min(max(fdiff * w[i, k], -GRAD_CLIP), GRAD_CLIP) * lr
        step_w[k] = g_w / np.sqrt(gw[i, k])
        step_c[k] = g_c / np.sqrt(gc[j, k])
        sum_w += step_w[k]
        sum_c += step_c[k]
        gw[i, k] += g_w * g_w
        gc[j, k] += g_c * g_c
    if np.isfinite(sum_w) and np.isfinite(sum_c):  # glove.c skips a NaN/inf update
        for k in range(dim):
            w[i, k] -= step_w[k]
            c[j, k] -= step_c[k]
    bw[i, 0] -= fdiff / np.sqrt(gw[i, dim])  # glove.c: biases take the unscaled step, no rate
    bc[j, 0] -= fdiff / np.sqrt(gc[j, dim])
    gw[i, dim] += fdiff * fdiff
    gc[j, dim] += fdiff * fdiff
    return loss


@numba.njit(parallel=True, fastmath=_FASTMATH, cache=True)
def _train_slices(w, c, bw, bc, gw, gc, rows, cols, counts, x_max, alpha, lr, bounds, losses):
    """One thread per slice bounds[t]..bounds[t+1] of the entries, Hogwild."""
    dim = w.shape[1]
    for thread in prange(bounds.shape[0] - 1):
        step_w = np.empty(dim, np.float32)
        step_c = np.empty(dim, np.float32)
        total = 0.0
        for entry in range(bounds[thread], bounds[thread + 1]):
            total += _update_entry(w, c, bw, bc, gw, gc, rows[entry], cols[entry], counts[entry], x_max,
                                   np.float32(np.log(x_max)), alpha, lr, step_w, step_c)
        losses[thread] = total


def train_entries(w: np.ndarray, c: np.ndarray, bw: np.ndarray, bc: np.ndarray, gw: np.ndarray, gc: np.ndarray,
                  rows: np.ndarray, cols: np.ndarray, counts: np.ndarray, x_max: float, alpha: float, lr: float,
                  n_threads: int) -> float:
    """AdaGrad over entries (rows, cols, counts) (E,) in place; returns the summed loss.

    w, c (V, d) word and context vectors; bw, bc (V, 1) biases; gw, gc (V, d + 1) AdaGrad sums.
    """
    n_threads = max(1, min(n_threads, len(rows)))
    bounds = np.linspace(0, len(rows), n_threads + 1).astype(np.int64)  # (threads + 1,)
    losses = np.zeros(n_threads, np.float64)
    _train_slices(w, c, bw, bc, gw, gc, rows, cols, counts, np.float32(x_max), np.float32(alpha), np.float32(lr),
                  bounds, losses)
    return float(losses.sum())
