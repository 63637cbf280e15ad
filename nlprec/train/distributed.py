"""torch.distributed glue for runs started with `torchrun`: NCCL when the run's device is a GPU,
gloo when it is the CPU (whether or not the machine has a GPU).

Outside torchrun (no WORLD_SIZE in the environment) every function here is a no-op.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist
from torch import nn


def local_rank() -> int:
    """This process's GPU index on its node (0 outside torchrun)."""
    return int(os.environ.get("LOCAL_RANK", "0"))


def setup(device: torch.device) -> tuple[int, int]:
    """Join the process group torchrun describes, with the backend of the device this run trains
    on (NCCL for CUDA, gloo for the CPU); returns (world_size, rank)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return 1, 0
    if not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return dist.get_world_size(), dist.get_rank()


def sparse_gradients_supported(device: torch.device) -> bool:
    """Whether a run on `device` can all-reduce sparse gradients: one process, or gloo (CPU); NCCL
    cannot, so DDP on GPUs needs dense ones."""
    return int(os.environ.get("WORLD_SIZE", "1")) <= 1 or device.type != "cuda"


def barrier() -> None:
    """Wait for every rank (no-op when not distributed)."""
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


@torch.no_grad()
def average_parameters(model: nn.Module) -> None:
    """Replace each parameter by its mean over ranks (for models that update themselves)."""
    world_size = dist.get_world_size()
    for parameter in model.parameters():
        dist.all_reduce(parameter.data, op=dist.ReduceOp.SUM)
        parameter.data /= world_size
