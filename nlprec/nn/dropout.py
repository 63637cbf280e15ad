"""Dropout with a cheaper random mask on the CPU.

torch's CPU dropout draws one Bernoulli sample per element (aten::bernoulli_): a tenth of a bf16
Transformer training step on a 2-core CPU (torch.profiler). Here one 64-bit random integer
supplies the bits of four elements: an element is kept when its 16 random bits are at or above a
threshold, so the drop rate is p rounded to a multiple of 1/65536 and kept values are scaled by
1 / (1 - that rate), which keeps the expectation exact. The masks come from torch's seeded
generator (same seed, same masks). Elsewhere than on the CPU torch's own kernel is used.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

_LEVELS = 1 << 16  # distinct 16-bit values


def cpu_dropout(x: torch.Tensor, p: float) -> torch.Tensor:
    """Zero each element of x with probability p (to 1/65536) and scale the rest: same shape as x."""
    dropped = round(p * _LEVELS)  # values below the threshold are dropped
    if dropped == 0:
        return x
    if dropped >= _LEVELS:
        return x * 0.0
    n = x.numel()
    words = torch.empty((n + 3) // 4, dtype=torch.int64).random_(-(1 << 63), (1 << 63) - 1)  # (ceil(n / 4),)
    bits = words.view(torch.int16)[:n].view(x.shape)  # 16 random bits per element
    drop = bits < (dropped - _LEVELS // 2)  # bool, x's shape
    return x.masked_fill(drop, 0) * (_LEVELS / (_LEVELS - dropped))


class Dropout(nn.Module):
    """nn.Dropout with `cpu_dropout` on CPU tensors (identity in eval mode or with p = 0)."""

    def __init__(self, p: float = 0.1):
        super().__init__()
        if not 0 <= p < 1:
            raise ValueError(f"dropout p={p}: expected a number in [0, 1)")
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        if x.device.type != "cpu":
            return F.dropout(x, self.p, training=True)
        return cpu_dropout(x, self.p)

    def extra_repr(self) -> str:
        return f"p={self.p}"


__all__ = ["Dropout", "cpu_dropout"]
