"""Sentence pairs for translation: reading, subwords, length filtering, bucketing and padding.

A pairs file has `source<TAB>target` per line; further columns (the Tatoeba attribution in
manythings' fra.txt) are ignored. `read_pairs` checks every line and names the first bad one.
`PairsTokenizer` is one joint sentencepiece model (both sides, shared embeddings possible) or
one per side. `EncodedPairs` keeps each side as one flat id array plus offsets, so a padded
batch is built with a single fancy-indexing assignment. `PairsData` is the trainer's data
module: token-budget batches of similar lengths, sorted within shuffled buckets.

Batch keys (all int64, padding id 0):
    src      (B, S)  source pieces, no bos/eos
    tgt_in   (B, T)  bos + target pieces (decoder input, teacher forcing)
    tgt_out  (B, T)  target pieces + eos (what the decoder predicts)
    n_tokens int     non-padding source + target tokens (the trainer's throughput unit)
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import torch

from nlprec.data.batching import RowBatches
from nlprec.data.tokenize import BOS_ID, EOS_ID, PAD_ID, SentencePieceTokenizer, iter_text_chunks
from nlprec.errors import NlprecError


@dataclass(frozen=True)
class Pairs:
    """Parallel sentences read from a file."""

    sources: list[str]  # one source sentence per pair
    targets: list[str]  # its translation, same length as `sources`
    sha256: str  # checksum of the file's bytes (provenance)
    path: str  # where they came from


def read_pairs(path: str | os.PathLike, reverse: bool = False, encoding: str = "utf-8") -> Pairs:
    """Read `source<TAB>target[<TAB>ignored...]` lines; `reverse` swaps the two sides.

    Blank lines are skipped. A line without a TAB, or with an empty side, raises an
    `NlprecError` naming the file and line; so does undecodable text.
    """
    path = Path(path)
    sources: list[str] = []
    targets: list[str] = []
    line_no = 0
    for text in iter_text_chunks(path, encoding=encoding):
        for line in text.split("\n")[:-1]:
            line_no += 1
            if not line.strip():
                continue
            fields = line.rstrip("\r").split("\t", 2)
            if len(fields) < 2:
                raise NlprecError(f"{path}: line {line_no} has no TAB; expected source<TAB>target")
            source, target = fields[0].strip(), fields[1].strip()
            if not source or not target:
                side = "source" if not source else "target"
                raise NlprecError(f"{path}: line {line_no} has an empty {side} side; expected source<TAB>target")
            sources.append(source)
            targets.append(target)
    if not sources:
        raise NlprecError(f"{path}: no sentence pairs; expected source<TAB>target lines")
    if reverse:
        sources, targets = targets, sources
    return Pairs(sources, targets, _sha256(path), str(path))


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def split_indices(n: int, valid_size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A seeded permutation of range(n) cut into (train, valid) index arrays.

    `valid_size` is capped at a tenth of the pairs so that tiny files still train.

    >>> [len(part) for part in split_indices(100, 30, seed=0)]
    [90, 10]
    """
    valid_size = min(valid_size, n // 10)
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[valid_size:]), np.sort(order[:valid_size])


class PairsTokenizer:
    """Sentencepiece for both sides: one joint model (`spm.model`) or `src.model` + `tgt.model`."""

    JOINT, SOURCE, TARGET = "spm.model", "src.model", "tgt.model"

    def __init__(self, source: SentencePieceTokenizer, target: SentencePieceTokenizer, joint: bool):
        self.source = source
        self.target = target
        self.joint = joint

    @classmethod
    def train(cls, folder: str | os.PathLike, sources: Sequence[str], targets: Sequence[str], vocab_size: int,
              joint: bool = True, seed: int = 0) -> PairsTokenizer:
        """Train on the training pairs and write the model file(s) into `folder` atomically.

        A `vocab_size` larger than the pairs support (small files) is lowered to the maximum
        sentencepiece reports; the models' `vocab_size` says what was used.
        """
        folder = Path(folder)
        if joint:
            model = _train_capped(folder / cls.JOINT, vocab_size, [*sources, *targets], seed)
            return cls(model, model, True)
        source = _train_capped(folder / cls.SOURCE, vocab_size, sources, seed)
        target = _train_capped(folder / cls.TARGET, vocab_size, targets, seed)
        return cls(source, target, False)

    @classmethod
    def load(cls, folder: str | os.PathLike) -> PairsTokenizer:
        """Load what `train` wrote into `folder`."""
        folder = Path(folder)
        if (folder / cls.JOINT).is_file():
            model = SentencePieceTokenizer.load(folder / cls.JOINT)
            return cls(model, model, True)
        return cls(SentencePieceTokenizer.load(folder / cls.SOURCE), SentencePieceTokenizer.load(folder / cls.TARGET),
                   False)

    def files(self) -> list[str]:
        """The file names this tokenizer occupies in its folder."""
        return [self.JOINT] if self.joint else [self.SOURCE, self.TARGET]


