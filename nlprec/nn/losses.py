"""Losses shared by the models: small functions, each with a Shape section and a doctest.

Run the examples with `python -m doctest nlprec/nn/losses.py -v` (tests/nn/test_losses.py does).
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import numpy as np
import torch
import torch.nn.functional as F

# --- ranking and rating losses


def bpr_loss(pos_scores: torch.Tensor, neg_scores: torch.Tensor) -> torch.Tensor:
    """Bayesian Personalised Ranking: -mean(log sigmoid(pos - neg)).

    Rendle et al. 2009, "BPR: Bayesian Personalized Ranking from Implicit Feedback". The
    log-sigmoid form is numerically stable for large score gaps (no log(0)).

    Shape:
        - pos_scores: (N,) scores of observed items.
        - neg_scores: (N,) or (N, K) scores of sampled unobserved items; (N,) positives are
          compared with each of the K negatives of their row.
        - Output: scalar.

    >>> bpr_loss(torch.tensor([2.0, 0.0]), torch.tensor([0.0, 0.0]))
    tensor(0.4100)
    """
    if neg_scores.dim() == pos_scores.dim() + 1:
        pos_scores = pos_scores.unsqueeze(-1)  # (N, 1) against (N, K)
    return -F.logsigmoid(pos_scores - neg_scores).mean()


def hinge_loss(pos_scores: torch.Tensor, neg_scores: torch.Tensor, margin: float = 1.0) -> torch.Tensor:
    """Pairwise hinge (margin ranking) loss: mean(max(0, margin - pos + neg)).

    Zero once every positive beats its negative by at least `margin`; as in
    `torch.nn.MarginRankingLoss` with target 1.

    Shape:
        - pos_scores: (N,) scores of observed items.
        - neg_scores: (N,) or (N, K) scores of sampled unobserved items.
        - Output: scalar.

    >>> hinge_loss(torch.tensor([2.0, 0.5]), torch.tensor([0.0, 0.0]), margin=1.0)
    tensor(0.2500)
    """
    if neg_scores.dim() == pos_scores.dim() + 1:
        pos_scores = pos_scores.unsqueeze(-1)  # (N, 1) against (N, K)
    return F.relu(margin - pos_scores + neg_scores).mean()


def masked_mse_loss(predictions: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the observed entries only (AutoRec's reconstruction loss).

    Sedhain et al. 2015, "AutoRec: Autoencoders Meet Collaborative Filtering": unobserved
    ratings must not be reconstructed as zeros, so they carry no gradient. The sum is divided
    by the number of observed entries (at least 1).

    Shape:
        - predictions, targets, mask: (B, D); mask is 1.0 where observed, 0.0 elsewhere.
        - Output: scalar.

    >>> masked_mse_loss(torch.tensor([[1.0, 9.0]]), torch.tensor([[3.0, 0.0]]), torch.tensor([[1.0, 0.0]]))
    tensor(4.)
    """
    squared = (predictions - targets).pow(2) * mask  # (B, D)
    return squared.sum() / mask.sum().clamp(min=1.0)


def l2_penalty(*tensors: torch.Tensor) -> torch.Tensor:
    """Half the sum of squared entries of all `tensors`: the L2 term added as `weight * l2_penalty(...)`.

    Shape:
        - tensors: any shapes.
        - Output: scalar.

    >>> l2_penalty(torch.tensor([1.0, 2.0]), torch.tensor([[2.0]]))
    tensor(4.5000)
    """
    return sum(t.pow(2).sum() for t in tensors) / 2


__all__ = ["bpr_loss", "hinge_loss", "masked_mse_loss", "l2_penalty"]


# --- sequence losses (translation; owned by the sequence-model work) ---------------------------


# Rows of logits handled at once by _SmoothedCrossEntropyTerms: about 512 KiB of fp32 each block,
# so the block's exp, sums and gradient stay in the core's cache instead of streaming (N, V) fp32
# tensors through memory several times.
_ROW_BLOCK_ELEMENTS = 1 << 17


