"""RNG states in checkpoints: a CPU run saves and restores no CUDA state (it never initialises
CUDA), and a saved CUDA state from any number of GPUs does not stop a resume on the CPU."""

from __future__ import annotations

import random

import numpy as np
import torch

from nlprec.train.checkpoint import capture_rng, restore_rng


def test_a_cpu_run_keeps_no_cuda_state_and_restores_every_other_rng():
    cpu = torch.device("cpu")
    random.seed(1), np.random.seed(1), torch.manual_seed(1)
    state = capture_rng(cpu)
    assert "cuda" not in state
    expected = (random.random(), np.random.rand(), torch.rand(1).item())
    random.seed(2), np.random.seed(2), torch.manual_seed(2)
    restore_rng(state, cpu)
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == expected


def test_a_cuda_state_from_several_gpus_is_ignored_on_the_cpu():
    cpu = torch.device("cpu")
    torch.manual_seed(3)
    state = {**capture_rng(cpu), "cuda": [torch.zeros(16, dtype=torch.uint8)] * 3}  # as a 3-GPU run saved it
    expected = torch.rand(1).item()
    torch.manual_seed(4)
    restore_rng(state, cpu)  # no CUDA here: must not try to set it
    assert torch.rand(1).item() == expected
