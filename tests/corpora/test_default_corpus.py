"""The generated default corpus: deterministic, the intended size, plain lower-case text, cached safely."""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from pathlib import Path

import pytest

from nlprec_corpora import default_corpus as dc


@pytest.fixture(scope="module")
def text() -> str:
    return dc.generate_text()


def test_text_is_deterministic_and_matches_the_recorded_checksum(text: str) -> None:
    # A grammar change must come with a new CORPUS_SHA256 and CORPUS_VERSION.
    assert hashlib.sha256(text.encode("ascii")).hexdigest() == dc.CORPUS_SHA256
    assert dc.generate_text(seed=dc.SEED, n_sentences=500) == dc.generate_text(n_sentences=500)
    assert dc.generate_text(seed=dc.SEED + 1, n_sentences=500) != dc.generate_text(n_sentences=500)


def test_size_and_plain_lower_case_lines(text: str) -> None:
    lines = text.split("\n")
    assert lines[-1] == "" and len(lines) - 1 == dc.N_SENTENCES
    assert all(re.fullmatch(r"[a-z']+( [a-z']+)*", line) for line in lines[:-1])
    counts = Counter(text.split())
    assert 400_000 <= sum(counts.values()) <= 800_000
    assert 300 <= len(counts) <= 1_000


def test_probe_and_analogy_words_are_frequent(text: str) -> None:
    counts = Counter(text.split())
    words = set(dc.DEFAULT_PROBES) | {word for analogy in dc.DEFAULT_ANALOGIES for word in analogy}
    assert min(counts[word] for word in words) >= 100, {word: counts[word] for word in words}


def test_path_is_generated_once_and_repaired(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NLPREC_CACHE", str(tmp_path))
    path = dc.default_corpus_path()
    assert path.parent.parent == tmp_path / "corpora"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == dc.CORPUS_SHA256
    written = path.stat().st_mtime_ns
    assert dc.default_corpus_path() == path and path.stat().st_mtime_ns == written  # reused, not rewritten
    path.write_text("truncated\n")
    assert hashlib.sha256(dc.default_corpus_path().read_bytes()).hexdigest() == dc.CORPUS_SHA256
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary files left