class _SmoothedCrossEntropyTerms(torch.autograd.Function):
    """The two weighted sums behind label smoothing, computed and differentiated in row blocks.

    Forward: from one fp32 log-sum-exp per row, nll = sum_n w_n (lse_n - z_n,gold) and
    uniform = sum_n w_n (lse_n - mean_v z_n,v). Backward: d/dz of those is
    w_n (softmax(z_n) - onehot) and w_n (softmax(z_n) - 1/V), written block by block into a
    gradient in the logits' dtype. Autograd through log_softmax + gather + mean instead builds and
    reads several (N, V) fp32 tensors (log_softmax output and backward, the gather's zero-filled
    scatter, the mean's expand and divide): a quarter of a Transformer training step on a CPU
    (torch.profiler). Only the logits, in their own dtype (bf16 under autocast), are kept.
    On the CPU both passes run in nlprec.nn.softmax_kernels, one read of each row per pass (the
    block loop's dozen ops per block were a fifth of a bf16 step); elsewhere, torch ops on blocks.
    """

    @staticmethod
    def forward(ctx, logits: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor):
        logits = logits.detach().contiguous()  # (N, V)
        row_stats = _compiled_row_stats if _compiled_kernel_applies(logits) else _blocked_row_stats
        lse, mean, gold = row_stats(logits, targets)  # 3 x (N,) fp32
        ctx.save_for_backward(logits, lse, targets, weights)
        return ((lse - gold) * weights).sum(), ((lse - mean) * weights).sum()

    @staticmethod
    def backward(ctx, grad_nll: torch.Tensor, grad_uniform: torch.Tensor):
        logits, lse, targets, weights = ctx.saved_tensors
        softmax_scale = (grad_nll + grad_uniform) * weights  # (N,)
        uniform_shift = grad_uniform * weights / logits.shape[-1]  # (N,)
        gold_shift = -(grad_nll * weights)  # (N,)
        gradient = _compiled_gradient if _compiled_kernel_applies(logits) else _blocked_gradient
        return gradient(logits, targets, lse, softmax_scale, uniform_shift, gold_shift), None, None


# True: fp32/bf16 logits on the CPU go through the numba kernels; False: the torch blocks
# everywhere (the tests compare the two paths).
USE_COMPILED_KERNEL = True


def _compiled_kernel_applies(logits: torch.Tensor) -> bool:
    """The numba kernels of nlprec.nn.softmax_kernels serve fp32 and bf16 logits on the CPU."""
    return USE_COMPILED_KERNEL and logits.device.type == "cpu" and logits.dtype in (torch.float32, torch.bfloat16)


def _as_numpy(tensor: torch.Tensor) -> np.ndarray:
    """A CPU tensor's memory as numpy; bf16 as its int16 bit patterns (numpy has no bf16)."""
    return (tensor.view(torch.int16) if tensor.dtype == torch.bfloat16 else tensor).numpy()


