"""Tiny data files and CLI runners shared by the reliability tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from nlprec_cli.main import main

KILL_RUNNER = Path(__file__).with_name("kill_runner.py")
_WORDS = "the cat dog sat on mat ran fast slow big small red blue green tree house car road".split()
_PAIR_WORDS = "cat dog bird fish runs sleeps eats small big".split()


def write_corpus(path: Path, sentences: int = 400) -> Path:
    rng = np.random.default_rng(0)
    path.write_text("\n".join(" ".join(rng.choice(_WORDS, 12)) for _ in range(sentences)) + "\n", encoding="utf-8")
    return path


def write_ratings(path: Path, users: int = 40, items: int = 30, per_user: int = 8) -> Path:
    """user, item, rating (1-5), timestamp; every user rates `per_user` distinct items."""
    rng = np.random.default_rng(0)
    rows = [f"u{u}\ti{i}\t{rng.integers(1, 6)}\t{1000 + u * 100 + i}"
            for u in range(users) for i in rng.choice(items, per_user, replace=False)]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def write_pairs(path: Path, n: int = 80) -> Path:
    """Made-up pairs: the target is the source reversed and upper-cased."""
    rng = np.random.default_rng(0)
    lines = []
    for _ in range(n):
        words = list(rng.choice(_PAIR_WORDS, rng.integers(1, 5)))
        lines.append(" ".join(words) + "\t" + " ".join(w.upper() for w in reversed(words)))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def run_in_process(capsys, *argv) -> tuple[int, str, str]:
    """Run the CLI here; (exit status, stdout, stderr)."""
    capsys.readouterr()
    try:
        main([str(arg) for arg in argv])
        code = 0
    except SystemExit as exit_:
        code = exit_.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def run_subprocess(args: list, kill: tuple = ("none",), cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run the CLI in a fresh interpreter through kill_runner.py (`kill`: its mode and numbers)."""
    env = {**os.environ, "PYTHONHASHSEED": "0", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "NUMBA_NUM_THREADS": "1"}
    command = [sys.executable, str(KILL_RUNNER), *map(str, kill), "--", *map(str, args)]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)


def write_labelled(path: Path, n: int = 120) -> Path:
    """label<TAB>text lines: two classes told apart by a few sentiment words."""
    rng = np.random.default_rng(0)
    words = {"pos": "good great fine fun superb".split(), "neg": "bad dull awful boring poor".split()}
    filler = "the film a movie was is and".split()
    lines = []
    for row in range(n):
        label = "pos" if row % 2 else "neg"
        text = list(rng.choice(filler, 5)) + list(rng.choice(words[label], 2))
        rng.shuffle(text)
        lines.append(f"{label}\t{' '.join(text)}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