def _train_capped(path: Path, vocab_size: int, sentences: Sequence[str], seed: int) -> SentencePieceTokenizer:
    try:
        return SentencePieceTokenizer.train(path, vocab_size, sentences=sentences, seed=seed)
    except NlprecError as err:
        most = re.search(r"Please set it to a value <= (\d+)", str(err))
        if most is None:
            raise
        return SentencePieceTokenizer.train(path, int(most.group(1)), sentences=sentences, seed=seed)


class Ragged:
    """Variable-length id sequences as one flat int32 array plus offsets.

    >>> r = Ragged.from_lists([[5, 6], [7]])
    >>> r.padded(np.array([1, 0])).tolist()
    [[7, 0], [5, 6]]
    """

    def __init__(self, flat: np.ndarray, lengths: np.ndarray):
        self.flat = flat  # (total,) int32
        self.lengths = lengths  # (N,) int64
        self.offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)  # (N,)

    @classmethod
    def from_lists(cls, rows: Sequence[Sequence[int]]) -> Ragged:
        lengths = np.fromiter((len(row) for row in rows), dtype=np.int64, count=len(rows))
        flat = np.fromiter((i for row in rows for i in row), dtype=np.int32, count=int(lengths.sum()))
        return cls(flat, lengths)

    def select(self, keep: np.ndarray) -> Ragged:
        """The rows at indices `keep`, as a new Ragged."""
        lengths = self.lengths[keep]
        positions = _positions(self.offsets[keep], lengths)
        return Ragged(self.flat[positions], lengths)

    def padded(self, rows: np.ndarray, prefix: int | None = None, suffix: int | None = None) -> np.ndarray:
        """(len(rows), max_len [+1]) int64 matrix of rows, PAD_ID-filled; optional bos prefix or eos suffix."""
        lengths = self.lengths[rows]  # (B,)
        extra = int(prefix is not None or suffix is not None)
        width = int(lengths.max()) + extra
        out = np.full((len(rows), width), PAD_ID, dtype=np.int64)  # (B, W)
        start = 1 if prefix is not None else 0
        columns = np.arange(width - extra)  # (W',)
        inside = columns[None, :] < lengths[:, None]  # (B, W')
        source = self.offsets[rows][:, None] + columns[None, :]  # (B, W')
        out[:, start:start + width - extra][inside] = self.flat[source[inside]]
        if prefix is not None:
            out[:, 0] = prefix
        if suffix is not None:
            out[np.arange(len(rows)), lengths] = suffix
        return out


