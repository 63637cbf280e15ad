"""Co-occurrence counts against a plain-Python count of the same definition (glove's
`cooccur -symmetric 1`), for the dense and the sparse path, plus the memory refusal."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pytest
import torch

from nlprec.data import cooccurrence
from nlprec.data.cooccurrence import CooccurrenceData, count_cooccurrences, estimate_bytes
from nlprec.errors import NlprecError


def brute_force(sentences: list[list[int]], window: int) -> dict[tuple[int, int], float]:
    counts: dict[tuple[int, int], float] = defaultdict(float)
    for sentence in sentences:
        for position, right in enumerate(sentence):
            for distance in range(1, min(window, position) + 1):
                left = sentence[position - distance]
                counts[left, right] += 1.0 / distance
                counts[right, left] += 1.0 / distance
    return dict(counts)


def random_corpus(seed: int = 0, vocab: int = 40, sentences: int = 60) -> list[list[int]]:
    rng = np.random.default_rng(seed)
    return [rng.zipf(1.5, rng.integers(1, 30)).clip(1, vocab).astype(np.int32) - 1 for _ in range(sentences)]


def as_dict(counts) -> dict[tuple[int, int], float]:
    return {(int(r), int(c)): float(v) for r, c, v in zip(counts.rows, counts.cols, counts.values)}


@pytest.mark.parametrize("dense_words", [0, 8, 4096])
@pytest.mark.parametrize("window", [1, 3, 10])
def test_counts_equal_the_plain_definition(monkeypatch, dense_words, window):
    monkeypatch.setattr(cooccurrence, "DENSE_WORDS", dense_words)
    monkeypatch.setattr(cooccurrence, "BLOCK_TOKENS", 100)  # several blocks, so the merge runs
    sentences = random_corpus()
    ids = np.concatenate(sentences).astype(np.int32)
    ends = np.cumsum([len(s) for s in sentences]).astype(np.int64)
    counts = count_cooccurrences(ids, ends, 40, window, log=lambda *_: None)
    ours, expected = as_dict(counts), brute_force([list(s) for s in sentences], window)
    assert len(counts) == len(ours) == len(expected)  # each (row, col) once
    assert ours.keys() == expected.keys()
    np.testing.assert_allclose([ours[key] for key in expected], list(expected.values()), rtol=1e-6)


def test_windows_stop_at_sentence_ends():
    counts = count_cooccurrences(np.array([0, 1, 2], np.int32), np.array([1, 3], np.int64), 3, 5,
                                 log=lambda *_: None)
    assert as_dict(counts) == {(1, 2): 1.0, (2, 1): 1.0}


def test_refuses_when_it_would_not_fit():
    ids = np.zeros(1000, np.int32)
    with pytest.raises(NlprecError, match=r"lower --max-vocab or --window \(now 10\), or raise --memory-gb"):
        count_cooccurrences(ids, np.array([1000], np.int64), 100, 10, memory_budget=1000, log=lambda *_: None)
    assert estimate_bytes(1000, 100, 10) > 1000


def test_prints_its_memory_estimate():
    lines = []
    count_cooccurrences(np.array([0, 1], np.int32), np.array([2], np.int64), 2, 2, log=lines.append)
    assert lines and lines[0].startswith("co-occurrence memory: up to")


def test_window_above_fifteen_is_refused():
    with pytest.raises(NlprecError, match="--window must be in 1..15"):
        count_cooccurrences(np.array([0, 1], np.int32), np.array([2], np.int64), 2, 16, log=lambda *_: None)


def test_data_module_visits_every_entry_once_per_epoch():
    sentences = random_corpus(1)
    ids = np.concatenate(sentences).astype(np.int32)
    ends = np.cumsum([len(s) for s in sentences]).astype(np.int64)
    counts = count_cooccurrences(ids, ends, 40, 5, log=lambda *_: None)
    data = CooccurrenceData(counts, batch_size=37, seed=3, state={})
    for epoch in (0, 1):
        batches = list(data.train_dataloader(epoch))
        assert len(batches) == data.steps_per_epoch()
        seen = torch.cat([b["rows"].long() * 40 + b["cols"].long() for b in batches]).sort().values
        assert torch.equal(seen, torch.from_numpy(np.sort(counts.rows.astype(np.int64) * 40 + counts.cols)))
