"""keep_freed_memory: glibc's thresholds are raised where glibc is, nothing happens elsewhere."""

from __future__ import annotations

import platform

import numpy as np

from nlprec.train.memory import keep_freed_memory


def test_keep_freed_memory_takes_effect_on_glibc_and_allocation_still_works():
    on_glibc = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"
    assert keep_freed_memory() is on_glibc
    assert keep_freed_memory() is on_glibc  # idempotent
    block = np.ones(64 << 20, dtype=np.uint8)  # 64 MiB, served from the heap now
    assert int(block.sum()) == 64 << 20