def _positions(offsets: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Flat indices of every element of the rows starting at `offsets` with `lengths`."""
    total = int(lengths.sum())
    starts = np.repeat(offsets - np.concatenate([[0], np.cumsum(lengths)[:-1]]), lengths)  # (total,)
    return starts + np.arange(total)


@dataclass
class EncodedPairs:
    """Both sides as piece ids; `index` maps each kept pair back to its position in the input."""

    src: Ragged
    tgt: Ragged
    index: np.ndarray  # (N,) int64 positions of the kept pairs in the encoded list

    def __len__(self) -> int:
        return len(self.index)


def encode_pairs(tokenizer: PairsTokenizer, sources: Sequence[str], targets: Sequence[str],
                 max_len: int | None = None) -> EncodedPairs:
    """Encode both sides; drop pairs with an empty side or a side longer than `max_len` pieces."""
    src = Ragged.from_lists(tokenizer.source.encode(list(sources)))
    tgt = Ragged.from_lists(tokenizer.target.encode(list(targets)))
    keep = (src.lengths > 0) & (tgt.lengths > 0)
    if max_len is not None:
        keep &= (src.lengths <= max_len) & (tgt.lengths <= max_len)
    index = np.flatnonzero(keep)
    return EncodedPairs(src.select(index), tgt.select(index), index)


def target_piece_counts(pairs: EncodedPairs, vocab_size: int) -> torch.Tensor:
    """How often each piece is a decoder target (`tgt_out`: the pieces plus one eos per pair), (V,)."""
    counts = np.bincount(pairs.tgt.flat, minlength=vocab_size)[:vocab_size].astype(np.int64)  # (V,)
    counts[EOS_ID] += len(pairs)
    return torch.from_numpy(counts)


def token_batches(src_lengths: np.ndarray, tgt_lengths: np.ndarray, max_tokens: int, rng: np.random.Generator,
                  bucket_size: int | None = None, max_sentences: int = 1024) -> list[np.ndarray]:
    """Index batches of similar lengths whose padded size stays within `max_tokens`.

    Pairs are shuffled, cut into buckets of `bucket_size` (None: one bucket, the whole set, as
    fairseq does), sorted within each bucket by source length then target length (a stable sort,
    so equal lengths stay shuffled), and cut greedily so that rows x (longest source + longest
    target + 1) <= max_tokens; the batch order is shuffled. Every pair lands in exactly one
    batch (a pair alone over the budget gets a batch of its own). The cut is computed per batch
    with one cumulative cost vector, not per pair. On fra.txt with 4,000-token batches, 97-98%
    of the padded tokens are real with one bucket, 89% with buckets of 4,096.
    """
    order = rng.permutation(len(src_lengths))
    batches: list[np.ndarray] = []
    bucket_size = bucket_size or max(len(order), 1)
    for start in range(0, len(order), bucket_size):
        bucket = order[start:start + bucket_size]
        bucket = bucket[np.lexsort((tgt_lengths[bucket], src_lengths[bucket]))]  # by source, then target length
        batches.extend(_cut(bucket, src_lengths[bucket], tgt_lengths[bucket] + 1, max_tokens, max_sentences))
    return [batches[i] for i in rng.permutation(len(batches))]


def _cut(bucket: np.ndarray, src: np.ndarray, tgt: np.ndarray, max_tokens: int,
         max_sentences: int) -> Iterator[np.ndarray]:
    """Greedy cut of a length-sorted bucket into batches of at most `max_tokens` padded tokens."""
    i = 0
    while i < len(bucket):
        window_src = np.maximum.accumulate(src[i:i + max_sentences])  # (W,) padded source width so far
        window_tgt = np.maximum.accumulate(tgt[i:i + max_sentences])  # (W,)
        cost = np.arange(1, len(window_src) + 1) * (window_src + window_tgt)  # (W,) padded tokens
        size = max(int(np.searchsorted(cost, max_tokens, side="right")), 1)
        yield bucket[i:i + size]
        i += size


def make_batch(pairs: EncodedPairs, rows: np.ndarray) -> dict[str, Any]:
    """The padded tensors of the pairs at `rows` (keys in the module docstring)."""
    src = pairs.src.padded(rows)  # (B, S)
    tgt_in = pairs.tgt.padded(rows, prefix=BOS_ID)  # (B, T)
    tgt_out = pairs.tgt.padded(rows, suffix=EOS_ID)  # (B, T)
    n_tokens = int(pairs.src.lengths[rows].sum() + pairs.tgt.lengths[rows].sum() + len(rows))
    return {"src": torch.from_numpy(src), "tgt_in": torch.from_numpy(tgt_in), "tgt_out": torch.from_numpy(tgt_out),
            "n_tokens": n_tokens}


class PairsData:
    """The trainer's data module over encoded training (and optional validation) pairs."""

    def __init__(self, train: EncodedPairs, valid: EncodedPairs | None, max_tokens: int, seed: int,
                 bucket_size: int | None = None):
        self.train = train
        self.valid = valid
        self.max_tokens = max_tokens  # padded source + target tokens per batch, >= 1
        self.seed = seed
        self.bucket_size = bucket_size

    def _batches(self, epoch: int) -> list[np.ndarray]:
        rng = np.random.default_rng([self.seed, epoch])
        return token_batches(self.train.src.lengths, self.train.tgt.lengths, self.max_tokens, rng, self.bucket_size)

    def train_dataloader(self, epoch: int, rank: int = 0, world_size: int = 1) -> RowBatches:
        """This rank's batches of `epoch`, the same for the same seed and epoch."""
        batches = self._batches(epoch)
        usable = len(batches) - len(batches) % world_size if len(batches) >= world_size else len(batches)
        return RowBatches(batches[rank:usable:world_size], functools.partial(make_batch, self.train))

    def steps_per_epoch(self, world_size: int = 1) -> int:
        return max(len(self._batches(0)) // world_size, 1)

    def val_dataloader(self) -> RowBatches | None:
        if self.valid is None or len(self.valid) == 0:
            return None
        rng = np.random.default_rng(self.seed)
        return RowBatches(token_batches(self.valid.src.lengths, self.valid.tgt.lengths, self.max_tokens, rng,
                                        self.bucket_size), functools.partial(make_batch, self.valid))

    def state_dict(self) -> dict[str, Any]:
        return {"train_pairs": len(self.train), "max_tokens": self.max_tokens, "seed": self.seed}


__all__ = ["Pairs", "read_pairs", "split_indices", "PairsTokenizer", "Ragged", "EncodedPairs", "encode_pairs",
           "target_piece_counts",
           "token_batches", "make_batch", "PairsData"]
