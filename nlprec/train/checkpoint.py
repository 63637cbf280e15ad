"""Checkpoints: written atomically, checked, read back without executing code.

A checkpoint is a plain dict of tensors, numbers, strings, lists and dicts, so
`torch.load(..., weights_only=True)` reads it. It holds everything a resume needs: model,
optimizer and scaler states, step/epoch/position, the RNG states, the configs, the data
state (vocabulary) and provenance (seed, data checksum, package version).

Safety. A checkpoint is written to a temporary file, fsynced and renamed over `last.pt`, so a
kill while writing leaves the previous `last.pt` whole (and a `.last.pt.*.tmp` that nothing
reads). Reading (`nlprec.io.read_torch_file`, also used for the model folders' `model.pt`) first checks
the CRC-32 of every member of torch's zip archive, since torch itself does not: a damaged or
truncated file is refused with one line, never loaded with wrong weights; then only
`weights_only=True` unpickling runs, which refuses any pickle that would call code.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nlprec.errors import NlprecError
from nlprec.io import atomic_write, read_torch_file

FORMAT = "nlprec-checkpoint-v1"


def capture_rng(device: torch.device) -> dict[str, Any]:
    """The Python, NumPy and torch RNG states, in weights_only-safe types; the CUDA state only of
    the GPU this run trains on (a CPU run never initialises CUDA)."""
    name, keys, pos, has_gauss, gauss = np.random.get_state()
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": {"name": name, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "gauss": float(gauss)},
        "torch": torch.get_rng_state(),
    }
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def restore_rng(state: dict[str, Any], device: torch.device) -> None:
    """Put back the RNG states saved by `capture_rng`. A run resumed on the CPU ignores a saved
    CUDA state; one resumed on a GPU takes it (from checkpoints that saved every GPU's state, the
    entry of its own index, else the first), so the GPU count may differ between the runs."""
    random.setstate(_as_tuple(state["python"]))
    numpy_state = state["numpy"]
    np.random.set_state((numpy_state["name"], numpy_state["keys"].numpy().astype(np.uint32),
                         numpy_state["pos"], numpy_state["has_gauss"], numpy_state["gauss"]))
    torch.set_rng_state(state["torch"])
    cuda = state.get("cuda")
    if cuda is None or device.type != "cuda":
        return
    if isinstance(cuda, (list, tuple)):  # every GPU's state, as checkpoints before this change saved it
        cuda = cuda[device.index or 0] if (device.index or 0) < len(cuda) else cuda[0]
    torch.cuda.set_rng_state(cuda, device)


def _as_tuple(value: Any) -> Any:
    """Lists back to tuples (random.setstate wants nested tuples)."""
    return tuple(_as_tuple(item) for item in value) if isinstance(value, (list, tuple)) else value


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    """Write `state` (plus the format tag) atomically: temp file, fsync, rename; then remove the
    temporary files that writes killed half way left beside it (one writer per folder: rank 0)."""
    path = Path(path)
    with atomic_write(path, "wb") as handle:
        torch.save({"format": FORMAT, **state}, handle)
    for stale in path.parent.glob(f".{path.name}.*.tmp"):
        stale.unlink(missing_ok=True)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint (`read_torch_file`); a missing, damaged or foreign file is a one-line error."""
    path = Path(path)
    state = read_torch_file(path)
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise NlprecError(f"{path}: not an nlprec checkpoint (expected format {FORMAT!r})")
    return state