def _compiled_row_stats(logits: torch.Tensor, targets: torch.Tensor
                        ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    from nlprec.nn import softmax_kernels

    if len(targets) and not 0 <= int(targets.min()) <= int(targets.max()) < logits.shape[1]:
        raise IndexError(f"targets must be in [0, {logits.shape[1]}): the kernel does not check bounds")
    lse, mean, gold = (torch.empty(len(logits), dtype=torch.float32) for _ in range(3))  # 3 x (N,)
    forward = softmax_kernels.forward_bf16 if logits.dtype == torch.bfloat16 else softmax_kernels.forward_f32
    with _numba_threads():
        forward(_as_numpy(logits), targets.numpy(), lse.numpy(), mean.numpy(), gold.numpy())
    return lse, mean, gold


def _compiled_gradient(logits: torch.Tensor, targets: torch.Tensor, lse: torch.Tensor, scale: torch.Tensor,
                       shift: torch.Tensor, gold_shift: torch.Tensor) -> torch.Tensor:
    from nlprec.nn import softmax_kernels

    grad = torch.empty_like(logits)  # (N, V), the logits' dtype
    backward = softmax_kernels.backward_bf16 if logits.dtype == torch.bfloat16 else softmax_kernels.backward_f32
    with _numba_threads():
        backward(_as_numpy(logits), targets.numpy(), lse.numpy(), *(t.float().contiguous().numpy()
                                                                    for t in (scale, shift, gold_shift)),
                 _as_numpy(grad))
    return grad


@contextlib.contextmanager
def _numba_threads() -> Iterator[None]:
    """Run a numba kernel on as many threads as torch uses (the --threads option)."""
    import numba

    before = numba.get_num_threads()
    numba.set_num_threads(max(1, min(torch.get_num_threads(), numba.config.NUMBA_NUM_THREADS)))
    try:
        yield
    finally:
        numba.set_num_threads(before)


def _blocked_row_stats(logits: torch.Tensor, targets: torch.Tensor
                       ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per row: log-sum-exp, mean and gold logit in fp32, with torch ops over row blocks."""
    lse = logits.new_empty(len(logits), dtype=torch.float32)  # (N,)
    mean = torch.empty_like(lse)  # (N,)
    for rows in _row_blocks(logits):
        z = logits[rows].float()  # (n, V)
        lse[rows] = torch.logsumexp(z, dim=-1)
        mean[rows] = z.mean(dim=-1)
    gold = logits.gather(1, targets[:, None]).squeeze(1).float()  # (N,)
    return lse, mean, gold


def _blocked_gradient(logits: torch.Tensor, targets: torch.Tensor, lse: torch.Tensor, scale: torch.Tensor,
                      shift: torch.Tensor, gold_shift: torch.Tensor) -> torch.Tensor:
    """scale * softmax - shift per row, plus gold_shift at the gold column, over row blocks."""
    grad = torch.empty_like(logits)  # (N, V), the logits' dtype
    for rows in _row_blocks(logits):
        block = torch.exp(logits[rows].float() - lse[rows, None])  # (n, V) softmax
        block.mul_(scale[rows, None]).sub_(shift[rows, None])
        block.scatter_add_(1, targets[rows, None], gold_shift[rows, None])
        grad[rows] = block
    return grad


def _row_blocks(logits: torch.Tensor) -> list[slice]:
    """Slices of consecutive rows of about _ROW_BLOCK_ELEMENTS elements each; on a GPU one slice of
    every row (the blocks are sized for a CPU core's cache; on a GPU they would be many small kernels)."""
    if logits.is_cuda:
        return [slice(0, len(logits))]
    step = max(1, _ROW_BLOCK_ELEMENTS // max(1, logits.shape[-1]))
    return [slice(start, start + step) for start in range(0, len(logits), step)]


def label_smoothed_cross_entropy(logits: torch.Tensor, targets: torch.Tensor, smoothing: float = 0.1,
                                 ignore_index: int = 0, normalizer: int | None = None
                                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean label-smoothed cross-entropy over the non-padding targets, and the plain NLL beside it.

    Szegedy et al. 2016, section 7: the target distribution is (1 - eps) on the gold class plus
    eps spread uniformly over all V classes, so
    loss = (1 - eps) * -log p(gold) + eps * mean_v(-log p(v)); eps = 0 gives cross-entropy.
    This equals `F.cross_entropy(..., label_smoothing=eps)` (values and gradients; computed in
    fp32 whatever the logits' dtype). Positions whose target is `ignore_index` (padding) count
    for nothing; both values are means over the counted ones, or sums divided by `normalizer`
    when it is given (a loss split over several calls, as an adaptive softmax's head and tail).

    Shape:
        - logits: (N, V) or (B, T, V); targets: (N,) or (B, T) int64.
        - Output: two scalars (loss, nll).

    >>> logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    >>> loss, nll = label_smoothed_cross_entropy(logits, torch.tensor([0, 1]), smoothing=0.1, ignore_index=-1)
    >>> bool(torch.isclose(loss, F.cross_entropy(logits, torch.tensor([0, 1]), label_smoothing=0.1)))
    True
    >>> label_smoothed_cross_entropy(logits, torch.tensor([0, 1]), smoothing=0.0, ignore_index=1)[1]  # row 2 ignored
    tensor(0.2395)
    """
    targets = targets.reshape(-1)  # (N,)
    counted = targets != ignore_index  # (N,)
    count = counted.sum().clamp(min=1) if normalizer is None else max(normalizer, 1)
    weights = counted.float() / count  # (N,): 1/count on counted rows, else 0
    nll, uniform = _SmoothedCrossEntropyTerms.apply(logits.reshape(-1, logits.shape[-1]),
                                                    targets.clamp(min=0), weights)
    return (1.0 - smoothing) * nll + smoothing * uniform, nll


__all__ += ["label_smoothed_cross_entropy"]
