"""Shared machinery of the reader fuzz tests: mutation strategies, the outcome check, two runs.

Every reader must either load a file correctly or raise `NlprecError` with a one-line message
naming the file; any other exception, or an allocation far beyond the file's size, fails the
test (hypothesis then shrinks the input to a small reproducer). Each reader gets a default
test (`DEFAULT_EXAMPLES` inputs, part of the normal run) and a `slow`-marked one
(`SLOW_EXAMPLES`, run with `pytest -m slow tests/fuzz`).

With NLPREC_FUZZ_REPORT=path the outcome counts per reader are written there as JSON at the
end of the session (RELIABILITY.md quotes them).
"""

from __future__ import annotations

import collections
import contextlib
import os
import tempfile
import tracemalloc
from pathlib import Path
from typing import Any, Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nlprec.errors import NlprecError

DEFAULT_EXAMPLES = int(os.environ.get("NLPREC_FUZZ_EXAMPLES", "100"))
SLOW_EXAMPLES = 2000
# Allocation allowed while reading: this many times the file's size, plus a fixed slack for the
# readers' fixed buffers (8 MiB text blocks), small tables and pandas, torch and zipfile internals.
ALLOC_FACTOR = 16
ALLOC_SLACK = 24 << 20
OUTCOMES: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)


def mutations(valid: bytes) -> st.SearchStrategy[bytes]:
    """Damaged copies of `valid`: cut short, bytes flipped, bytes inserted or deleted, spliced."""
    n = len(valid)
    cut = st.integers(0, n - 1).map(lambda size: valid[:size])
    flips = st.lists(st.tuples(st.integers(0, n - 1), st.integers(1, 255)), min_size=1, max_size=6).map(
        lambda changes: _flip(valid, changes))
    insert = st.tuples(st.integers(0, n), st.binary(min_size=1, max_size=24)).map(
        lambda spec: valid[:spec[0]] + spec[1] + valid[spec[0]:])
    delete = st.tuples(st.integers(0, n - 1), st.integers(1, 32)).map(
        lambda spec: valid[:spec[0]] + valid[spec[0] + spec[1]:])
    repeat = st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)).map(
        lambda spec: valid[:max(spec)] + valid[min(spec):])
    return st.one_of(cut, flips, insert, delete, repeat)


def _flip(valid: bytes, changes: list[tuple[int, int]]) -> bytes:
    data = bytearray(valid)
    for position, mask in changes:
        data[position] ^= mask
    return bytes(data)


def check_outcome(reader: str, path: Path, load: Callable[[Path], Any],
                  validate: Callable[[Any], None] | None = None) -> str:
    """Run `load(path)`: a result passes `validate`, an error is one line naming the file.

    Returns "loaded" or "error" (also counted in OUTCOMES[reader]); other exceptions propagate.
    Peak traced memory (numpy, Python) must stay within ALLOC_FACTOR x the file's size + slack.
    """
    size = path.stat().st_size if path.is_file() else sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    tracemalloc.start()
    try:
        result = load(path)
    except NlprecError as err:
        message = str(err)
        assert "\n" not in message, f"multi-line error: {message!r}"
        assert path.name in message, f"error does not name the file {path.name!r}: {message!r}"
        outcome = "error"
    else:
        outcome = "loaded"
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert peak <= ALLOC_FACTOR * size + ALLOC_SLACK, f"{reader} allocated {peak:,} bytes for a {size:,}-byte input"
    if outcome == "loaded" and validate is not None:
        validate(result)
    OUTCOMES[reader][outcome] += 1
    return outcome


@contextlib.contextmanager
def scratch() -> Any:
    """A fresh temporary folder per example (hypothesis cannot use function-scoped fixtures)."""
    with tempfile.TemporaryDirectory(prefix="nlprec-fuzz-") as folder:
        yield Path(folder)


def fuzz_pair(strategy: st.SearchStrategy, body: Callable[[Any], None],
              default_share: float = 1.0) -> tuple[Callable, Callable]:
    """A default-run test (`default_share` x DEFAULT_EXAMPLES inputs: below 1 for slow loaders)
    and a slow-marked test (SLOW_EXAMPLES) running `body` on inputs drawn from `strategy`."""
    common = dict(deadline=None, database=None, derandomize=False,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                         HealthCheck.filter_too_much])
    quick = settings(max_examples=max(1, int(DEFAULT_EXAMPLES * default_share)), **common)(given(strategy)(body))
    slow = pytest.mark.slow(settings(max_examples=SLOW_EXAMPLES, **common)(given(strategy)(body)))
    return quick, slow


def every_truncation(reader: str, valid: bytes, name: str, load: Callable[[Path], Any],
                     validate: Callable[[Any], None] | None = None, step: int = 1) -> collections.Counter:
    """Load `valid` cut at every `step`-th length (0 .. len - 1): an error, or (only when just
    trailing whitespace was cut) a load that passes `validate`; outcomes counted by kind."""
    seen: collections.Counter = collections.Counter()
    with scratch() as folder:
        path = folder / name
        for size in range(0, len(valid), step):
            path.write_bytes(valid[:size])
            outcome = check_outcome(reader, path, load, validate)
            assert outcome == "error" or not valid[size:].strip(), f"{name} cut to {size} bytes loaded as whole"
            seen[outcome] += 1
    return seen
