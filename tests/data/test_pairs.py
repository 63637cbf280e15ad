"""Pairs data: reading and its one-line errors, the seeded split, sentencepiece, padding and bucketing."""

from __future__ import annotations

import numpy as np
import pytest

from nlprec.data.pairs import (PairsData, PairsTokenizer, Ragged, encode_pairs, make_batch, read_pairs,
                               split_indices, token_batches)
from nlprec.data.tokenize import BOS_ID, EOS_ID, PAD_ID
from nlprec.errors import NlprecError

WORDS = "cat dog bird fish runs sleeps eats small big red blue the a".split()


def synthetic_lines(n: int = 300, seed: int = 0) -> list[str]:
    """Made-up pairs: the target is the source reversed and upper-cased."""
    rng = np.random.default_rng(seed)
    lines = []
    for _ in range(n):
        words = list(rng.choice(WORDS, rng.integers(1, 6)))
        lines.append(" ".join(words) + "\t" + " ".join(w.upper() for w in reversed(words)))
    return lines


def write(path, lines: list[str]):
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_read_ignores_extra_columns_and_blank_lines_and_reverses(tmp_path):
    path = write(tmp_path / "p.tsv", ["Go.\tVa !\tCC-BY x", "", "Hi.\tSalut !"])
    pairs = read_pairs(path)
    assert pairs.sources == ["Go.", "Hi."] and pairs.targets == ["Va !", "Salut !"] and len(pairs.sha256) == 64
    assert read_pairs(path, reverse=True).sources == ["Va !", "Salut !"]


@pytest.mark.parametrize("content, message", [
    (b"Go.\tVa !\nno tab here\n", "line 2 has no TAB"),
    (b"Go.\tVa !\n\t\tx\n", "line 2 has an empty source side"),
    (b"Go.\t \n", "line 1 has an empty target side"),
    (b"Go.\tVa \xff!\n", r"line 1 \(byte 7\) is not valid utf-8"),
    (b"\n\n", "no sentence pairs"),
])
def test_bad_pairs_files_fail_on_one_line(tmp_path, content, message):
    path = tmp_path / "bad.tsv"
    path.write_bytes(content)
    with pytest.raises(NlprecError, match=message) as err:
        read_pairs(path)
    assert "\n" not in str(err.value) and str(path) in str(err.value)


def test_missing_file_is_one_line_error(tmp_path):
    with pytest.raises(NlprecError, match="cannot open"):
        read_pairs(tmp_path / "absent.tsv")


def test_split_is_seeded_disjoint_and_capped():
    train, valid = split_indices(1000, 50, seed=3)
    again, valid_again = split_indices(1000, 50, seed=3)
    assert (train == again).all() and (valid == valid_again).all()
    assert len(valid) == 50 and not set(train) & set(valid) and len(train) + len(valid) == 1000
    assert not (split_indices(1000, 50, seed=4)[1] == valid).all()
    assert len(split_indices(30, 2000, seed=0)[1]) == 3


def test_ragged_padding_prefix_suffix():
    ragged = Ragged.from_lists([[5, 6, 7], [8], [9, 10]])
    rows = np.array([1, 2, 0])
    assert ragged.padded(rows).tolist() == [[8, 0, 0], [9, 10, 0], [5, 6, 7]]
    assert ragged.padded(rows, prefix=BOS_ID).tolist() == [[2, 8, 0, 0], [2, 9, 10, 0], [2, 5, 6, 7]]
    assert ragged.padded(rows, suffix=EOS_ID).tolist() == [[8, 3, 0, 0], [9, 10, 3, 0], [5, 6, 7, 3]]
    assert ragged.select(np.array([2, 0])).padded(np.array([0, 1])).tolist() == [[9, 10, 0], [5, 6, 7]]


def test_bucketing_yields_every_pair_once_within_budget():
    rng = np.random.default_rng(0)
    src = rng.integers(1, 40, 5000)
    tgt = np.maximum(src + rng.integers(-3, 4, 5000), 1)  # translations have similar lengths
    batches = token_batches(src, tgt, max_tokens=400, rng=np.random.default_rng(1), bucket_size=500)
    together = np.sort(np.concatenate(batches))
    assert (together == np.arange(5000)).all()
    assert all(len(b) * (src[b].max() + tgt[b].max() + 1) <= 400 for b in batches)
    padded = sum(len(b) * (src[b].max() + tgt[b].max() + 1) for b in batches)
    assert padded < 1.15 * (src.sum() + tgt.sum() + len(src))  # sorting within buckets keeps padding small
    whole = token_batches(src, tgt, max_tokens=400, rng=np.random.default_rng(1))  # one bucket: the whole set
    assert (np.sort(np.concatenate(whole)) == np.arange(5000)).all()
    assert sum(len(b) * (src[b].max() + tgt[b].max() + 1) for b in whole) < padded
    oversized = token_batches(np.array([500, 3]), np.array([2, 3]), 100, np.random.default_rng(0))
    assert sorted(len(b) for b in oversized) == [1, 1]


def test_tokenizer_joint_and_per_side_and_data_module(tmp_path):
    lines = synthetic_lines()
    sources, targets = [l.split("\t")[0] for l in lines], [l.split("\t")[1] for l in lines]
    joint = PairsTokenizer.train(tmp_path / "j", sources, targets, vocab_size=60)
    assert joint.files() == ["spm.model"] and PairsTokenizer.load(tmp_path / "j").joint
    split = PairsTokenizer.train(tmp_path / "s", sources, targets, vocab_size=30, joint=False)
    loaded = PairsTokenizer.load(tmp_path / "s")
    assert not loaded.joint and loaded.target.decode(loaded.target.encode([targets[0]])) == [targets[0]]
    assert split.source.vocab_size == 30
    capped = PairsTokenizer.train(tmp_path / "c", sources, targets, vocab_size=5000, joint=False)
    assert 30 < capped.source.vocab_size < 5000
    encoded = encode_pairs(joint, sources, targets, max_len=6)
    assert 0 < len(encoded) < len(lines) and encoded.src.lengths.max() <= 6
    data = PairsData(encoded, encoded, max_tokens=200, seed=0)
    batches = list(data.train_dataloader(epoch=0))
    assert len(batches) == data.steps_per_epoch()
    assert [b["src"].tolist() for b in data.train_dataloader(epoch=0)] == [b["src"].tolist() for b in batches]
    batch = batches[0]
    assert (batch["tgt_in"][:, 0] == BOS_ID).all()
    assert ((batch["tgt_out"] == EOS_ID).sum(dim=1) == 1).all()
    assert batch["n_tokens"] == int((batch["src"] != PAD_ID).sum() + (batch["tgt_out"] != PAD_ID).sum())
    assert (batch["tgt_in"][:, 1:] == batch["tgt_out"][:, :-1]).logical_or(batch["tgt_out"][:, :-1] == EOS_ID).all()
    rank_rows = [len(data.train_dataloader(0, rank, 2)) for rank in (0, 1)]
    assert rank_rows[0] == rank_rows[1]


def test_make_batch_rows_match_sentences(tmp_path):
    lines = synthetic_lines(50)
    sources, targets = [l.split("\t")[0] for l in lines], [l.split("\t")[1] for l in lines]
    tokenizer = PairsTokenizer.train(tmp_path, sources, targets, vocab_size=60)
    encoded = encode_pairs(tokenizer, sources, targets)
    batch = make_batch(encoded, np.array([3, 7]))
    first = batch["src"][0][batch["src"][0] != PAD_ID].tolist()
    assert tokenizer.source.decode([first]) == [sources[int(encoded.index[3])]]
