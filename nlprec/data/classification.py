"""Labelled texts for classification: readers, encoding, embedding initialisation and batches.

Readers: a TSV/CSV file with a label column and a text column (`read_table`), or one file per
class (`read_class_files`, as sentiment sets such as rt-polarity come). Lines are split on "\\n"
only (these files hold U+0085, which `str.splitlines` would break on). A line without the text
column, an empty text or an empty label raises an `NlprecError` naming the file and line.

Encoding (`WordEncoder`): the regex tokenizer `nlprec embed train` uses, so vectors and texts
agree; a vocabulary of the training texts (ids: 0 padding, 1 unknown, then words by frequency);
texts become one flat id array plus offsets (`Encoded`), in one regex pass and a few numpy
operations, cut to `max_len` tokens. `embedding_init` fills a matrix from a vectors file
(fastText n-gram models compose words they lack) and draws seeded random rows for the rest.

Batches (`ClassificationData`, the shared trainer's data module): length-bucketed (shuffle,
sort each pool of 50 batches by length, cut, shuffle the batches), padded with numpy gathers.
A batch is {"tokens": (B, T) int64 ids, 0 = padding; "lengths": (B,) int64 >= 1;
"labels": (B,) int64 class ids; "n_examples": B}.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import pandas as pd
import torch

from nlprec.data.batching import RowBatches
from nlprec.data.tokenize import RegexTokenizer, iter_lines
from nlprec.data.vocab import Vocab
from nlprec.errors import NlprecError
from nlprec.io import atomic_write, sha256_file

PAD, UNK = 0, 1  # reserved ids of every WordEncoder; words start at 2 (PAD is also BERT's [PAD])
POOL_BATCHES = 50  # batches sorted by length together (bucketing pool)


@dataclass
class LabelledTexts:
    """Texts with their string labels and where they came from."""

    texts: list[str]  # one text per example, without "\n"
    labels: list[str]  # its label, same length
    source: str  # file name(s), for messages
    sha256: str  # checksum of the input file(s)

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, rows: np.ndarray) -> LabelledTexts:
        """The examples at `rows`, in that order."""
        return LabelledTexts([self.texts[i] for i in rows], [self.labels[i] for i in rows], self.source, self.sha256)


def _column_index(spec: str | int, header: list[str] | None, path: Path, what: str) -> int:
    """A column given by position (0-based int or digits) or by header name."""
    if isinstance(spec, int) or str(spec).isdigit():
        return int(spec)
    if header is None:
        raise NlprecError(f"{path}: {what} {spec!r} is a name but the file is read without a header; "
                          "pass --header or give the column's 0-based position")
    if spec not in header:
        raise NlprecError(f"{path}: no column named {spec!r} for {what}; the header has {', '.join(header)}")
    return header.index(spec)


def read_table(path: str | Path, label_col: str | int = 0, text_col: str | int = 1, header: bool | None = None,
               delimiter: str | None = None, encoding: str = "utf-8") -> LabelledTexts:
    """Read a label column and a text column of a TSV (default) or CSV (`.csv` suffix) file.

    header: whether the first line names the columns; None: yes when a column is given by name.
    A TSV text in the last column used keeps any further TABs (imdb texts hold some); CSV
    fields follow the csv module's quoting, one record per line.
    """
    path = Path(path)
    delimiter = delimiter or ("," if path.suffix.lower() == ".csv" else "\t")
    if header is None:
        header = not all(isinstance(c, int) or str(c).isdigit() for c in (label_col, text_col))
    lines = list(iter_lines(path, encoding))
    start = 1 if header else 0
    names = _split_row(lines[0], delimiter, -1, path, 1) if header and lines else None
    if header and not lines:
        raise NlprecError(f"{path}: empty file; expected a header line")
    label_at = _column_index(label_col, names, path, "--label-col")
    text_at = _column_index(text_col, names, path, "--text-col")
    if label_at == text_at:
        raise NlprecError(f"{path}: --label-col and --text-col are the same column ({label_at})")
    need = max(label_at, text_at)
    maxsplit = need if text_at == need and delimiter == "\t" else -1
    texts, labels = [], []
    for number, line in enumerate(lines[start:], start=start + 1):
        if not line.strip():
            continue  # blank lines (a trailing one, say) are not examples
        fields = _split_row(line, delimiter, maxsplit, path, number)
        if len(fields) <= need:
            sep = "TAB" if delimiter == "\t" else repr(delimiter)
            raise NlprecError(f"{path}: line {number} has {len(fields)} field(s), no column {need}; expected "
                              f"label{sep}text ({sep}-separated, label column {label_at}, text column {text_at})")
        label, text = fields[label_at].strip(), fields[text_at]
        _check_example(path, number, label, text)
        labels.append(label)
        texts.append(text)
    if not texts:
        raise NlprecError(f"{path}: no examples; expected label{'<TAB>' if delimiter == chr(9) else ','}text lines")
    return LabelledTexts(texts, labels, str(path), sha256_file(path))


def _split_row(line: str, delimiter: str, maxsplit: int, path: Path, number: int) -> list[str]:
    """The fields of one line; a CSV line the csv module cannot parse is a one-line error."""
    if delimiter != ",":
        return line.split(delimiter, maxsplit)
    try:
        return next(csv.reader([line]), [])
    except csv.Error as err:
        raise NlprecError(f"{path}: line {number} is not a valid CSV record ({err})") from None


def _check_example(path: Path, number: int, label: str, text: str) -> None:
    if not label:
        raise NlprecError(f"{path}: line {number} has an empty label; expected a class name")
    if not text.strip():
        raise NlprecError(f"{path}: line {number} has an empty text; expected some words after the label")


def parse_class_file(item: str) -> tuple[str, Path]:
    """`LABEL=PATH` (the form of --class-file) -> (label, path)."""
    label, sep, path = item.partition("=")
    if not sep or not label.strip() or not path:
        raise NlprecError(f"--class-file expects LABEL=PATH, got {item!r}")
    return label.strip(), Path(path)


def read_class_files(items: Sequence[tuple[str, str | Path]], encoding: str = "utf-8") -> LabelledTexts:
    """One text per line, one file per class: [(label, path), ...]. Blank lines are skipped."""
    texts, labels, digests = [], [], []
    if len({label for label, _ in items}) != len(items):
        raise NlprecError("--class-file: each label may be given once; merge its files first")
    for label, path in items:
        path = Path(path)
        lines = [line for line in iter_lines(path, encoding) if line.strip()]
        if not lines:
            raise NlprecError(f"{path}: no texts for class {label!r}; expected one text per line")
        texts.extend(lines)
        labels.extend([label] * len(lines))
        digests.append(f"{label}={sha256_file(path)}")
    sha = hashlib.sha256("\n".join(digests).encode("utf-8")).hexdigest()
    return LabelledTexts(texts, labels, ", ".join(str(p) for _, p in items), sha)


def read_labelled(path: str | Path | None = None, class_files: Sequence[str] = (), label_col: str | int = 0,
                  text_col: str | int = 1, header: bool | None = None, delimiter: str | None = None,
                  encoding: str = "utf-8") -> LabelledTexts:
    """A table file or `LABEL=PATH` class files (exactly one of the two), as the CLI takes them."""
    if (path is None) == (not class_files):
        raise NlprecError("give a data file (label<TAB>text lines) or --class-file LABEL=PATH options, not both"
                          if path is not None else "no data: give a file of label<TAB>text lines or --class-file "
                          "LABEL=PATH options")
    if path is not None:
        return read_table(path, label_col, text_col, header, delimiter, encoding)
    return read_class_files([parse_class_file(item) for item in class_files], encoding)


def label_ids(labels: Sequence[str], classes: Sequence[str], source: str) -> np.ndarray:
    """(N,) int64 class ids of `labels`; a label outside `classes` is an error."""
    ids = pd.Index(list(classes), dtype=object).get_indexer(list(labels)).astype(np.int64)
    if (ids < 0).any():
        bad = int(np.flatnonzero(ids < 0)[0])
        raise NlprecError(f"{source}: example {bad + 1} has label {labels[bad]!r}, which the model does not know; "
                          f"its classes are {', '.join(classes)}")
    return ids


def check_classes(labels: Sequence[str], source: str) -> list[str]:
    """The sorted distinct labels; fewer than two is an error."""
    classes = sorted(set(labels))
    if len(classes) < 2:
        raise NlprecError(f"{source}: only one class ({classes[0]!r}) in {len(labels):,} examples; "
                          "a classifier needs at least two")
    return classes


@dataclass
class Encoded:
    """Ragged id sequences: text i is `ids[offsets[i]:offsets[i + 1]]`."""

    ids: np.ndarray  # (total,) int64
    offsets: np.ndarray  # (N + 1,) int64

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)  # (N,)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def subset(self, rows: np.ndarray) -> Encoded:
        """The sequences at `rows`, gathered without a Python loop."""
        rows = np.asarray(rows, np.int64)
        lengths = self.lengths[rows]  # (R,)
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        within = np.arange(offsets[-1]) - np.repeat(offsets[:-1], lengths)  # position inside its text
        return Encoded(self.ids[np.repeat(self.offsets[rows], lengths) + within], offsets)


def tokenize_texts(texts: Sequence[str], tokenizer: RegexTokenizer) -> tuple[np.ndarray, np.ndarray]:
    """(tokens object array, (N,) tokens per text) in one regex pass over the joined texts."""
    if any("\n" in text for text in texts):
        raise NlprecError("a text contains a newline; give one text per line")
    tokens = np.array(tokenizer.tokenize_lines("\n".join(texts) + "\n"), dtype=object)  # (n_tokens + N,)
    is_newline = tokens == "\n"
    ends = np.flatnonzero(is_newline)  # (N,)
    lengths = np.diff(ends, prepend=-1).astype(np.int64) - 1
    return tokens[~is_newline], lengths


class WordEncoder:
    """Texts -> word ids: the regex tokenizer, a vocabulary of the training texts, a length cap.

    This is the encoder interface of `nlprec.tasks.classify`: `kind`, `vocab_size`, `pad_id`,
    `encode(texts) -> Encoded`, `save(folder) -> dict` (writes its files, returns the JSON entry
    kept in the model folder's config.json) and the classmethod `load(entry, folder)`.
    """

    kind = "words"
    pad_id = PAD

    def __init__(self, tokenizer: RegexTokenizer, vocab: Vocab, max_len: int | None):
        self.tokenizer = tokenizer
        self.vocab = vocab
        self.max_len = max_len

    @classmethod
    def fit(cls, texts: Sequence[str], tokenizer: RegexTokenizer, max_len: int | None, min_count: int = 1,
            max_vocab: int | None = None, source: str = "the training texts") -> WordEncoder:
        """Build the vocabulary from `texts` (words seen at least `min_count` times)."""
        tokens, _ = tokenize_texts(texts, tokenizer)
        counts = pd.Series(tokens, dtype=object).value_counts() if len(tokens) else pd.Series(dtype=np.int64)
        return cls(tokenizer, Vocab.from_counts(counts, min_count, max_vocab, source), max_len)

    @property
    def vocab_size(self) -> int:
        return len(self.vocab) + 2

    @property
    def words(self) -> list[str]:
        """Word of each id (the two reserved ids as "<pad>" and "<unk>")."""
        return ["<pad>", "<unk>", *self.vocab.words]

    def encode(self, texts: Sequence[str]) -> Encoded:
        """Ids of each text, unknown words as UNK, the first `max_len` tokens of each."""
        tokens, lengths = tokenize_texts(texts, self.tokenizer)
        ids = self.vocab.encode(tokens) + 2  # (n_tokens,)
        ids[ids < 2] = UNK
        encoded = Encoded(ids, np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64))
        return truncate(encoded, self.max_len)

    def save(self, folder: Path) -> dict[str, Any]:
        """Write the vocabulary to folder/encoder.json; returns the entry for config.json."""
        state = {"words": list(self.vocab.words), "counts": self.vocab.counts.tolist()}
        with atomic_write(Path(folder) / "encoder.json", "w", encoding="utf-8") as handle:
            handle.write(json.dumps(state))
        return {"kind": self.kind, "file": "encoder.json", "pattern": self.tokenizer.pattern,
                "lowercase": self.tokenizer.lowercase, "max_len": self.max_len, "vocab_size": self.vocab_size}

    @classmethod
    def load(cls, entry: dict[str, Any], folder: Path) -> WordEncoder:
        """Read what `save` wrote (plain JSON: no code runs)."""
        path = Path(folder) / entry["file"]
        try:
            state = json.loads(path.read_text(encoding="utf-8"))
            vocab = Vocab(list(state["words"]), np.asarray(state["counts"], np.int64))
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise NlprecError(f"{path}: cannot read the vocabulary ({' '.join(str(err).split())[:200]})") from None
        return cls(RegexTokenizer(entry["pattern"], bool(entry["lowercase"])), vocab, entry["max_len"])


class PieceEncoder:
    """Texts -> [CLS] pieces [SEP] with a pretrained BERT's tokenizer, cut to `max_len`: the
    encoder of `nlprec classify train --model bert` (same interface as WordEncoder). The
    tokenizer is nlprec's sentencepiece model (spm.model) or, for an imported checkpoint, a
    tokenizers tokenizer.json (nlprec.data.wordpiece); either is copied into the classifier folder."""

    kind = "bert-pieces"
    pad_id = PAD

    def __init__(self, tokenizer: Any, model_file: bytes, max_len: int, file_name: str = "spm.model"):
        self.tokenizer = tokenizer  # SentencePieceTokenizer or nlprec.data.wordpiece.WordPieceTokenizer
        self.model_file = model_file  # the tokenizer file's bytes, copied into the classifier folder
        self.max_len = max_len  # pieces per text with [CLS] and [SEP], >= 3
        self.file_name = file_name  # "spm.model" or "tokenizer.json"

    @classmethod
    def from_file(cls, path: Path, max_len: int) -> PieceEncoder:
        from nlprec.data.bert_data import check_tokenizer
        from nlprec.data.tokenize import SentencePieceTokenizer

        if path.suffix == ".json":
            from nlprec.data.wordpiece import WordPieceTokenizer

            tokenizer = WordPieceTokenizer.load(path)
            if tokenizer.pad_id != PAD:
                raise NlprecError(f"{path}: the padding piece has id {tokenizer.pad_id}; fine-tuning needs it at {PAD}")
            return cls(tokenizer, path.read_bytes(), max_len, path.name)
        tokenizer = SentencePieceTokenizer.load(path)
        check_tokenizer(tokenizer, str(path))
        return cls(tokenizer, path.read_bytes(), max_len)

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.vocab_size

    def encode(self, texts: Sequence[str]) -> Encoded:
        """Encoded ids: [CLS], the first max_len - 2 pieces, [SEP] for each text."""
        from nlprec.data.bert_data import CLS_ID, SEP_ID

        cls_id, sep_id = getattr(self.tokenizer, "cls_id", CLS_ID), getattr(self.tokenizer, "sep_id", SEP_ID)
        rows = self.tokenizer.encode(list(texts))
        lengths = np.fromiter((min(len(row), self.max_len - 2) + 2 for row in rows), dtype=np.int64, count=len(rows))
        ids = np.fromiter((i for row in rows for i in (cls_id, *row[:self.max_len - 2], sep_id)), dtype=np.int64,
                          count=int(lengths.sum()))
        return Encoded(ids, np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64))

    def save(self, folder: Path) -> dict[str, Any]:
        """Write the tokenizer file into `folder`; the entry kept in config.json."""
        with atomic_write(Path(folder) / self.file_name) as handle:
            handle.write(self.model_file)
        return {"kind": self.kind, "file": self.file_name, "max_len": self.max_len, "vocab_size": self.vocab_size}

    @classmethod
    def load(cls, entry: dict[str, Any], folder: Path) -> PieceEncoder:
        if entry["file"] not in ("spm.model", "tokenizer.json"):
            raise NlprecError(f"{folder / 'config.json'}: the encoder file must be spm.model or tokenizer.json, got "
                              f"{entry['file']!r}")
        return cls.from_file(Path(folder) / entry["file"], int(entry["max_len"]))


ENCODERS: dict[str, type] = {"words": WordEncoder, "bert-pieces": PieceEncoder}  # by the entry's "kind"


def truncate(encoded: Encoded, max_len: int | None) -> Encoded:
    """Keep the first `max_len` ids of each sequence (vectorised)."""
    if max_len is None or len(encoded) == 0 or encoded.lengths.max() <= max_len:
        return encoded
    lengths = np.minimum(encoded.lengths, max_len)  # (N,)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    within = np.arange(offsets[-1]) - np.repeat(offsets[:-1], lengths)
    return Encoded(encoded.ids[np.repeat(encoded.offsets[:-1], lengths) + within], offsets)


def pad_rows(encoded: Encoded, rows: np.ndarray, pad_id: int = PAD) -> tuple[torch.Tensor, torch.Tensor]:
    """(tokens (R, T), lengths (R,)) of the sequences at `rows`; T = longest, at least 1."""
    lengths = encoded.lengths[rows]  # (R,)
    width = max(int(lengths.max(initial=0)), 1)
    positions = encoded.offsets[rows][:, None] + np.arange(width)[None, :]  # (R, T)
    valid = np.arange(width)[None, :] < lengths[:, None]  # (R, T)
    source = encoded.ids if len(encoded.ids) else np.array([pad_id], np.int64)
    tokens = np.where(valid, source[np.minimum(positions, len(source) - 1)], pad_id)  # (R, T)
    return torch.from_numpy(np.ascontiguousarray(tokens, dtype=np.int64)), torch.from_numpy(np.maximum(lengths, 1))


def stratified_split(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train rows, validation rows): about `fraction` of each class held out, seeded, at least one
    per class when a class has two or more examples."""
    rng = np.random.default_rng(seed)
    held = []
    for label in np.unique(labels):
        rows = rng.permutation(np.flatnonzero(labels == label))
        n = int(round(fraction * len(rows)))
        held.append(rows[:max(n, 1) if len(rows) > 1 and fraction > 0 else n])
    valid = np.sort(np.concatenate(held))
    train = np.setdiff1d(np.arange(len(labels)), valid)
    return train, valid


def embedding_init(words: Sequence[str], vectors: Any, seed: int) -> tuple[np.ndarray, dict[str, int]]:
    """(V, dim) float32 rows for `words` from `vectors` plus how many were found, composed, random.

    Row 0 (padding) is zero. Words the vectors have take their row; a fastText model composes
    others from their character n-grams; the rest (and "<unk>") draw uniform rows with the
    variance of the pretrained ones (Kim 2014, section 3.1), seeded.
    """
    words = list(words)
    index = pd.Index(vectors.keys, dtype=object).get_indexer(words)  # (V,)
    index[:2] = -1
    rng = np.random.default_rng(seed)
    scale = float(np.sqrt(3.0 * np.asarray(vectors.matrix, np.float64).var())) or 0.25
    matrix = rng.uniform(-scale, scale, (len(words), vectors.dim)).astype(np.float32)  # (V, dim)
    found = index >= 0
    matrix[found] = vectors.matrix[index[found]]
    composed = 0
    if hasattr(vectors, "spec") and vectors.spec.enabled:
        from nlprec.data.subwords import ngram_buckets

        missing = np.flatnonzero(~found)
        missing = missing[missing >= 2]  # not the padding and unknown rows
        if len(missing):
            counts = np.diff(ngram_buckets([words[i] for i in missing], vectors.spec)[0])
            composable = missing[counts > 0]
            if len(composable):
                matrix[composable] = vectors.vectors_for([words[i] for i in composable])
                composed = len(composable)
    matrix[PAD] = 0.0
    n_words = len(words) - 2
    n_found = int(found[2:].sum())
    return matrix, {"words": n_words, "found": n_found, "composed": composed,
                    "random": n_words - n_found - composed}


class ClassificationData:
    """Encoded texts and labels as length-bucketed batches for the shared trainer."""

    def __init__(self, encoded: Encoded, labels: np.ndarray, batch_size: int, seed: int,
                 valid: tuple[Encoded, np.ndarray] | None = None, pad_id: int = PAD):
        self.encoded = encoded
        self.labels = np.asarray(labels, np.int64)
        self.batch_size = batch_size
        self.seed = seed
        self.valid = valid
        self.pad_id = pad_id

    def batch(self, rows: np.ndarray, encoded: Encoded | None = None, labels: np.ndarray | None = None
              ) -> dict[str, Any]:
        encoded = self.encoded if encoded is None else encoded
        labels = self.labels if labels is None else labels
        tokens, lengths = pad_rows(encoded, rows, self.pad_id)
        return {"tokens": tokens, "lengths": lengths, "labels": torch.from_numpy(labels[rows]),
                "n_examples": len(rows)}

    def _epoch_batches(self, epoch: int) -> list[np.ndarray]:
        rng = np.random.default_rng([self.seed, epoch])
        order = rng.permutation(len(self.labels))
        lengths = self.encoded.lengths
        pool = self.batch_size * POOL_BATCHES
        batches = []
        for start in range(0, len(order), pool):  # one sort per pool of batches, not per example
            chunk = order[start:start + pool]
            chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
            batches.extend(np.array_split(chunk, math.ceil(len(chunk) / self.batch_size)))
        return [batches[i] for i in rng.permutation(len(batches))]

    def train_dataloader(self, epoch: int = 0, rank: int = 0, world_size: int = 1) -> RowBatches:
        batches = self._epoch_batches(epoch)
        per_rank = len(batches) // world_size if world_size > 1 else len(batches)
        return RowBatches(batches[rank::world_size][:per_rank], self.batch)

    def steps_per_epoch(self, world_size: int = 1) -> int:
        batches = sum(math.ceil(min(self.batch_size * POOL_BATCHES, len(self.labels) - start) / self.batch_size)
                      for start in range(0, len(self.labels), self.batch_size * POOL_BATCHES))
        return batches // world_size if world_size > 1 else batches

    def val_dataloader(self) -> Iterator[dict[str, Any]] | None:
        if self.valid is None or len(self.valid[1]) == 0:
            return None
        encoded, labels = self.valid
        batches = sorted_batches(encoded.lengths, 4 * self.batch_size)
        return iter([self.batch(rows, encoded, labels) for rows in batches])

    def state_dict(self) -> dict[str, Any]:
        return {"seed": self.seed, "batch_size": self.batch_size, "n_train": len(self.labels)}


def sorted_batches(lengths: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """Rows in length order cut into batches (inference: little padding, order restored by the caller)."""
    order = np.argsort(lengths, kind="stable")
    return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]


__all__ = ["LabelledTexts", "read_table", "read_class_files", "parse_class_file", "read_labelled", "label_ids",
           "check_classes",
           "Encoded", "WordEncoder", "tokenize_texts", "truncate", "pad_rows", "stratified_split",
           "embedding_init", "ClassificationData", "sorted_batches", "PAD", "UNK"]
