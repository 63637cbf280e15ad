"""The progress line: its rate counts every unit since `begin`; a time budget caps its ETA and sets its percentage."""

from __future__ import annotations

import io

import pytest

from nlprec.train import progress as progress_module
from nlprec.train.progress import Progress, format_duration


@pytest.fixture
def clock(monkeypatch):
    """A settable perf_counter for the progress module."""
    now = {"t": 100.0}
    monkeypatch.setattr(progress_module.time, "perf_counter", lambda: now["t"])
    return now


def line_after(progress: Progress, clock, seconds: float, step: int, units: float) -> str:
    clock["t"] += seconds
    progress.update(step, 1, 10, 2.0, 1e-3, units, force=True)
    return progress.stream.getvalue().splitlines()[-1]


def test_rate_and_eta_from_steps(clock):
    progress = Progress(100, unit="tokens", stream=io.StringIO())
    progress.begin(0)
    line = line_after(progress, clock, 10.0, 10, 5000)
    assert "500 tokens/s" in line and "ETA 0:01:30" in line


def test_time_limit_caps_the_eta(clock):
    progress = Progress(10_000, unit="tokens", stream=io.StringIO(), time_limit_seconds=60.0)
    progress.begin(0)
    line = line_after(progress, clock, 15.0, 10, 5000)
    assert "ETA 0:00:45" in line and " 25.0% " in line  # the budget's share, not 10 of 10,000 steps
    assert "ETA 0:00:00" in line_after(progress, clock, 70.0, 80, 40000)


def test_resumed_progress_counts_from_its_first_step(clock):
    progress = Progress(200, unit="tokens", stream=io.StringIO())
    progress.begin(100)
    line = line_after(progress, clock, 10.0, 150, 1000)
    assert "100 tokens/s" in line and "ETA 0:00:10" in line


def test_format_duration():
    assert format_duration(3725.2) == "1:02:05" and format_duration(-3) == "0:00:00"
