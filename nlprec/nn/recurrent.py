"""Run a cuDNN recurrent layer in the precision it can be trusted with.

Under CUDA autocast, torch sends `_cudnn_rnn` through its own wrapper, which has cast to fp16
whatever the autocast dtype; with bf16 autocast there is no GradScaler to guard fp16 gradients.
So on a GPU the recurrence runs outside autocast, in fp32 (TF32 where the GPU allows it); the
layers around it keep the run's precision. CPU autocast (bf16 on CPUs with bf16 units) is kept.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


def run_recurrent(rnn: nn.RNNBase, inputs: Any, *args: Any) -> Any:
    """`rnn(inputs, *args)`, outside CUDA autocast when `inputs` (a tensor or PackedSequence) is on a GPU."""
    data = inputs.data if isinstance(inputs, nn.utils.rnn.PackedSequence) else inputs
    if not data.is_cuda:
        return rnn(inputs, *args)
    with torch.autocast("cuda", enabled=False):
        return rnn(inputs, *args)
