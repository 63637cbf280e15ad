"""Shared pieces of the benchmarks: where the corpora are, the IMDb token file, JSON output."""

from __future__ import annotations

import gzip
import json
import os
import platform
import re
import time
from pathlib import Path
from typing import Any

import numpy as np

from nlprec import __version__
from nlprec.io import atomic_write

REPO = Path(__file__).resolve().parents[1]
TOKEN = re.compile(r"[a-z0-9']+")


def corpora_dir(option: str | None) -> Path:
    """--corpora, else $NLPREC_CORPORA, else ../shared/corpora beside the checkout."""
    path = Path(option or os.environ.get("NLPREC_CORPORA") or REPO.parent / "shared" / "corpora")
    if not path.is_dir():
        raise SystemExit(f"corpora folder {path} not found: pass --corpora or set NLPREC_CORPORA")
    return path


def imdb_token_file(corpora: Path, cache: Path) -> Path:
    """IMDb train + test reviews, lower-cased, tokens of [a-z0-9']+, one review per line.

    Built once into `cache` (about 63 MB, 11.75M tokens); every tool reads this same file.
    """
    out = cache / "imdb_tokens.txt"
    if out.is_file():
        return out
    with atomic_write(out, "w", encoding="utf-8") as handle:
        for name in ("imdb_train.tsv.gz", "imdb_test.tsv.gz"):
            with gzip.open(corpora / "imdb" / name, "rt", encoding="utf-8", newline="\n") as lines:
                for line in lines:  # label<TAB>text; the text may hold a TAB itself
                    text = line.rstrip("\n").split("\t", 1)[1]
                    handle.write(" ".join(TOKEN.findall(text.lower())) + "\n")
    return out


def count_tokens(path: Path) -> int:
    """Whitespace-separated tokens in a file."""
    with open(path, encoding="utf-8") as handle:
        return sum(len(line.split()) for line in handle)


class Timer:
    """`with Timer() as t: ...; t.seconds`."""

    def __enter__(self) -> Timer:
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.start


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    import torch

    return {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
            "torch": torch.__version__, "numpy": np.__version__, "nlprec": __version__,
            "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}


def write_json(path: Path, results: dict[str, Any]) -> None:
    """Results with the machine description, written atomically."""
    with atomic_write(path, "w", encoding="utf-8") as handle:
        json.dump({"machine": machine(), **results}, handle, indent=2)
        handle.write("\n")
