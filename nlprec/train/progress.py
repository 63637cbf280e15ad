"""One-line progress with throughput and ETA, written to stderr.

On a terminal the line is redrawn in place; in a log file (CI, nohup) a new line is printed
every `every_seconds`, so logs stay short.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO


def format_duration(seconds: float) -> str:
    """`3725.2` -> `'1:02:05'`."""
    seconds = max(int(seconds), 0)
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


class Progress:
    """Prints `epoch e/E step s/S pct loss lr units/s ETA` at most every `every_seconds`."""

    def __init__(self, total_steps: int, unit: str = "examples", enabled: bool = True,
                 every_seconds: float | None = None, stream: TextIO | None = None,
                 time_limit_seconds: float | None = None):
        self.total_steps = max(total_steps, 1)
        self.time_limit_seconds = time_limit_seconds  # a --max-minutes budget caps the ETA
        self.unit = unit
        self.enabled = enabled
        self.stream = stream or sys.stderr
        self.in_place = self.stream.isatty()
        self.every_seconds = every_seconds if every_seconds is not None else (0.5 if self.in_place else 15.0)
        self.start_time = time.perf_counter()
        self.last_print = 0.0
        self.start_step = 0

    def begin(self, start_step: int) -> None:
        """Start timing; `start_step` > 0 on resume so the ETA counts only the remaining work."""
        self.start_step = start_step
        self.start_time = time.perf_counter()

    def update(self, step: int, epoch: int, epochs: int, loss: float, lr: float,
               units_done: float, force: bool = False) -> None:
        """Redraw the line if enough time passed (or `force`); `units_done` counts since `begin`."""
        now = time.perf_counter()
        if not self.enabled or (not force and now - self.last_print < self.every_seconds):
            return
        self.last_print = now
        elapsed = max(now - self.start_time, 1e-9)
        done = step - self.start_step
        eta = elapsed / done * (self.total_steps - step) if done > 0 else 0.0
        share = step / self.total_steps
        if self.time_limit_seconds is not None:  # a time budget ends the run first: its share is the progress
            eta = min(eta, max(self.time_limit_seconds - elapsed, 0.0))
            share = max(share, min(elapsed / max(self.time_limit_seconds, 1e-9), 1.0))
        line = (f"epoch {epoch}/{epochs} step {step}/{self.total_steps} "
                f"{100.0 * share:5.1f}% loss {loss:.4f} lr {lr:.3g} "
                f"{units_done / elapsed:,.0f} {self.unit}/s ETA {format_duration(eta)}")
        end = "\r" if self.in_place else "\n"
        print(line.ljust(100) if self.in_place else line, end=end, file=self.stream, flush=True)

    def close(self) -> None:
        """End the in-place line so later output starts on a fresh line."""
        if self.enabled and self.in_place and self.last_print:
            print(file=self.stream, flush=True)
