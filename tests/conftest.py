"""Shared fixtures: where the public corpora are, and small helpers every test may use.

The real data sets are read from `$NLPREC_CORPORA`, or `../shared/corpora` beside the
checkout when that exists; tests that need them skip with the reason when neither is there.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def corpora_root() -> Path | None:
    """The folder holding the public data sets, or None when it is not on this machine."""
    configured = os.environ.get("NLPREC_CORPORA")
    candidate = Path(configured) if configured else REPO_ROOT.parent / "shared" / "corpora"
    return candidate if candidate.is_dir() else None


@pytest.fixture(scope="session")
def corpora_dir() -> Path:
    """Path to the public corpora; skips the test when they are absent."""
    root = corpora_root()
    if root is None:
        pytest.skip("public corpora not found: set NLPREC_CORPORA or place them in ../shared/corpora")
    return root


# Let test modules import the shared contract (tests/contract.py) under --import-mode=importlib.
import sys  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture
def one_thread():
    """Tiny models run fastest on one torch thread, above all on a shared machine; restored after.
    A module opts in with `pytestmark = pytest.mark.usefixtures("one_thread")`."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
