"""run_recurrent: on the CPU it is the layer itself, under autocast or not (CPU bf16 autocast kept)."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from nlprec.nn.recurrent import run_recurrent


def test_on_the_cpu_it_is_the_layer_itself():
    torch.manual_seed(0)
    rnn = nn.LSTM(4, 3, batch_first=True, bidirectional=True)
    x = torch.randn(2, 5, 4)  # (B, T, dim)
    packed = pack_padded_sequence(x, torch.tensor([5, 3]), batch_first=True, enforce_sorted=False)
    ours, _ = run_recurrent(rnn, packed)
    theirs, _ = rnn(packed)
    assert torch.equal(ours.data, theirs.data)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        ours, _ = run_recurrent(rnn, x)
        theirs, _ = rnn(x)
    assert ours.dtype == theirs.dtype and torch.equal(ours, theirs)
