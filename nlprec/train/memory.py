"""Keep freed memory in the process for reuse instead of handing it back to the kernel.

glibc's malloc serves blocks above a threshold (128 KiB, raised adaptively to at most 32 MiB)
with fresh mmap pages and unmaps them on free; a training step allocates and frees the same
large activations, logits and gradients every step, so every step pays the page faults of
touching them anew. Raising the mmap and trim thresholds (what the MALLOC_MMAP_THRESHOLD_ and
MALLOC_TRIM_THRESHOLD_ environment variables do, or jemalloc/tcmalloc, which PyTorch's CPU
performance guide recommends) lets the heap keep them: about +10% Transformer tokens/s on a
2-core CPU (BENCHMARKS.md). The cost: the process keeps its peak heap until it exits.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import platform

_M_TRIM_THRESHOLD = -1  # mallopt parameters, from glibc's malloc.h
_M_MMAP_THRESHOLD = -3
_KEEP_BYTES = 1 << 30  # blocks up to 1 GiB come from the heap; up to 1 GiB of free top stays mapped


def keep_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds to 1 GiB; False (and nothing done) without glibc."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return False
    return bool(libc.mallopt(_M_MMAP_THRESHOLD, _KEEP_BYTES)) and bool(libc.mallopt(_M_TRIM_THRESHOLD, _KEEP_BYTES))


__all__ = ["keep_freed_memory"]
