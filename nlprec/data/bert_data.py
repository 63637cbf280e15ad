"""BERT pretraining data: corpus readers, the tokenizer, examples, masking and batches.

Devlin et al. 2019, "BERT: Pre-training of Deep Bidirectional Transformers for Language
Understanding", section 3.1 and appendix A.2, as its `create_pretraining_data.py` builds them.

Corpus formats (`read_documents`; gzip is read transparently, lines split on "\\n" only):
    sentences  one sentence per line, a blank line between documents (BERT's own convention)
    documents  one document per line (a review, a ticket), split into sentences by
               `split_sentences`: a sentence ends at ".", "!" or "?" (optionally followed by one
               closing quote or bracket) when whitespace follows, and at an HTML line break
               `<br />` (IMDb's paragraphs); "Mr. Smith" therefore splits after "Mr."
    wikitext   WikiText's ` = Heading = ` lines start a new document, ` = = Sub = = ` lines are
               dropped, every other line is a paragraph split into sentences as above
    auto       wikitext when a top-level heading line occurs, sentences when a blank line
               separates text lines, documents otherwise

Pieces: a sentencepiece model trained on the corpus with pad 0 ("<pad>", the [PAD] of BERT),
unk 1, bos 2 and eos 3 (reserved, unused), then [CLS] 4, [SEP] 5, [MASK] 6, then the learned
pieces from FIRST_PIECE = 7. A literal "[MASK]" in a text encodes as the mask piece (how
fill-mask inputs are written); in training text the reserved pieces become unk.

An example is [CLS] A [SEP] B [SEP] (segment 0 up to the first [SEP], 1 after), or [CLS] A [SEP]
without next-sentence prediction. A and B are contiguous runs of token ids in one flat array, so
an example is four integers and a batch is built by one fancy-indexing assignment.

Batch keys:
    input_ids     (B, T) int64  pieces after masking, padding id 0
    segment_ids   (B, T) int64  0 for [CLS] A [SEP], 1 for B [SEP], 0 at padding
    mlm_positions (M,)   int64  masked positions as flat indices into the (B, T) grid, row-major
    mlm_labels    (M,)   int64  the original pieces there
    nsp_labels    (B,)   int64  0: B follows A in the document, 1: B is from another document
                                (absent without next-sentence prediction)
    n_tokens      int           non-padding tokens (the trainer's throughput unit)
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Literal, Sequence

import numpy as np
import torch

from nlprec.data.tokenize import PAD_ID, UNK_ID, SentencePieceTokenizer, iter_lines
from nlprec.errors import NlprecError
from nlprec.io import atomic_write, sha256_file

CorpusFormat = Literal["auto", "sentences", "documents", "wikitext"]
CLS_PIECE, SEP_PIECE, MASK_PIECE = "[CLS]", "[SEP]", "[MASK]"
CLS_ID, SEP_ID, MASK_ID = 4, 5, 6
TOKENIZER_FILE = "spm.model"  # the sentencepiece model in a BERT folder and in a fine-tuned classifier's
FIRST_PIECE = 7  # first learned piece; ids below are special (unk included: never a random replacement)
IS_NEXT, NOT_NEXT = 0, 1

_SENTENCE_BREAK = re.compile(r"(?:(?<=[.!?])|(?<=[.!?][\"')\]]))\s+|\s*<br\s*/?>\s*", re.IGNORECASE)
_WIKI_HEADING = re.compile(r"^= [^=](?:.*[^=])? =$")
_WIKI_SUBHEADING = re.compile(r"^= =.*= =$")


# ----- reading ---------------------------------------------------------------------------------
@dataclass
class Documents:
    """Sentences of a corpus, grouped into documents."""

    sentences: list[str]  # every sentence, in corpus order
    doc_sizes: np.ndarray  # (n_docs,) int64 sentences per document, each >= 1
    sha256: str  # checksum of the file's bytes
    path: str  # where they came from
    format: str  # the format read (auto resolved)

    def __len__(self) -> int:
        return len(self.doc_sizes)

    def select(self, docs: np.ndarray) -> Documents:
        """The documents at indices `docs` (sorted), as a new Documents."""
        starts = np.concatenate([[0], np.cumsum(self.doc_sizes)[:-1]])
        sentences = [self.sentences[s] for d in docs for s in range(starts[d], starts[d] + self.doc_sizes[d])]
        return Documents(sentences, self.doc_sizes[docs], self.sha256, self.path, self.format)


def split_sentences(text: str) -> list[str]:
    """Sentences of one document by the rule in the module docstring.

    >>> split_sentences('It was "great." Then? No!<br /><br />Mr. Bip (sic.) left')
    ['It was "great."', 'Then?', 'No!', 'Mr.', 'Bip (sic.)', 'left']
    """
    return [part for part in _SENTENCE_BREAK.split(text.strip()) if part and not part.isspace()]


def read_documents(path: str | Path, format: CorpusFormat = "auto", encoding: str = "utf-8",
                   column: int | None = None) -> Documents:
    """Read a corpus file into documents of sentences (formats in the module docstring).

    column: keep only this TAB-separated field of each line (0-based; the last field kept holds
    any later TABs: label<TAB>text files such as IMDb's take column=1). An empty result raises an `NlprecError`.
    """
    path = Path(path)
    lines = [line.rstrip("\r") for line in iter_lines(path, encoding, column, column if column is not None else -1)]
    chosen = _detect_format(lines) if format == "auto" else format
    reader = {"sentences": _sentence_lines, "documents": _document_lines, "wikitext": _wikitext_lines}.get(chosen)
    if reader is None:
        raise NlprecError(f"--format must be auto, sentences, documents or wikitext; got {format!r}")
    documents = [doc for doc in reader(lines) if doc]
    if not documents:
        raise NlprecError(f"{path}: no text; expected a corpus with at least one non-empty line")
    sizes = np.array([len(doc) for doc in documents], dtype=np.int64)
    return Documents([s for doc in documents for s in doc], sizes, sha256_file(path), str(path), chosen)


def _detect_format(lines: list[str]) -> str:
    stripped = [line.strip() for line in lines]
    if any(_WIKI_HEADING.match(line) for line in stripped):
        return "wikitext"
    seen_text, blank_after_text = False, False
    for line in stripped:
        if line and blank_after_text:
            return "sentences"
        blank_after_text = blank_after_text or (seen_text and not line)
        seen_text = seen_text or bool(line)
    return "documents"


def _sentence_lines(lines: list[str]) -> Iterator[list[str]]:
    doc: list[str] = []
    for line in lines:
        if line.strip():
            doc.append(line.strip())
        elif doc:
            yield doc
            doc = []
    yield doc


def _document_lines(lines: list[str]) -> Iterator[list[str]]:
    return (split_sentences(line) for line in lines)


def _wikitext_lines(lines: list[str]) -> Iterator[list[str]]:
    doc: list[str] = []
    for line in lines:
        text = line.strip()
        if _WIKI_HEADING.match(text):
            yield doc
            doc = []
        elif text and not _WIKI_SUBHEADING.match(text):
            doc.extend(split_sentences(text))
    yield doc


# ----- pieces ----------------------------------------------------------------------------------
def train_tokenizer(path: str | Path, documents: Documents, vocab_size: int, seed: int) -> SentencePieceTokenizer:
    """Sentencepiece on the corpus sentences with the reserved pieces; written to `path`.

    A `vocab_size` larger than a small corpus supports is lowered to the maximum sentencepiece
    reports (the tokenizer's `vocab_size` says what was used).
    """
    def train(size: int) -> SentencePieceTokenizer:
        return SentencePieceTokenizer.train(path, size, sentences=documents.sentences, seed=seed,
                                            user_symbols=[CLS_PIECE, SEP_PIECE, MASK_PIECE])
    try:
        tokenizer = train(vocab_size)
    except NlprecError as err:
        most = re.search(r"Please set it to a value <= (\d+)", str(err))
        if most is None:
            raise
        tokenizer = train(int(most.group(1)))
    check_tokenizer(tokenizer, str(path))
    return tokenizer


def check_tokenizer(tokenizer: SentencePieceTokenizer, where: str) -> None:
    """The reserved ids this module relies on must be where it expects them."""
    expected = {PAD_ID: "<pad>", CLS_ID: CLS_PIECE, SEP_ID: SEP_PIECE, MASK_ID: MASK_PIECE}
    if tokenizer.vocab_size <= FIRST_PIECE or any(tokenizer.id_to_piece(i) != p for i, p in expected.items()):
        raise NlprecError(f"{where}: not a BERT sentencepiece model (expected <pad>=0, [CLS]=4, [SEP]=5, [MASK]=6)")


@dataclass
class EncodedDocuments:
    """Piece ids of every sentence in one flat array, grouped into documents."""

    tokens: np.ndarray  # (n_tokens,) int32, sentences concatenated
    sentence_starts: np.ndarray  # (n_sentences + 1,) int64 offsets into tokens
    doc_starts: np.ndarray  # (n_docs + 1,) int64 offsets into the sentences

    @property
    def n_docs(self) -> int:
        return len(self.doc_starts) - 1


def encode_documents(tokenizer: SentencePieceTokenizer, documents: Documents, block: int = 20000) -> EncodedDocuments:
    """Encode in blocks of sentences; empty sentences and then empty documents are dropped."""
    flats, lengths = [], []
    for start in range(0, len(documents.sentences), block):
        rows = tokenizer.encode(documents.sentences[start:start + block])
        lengths.append(np.fromiter(map(len, rows), dtype=np.int64, count=len(rows)))
        flats.append(np.fromiter((i for row in rows for i in row), dtype=np.int32, count=int(lengths[-1].sum())))
    tokens = np.concatenate(flats) if flats else np.zeros(0, dtype=np.int32)
    tokens[(tokens >= 2) & (tokens < FIRST_PIECE)] = UNK_ID  # literal "[CLS]" etc. in the text
    sentence_lengths = np.concatenate(lengths)
    sentence_doc = np.repeat(np.arange(len(documents.doc_sizes)), documents.doc_sizes)
    keep = sentence_lengths > 0
    doc_sizes = np.bincount(sentence_doc[keep], minlength=len(documents.doc_sizes))
    doc_sizes = doc_sizes[doc_sizes > 0]
    return EncodedDocuments(tokens, np.concatenate([[0], np.cumsum(sentence_lengths[keep])]),
                            np.concatenate([[0], np.cumsum(doc_sizes)]))


# ----- examples --------------------------------------------------------------------------------
@dataclass
class Examples:
    """[CLS] A [SEP] (B [SEP]) examples as token ranges of `EncodedDocuments`."""

    a_start: np.ndarray  # (N,) int64 offset of A in corpus.tokens
    a_len: np.ndarray  # (N,) int64 pieces in A, >= 1
    b_start: np.ndarray  # (N,) int64 offset of B (0 when there is no B)
    b_len: np.ndarray  # (N,) int64 pieces in B (0: no B, no second [SEP])
    nsp_labels: np.ndarray  # (N,) int64 IS_NEXT or NOT_NEXT (IS_NEXT without B)

    def __len__(self) -> int:
        return len(self.a_start)

    @property
    def lengths(self) -> np.ndarray:
        """(N,) pieces of each example with [CLS] and [SEP]s."""
        return self.a_len + self.b_len + 2 + (self.b_len > 0)


def create_examples(corpus: EncodedDocuments, max_len: int, rng: np.random.Generator, next_sentence: bool = True,
                    short_seq_prob: float = 0.1) -> Examples:
    """BERT's `create_instances_from_document` over every document, in corpus order.

    Sentences are packed into a chunk until it reaches the target length (max_len minus the
    special pieces; with probability `short_seq_prob` a random shorter target, once per
    document); A is the chunk's first 1..n-1 sentences. With next-sentence prediction, B is the
    rest of the chunk half of the time (IS_NEXT), otherwise a run of sentences from a random
    start in another document, filling the remaining target (NOT_NEXT), and the chunk's unused
    sentences go back to the document. A one-sentence chunk (short targets, long sentences) is
    where BERT always draws a random B, which skews NSP towards NOT_NEXT (61% on short
    sentences) and makes short examples a label cue; here its B is the sentences that follow it
    instead. Putting sentences back still over-produces NOT_NEXT (a chunk's unused part yields a
    further example: 58% NOT_NEXT on short sentences), so the larger class is then subsampled at
    random to the size of the smaller: exactly half the examples are IS_NEXT. Pairs over the limit are trimmed from the longer side,
    front or back at random as BERT does per token (the front share drawn as a binomial). The
    loop runs per chunk, on sentence lengths only; tokens are never touched here.
    """
    if next_sentence and corpus.n_docs < 2:
        raise NlprecError("next-sentence prediction needs at least two documents; the corpus has one "
                          "(pass --no-nsp to pretrain with masked LM only)")
    limit = max_len - (3 if next_sentence else 2)
    starts, docs = corpus.sentence_starts, corpus.doc_starts
    rows: list[tuple[int, int, int, int, int]] = []
    for doc in range(corpus.n_docs):
        first, end = int(docs[doc]), int(docs[doc + 1])
        target = limit if rng.random() >= short_seq_prob else int(rng.integers(2, limit + 1))
        chunk_start, i = first, first
        while i < end:
            if i == end - 1 or starts[i + 1] - starts[chunk_start] >= target:
                n = i - chunk_start + 1
                a_sentences = int(rng.integers(1, n)) if n >= 2 and next_sentence else n
                a0, a1 = int(starts[chunk_start]), int(starts[chunk_start + a_sentences])
                if not next_sentence:
                    rows.append((a0, min(a1 - a0, limit), 0, 0, IS_NEXT))
                elif rng.random() < 0.5 or (n == 1 and i == end - 1):
                    b0, b1 = _following(corpus, *_random_start(corpus, doc, rng), max(target - (a1 - a0), 1))
                    rows.append(_trimmed(a0, a1, b0, b1, limit, NOT_NEXT, rng))
                    i -= n - a_sentences  # the unused sentences start the next chunk
                elif n == 1:  # one sentence: B is what follows it in the document
                    b0, b1 = _following(corpus, i + 1, end, max(target - (a1 - a0), 1))
                    rows.append(_trimmed(a0, a1, b0, b1, limit, IS_NEXT, rng))
                    i = int(np.searchsorted(starts, b1)) - 1  # the last sentence B took
                else:
                    rows.append(_trimmed(a0, a1, a1, int(starts[i + 1]), limit, IS_NEXT, rng))
                chunk_start = i + 1
            i += 1
    table = np.array(rows, dtype=np.int64).reshape(-1, 5)
    if next_sentence:
        table = _balanced(table, rng)
    return Examples(*(np.ascontiguousarray(table[:, k]) for k in range(5)))


def _balanced(table: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Drop random examples of the larger NSP class until both have as many (order kept)."""
    labels = table[:, 4]
    majority = NOT_NEXT if (labels == NOT_NEXT).sum() > (labels == IS_NEXT).sum() else IS_NEXT
    extra = int((labels == majority).sum() - (labels != majority).sum())
    drop = rng.choice(np.flatnonzero(labels == majority), extra, replace=False)
    return np.delete(table, drop, axis=0)


def _random_start(corpus: EncodedDocuments, doc: int, rng: np.random.Generator) -> tuple[int, int]:
    """A random sentence of a random document other than `doc`, and that document's end (sentence indices)."""
    other = int(rng.integers(corpus.n_docs - 1))
    other += other >= doc
    first, end = int(corpus.doc_starts[other]), int(corpus.doc_starts[other + 1])
    return int(rng.integers(first, end)), end


def _following(corpus: EncodedDocuments, start: int, end: int, target: int) -> tuple[int, int]:
    """Token range of sentences start, start + 1, ... (before `end`) until `target` pieces are reached."""
    offsets = corpus.sentence_starts[start + 1:end + 1] - corpus.sentence_starts[start]  # (k,) cumulative lengths
    stop = start + 1 + min(int(np.searchsorted(offsets, target)), len(offsets) - 1)
    return int(corpus.sentence_starts[start]), int(corpus.sentence_starts[stop])


def _trimmed(a0: int, a1: int, b0: int, b1: int, limit: int, label: int, rng: np.random.Generator
             ) -> tuple[int, int, int, int, int]:
    """Trim the longer of A and B one piece at a time until both fit in `limit` (BERT's truncate_seq_pair)."""
    la, lb = a1 - a0, b1 - b0
    excess = la + lb - limit
    if excess > 0:
        if abs(la - lb) >= excess:  # only the longer side is trimmed
            new_la, new_lb = (la - excess, lb) if la >= lb else (la, lb - excess)
        else:  # both end at about half (the longer side, A on ties, keeps the odd piece)
            half = limit // 2
            new_la, new_lb = (limit - half, half) if la >= lb else (half, limit - half)
        a0 += int(rng.binomial(la - new_la, 0.5))
        b0 += int(rng.binomial(lb - new_lb, 0.5))
        la, lb = new_la, new_lb
    return a0, la, b0, lb, label


# ----- batches and masking ----------------------------------------------------------------------
def assemble(corpus: EncodedDocuments, examples: Examples, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Padded input ids and segment ids (B, T) of the examples at `rows`, T their longest length."""
    a0, la = examples.a_start[rows, None], examples.a_len[rows, None]  # (B, 1)
    b0, lb = examples.b_start[rows, None], examples.b_len[rows, None]  # (B, 1)
    total = la + lb + 2 + (lb > 0)  # (B, 1)
    cols = np.arange(int(total.max()))[None, :]  # (1, T)
    ids = np.full((len(rows), cols.shape[1]), PAD_ID, dtype=np.int64)  # (B, T)
    in_a = (cols >= 1) & (cols <= la)  # (B, T)
    in_b = (cols >= la + 2) & (cols < la + 2 + lb)  # (B, T)
    ids[in_a] = corpus.tokens[np.broadcast_to(a0 + cols - 1, ids.shape)[in_a]]
    ids[in_b] = corpus.tokens[np.broadcast_to(b0 + cols - la - 2, ids.shape)[in_b]]
    ids[:, 0] = CLS_ID
    ids[(cols == la + 1) | ((cols == total - 1) & (lb > 0))] = SEP_ID
    segments = ((cols >= la + 2) & (cols < total)).astype(np.int64)  # (B, T)
    return ids, segments


@dataclass(frozen=True)
class Masking:
    """BERT's masked-LM corruption (section 3.1, appendix A.1)."""

    vocab_size: int  # pieces in the tokenizer; random replacements come from [FIRST_PIECE, vocab_size)
    mask_prob: float = 0.15  # share of the non-special positions predicted, in (0, 1)
    max_predictions: int = 20  # most predicted positions per example, >= 1
    mask_share: float = 0.8  # of those, replaced by [MASK]
    random_share: float = 0.1  # replaced by a random learned piece (the rest stay unchanged)

    def apply(self, ids: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Corrupt `ids` (B, T): returns (inputs (B, T), flat positions (M,), labels (M,)).

        Per row, round(mask_prob x non-special positions) positions, clipped to [1, max_predictions],
        are drawn uniformly without replacement among the non-special ones ([CLS], [SEP], padding
        and the other reserved ids are never chosen); positions come out row-major and sorted.
        """
        candidate = (ids >= FIRST_PIECE) | (ids == UNK_ID)  # (B, T)
        n_real = candidate.sum(axis=1)  # (B,)
        n_pick = np.minimum(np.clip(np.rint(self.mask_prob * n_real), 1, self.max_predictions), n_real)  # (B,)
        scores = np.where(candidate, rng.random(ids.shape), 2.0)  # (B, T): non-candidates sort last
        width = min(self.max_predictions, ids.shape[1])
        picked = np.argsort(scores, axis=1, kind="stable")[:, :width]  # (B, width) columns
        chosen = np.zeros(ids.shape, dtype=bool)  # (B, T)
        use = np.arange(width)[None, :] < n_pick[:, None]  # (B, width)
        chosen[np.nonzero(use)[0], picked[use]] = True
        positions = np.flatnonzero(chosen)  # (M,) row-major, sorted
        labels = ids.reshape(-1)[positions]  # (M,)
        action = rng.random(len(positions))  # (M,)
        replaced = labels.copy()
        replaced[action < self.mask_share] = MASK_ID
        randomised = (action >= self.mask_share) & (action < self.mask_share + self.random_share)
        replaced[randomised] = rng.integers(FIRST_PIECE, self.vocab_size, int(randomised.sum()))
        inputs = ids.copy()
        inputs.reshape(-1)[positions] = replaced
        return inputs, positions, labels


@dataclass
class StaticMasks:
    """Masks drawn once per example: `count[i]` positions (columns) and their corrupted inputs."""

    offsets: np.ndarray  # (N + 1,) int64 into cols/inputs
    cols: np.ndarray  # (total,) int64 column of each masked position within its example
    inputs: np.ndarray  # (total,) int64 the corrupted piece placed there

    @classmethod
    def draw(cls, corpus: EncodedDocuments, examples: Examples, masking: Masking, seed: int,
             block: int = 4096) -> StaticMasks:
        """Mask every example once, in example order, in blocks of rows (the same for the same seed)."""
        rng = np.random.default_rng(seed)
        counts, cols, inputs = [], [], []
        for start in range(0, len(examples), block):
            rows = np.arange(start, min(start + block, len(examples)))
            ids, _ = assemble(corpus, examples, rows)
            masked, positions, _ = masking.apply(ids, rng)
            row_of, col_of = np.divmod(positions, ids.shape[1])
            counts.append(np.bincount(row_of, minlength=len(rows)))
            cols.append(col_of)
            inputs.append(masked.reshape(-1)[positions])
        concat = (lambda parts: np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64))
        return cls(np.concatenate([[0], np.cumsum(concat(counts))]).astype(np.int64), concat(cols), concat(inputs))

    def apply(self, ids: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The stored corruption of examples `rows` on their assembled `ids` (B, T): as `Masking.apply`."""
        counts = self.offsets[rows + 1] - self.offsets[rows]  # (B,)
        index = np.repeat(self.offsets[rows] - np.concatenate([[0], np.cumsum(counts)[:-1]]), counts)
        index += np.arange(int(counts.sum()))  # (M,) into cols/inputs
        positions = np.repeat(np.arange(len(rows)) * ids.shape[1], counts) + self.cols[index]  # (M,)
        labels = ids.reshape(-1)[positions]
        inputs = ids.copy()
        inputs.reshape(-1)[positions] = self.inputs[index]
        return inputs, positions, labels


def make_batch(corpus: EncodedDocuments, examples: Examples, rows: np.ndarray, next_sentence: bool,
               masking: Masking | None = None, rng: np.random.Generator | None = None,
               static: StaticMasks | None = None) -> dict[str, Any]:
    """The batch of examples `rows` (keys in the module docstring), masked dynamically with
    `masking` and `rng` or by the stored `static` masks."""
    ids, segments = assemble(corpus, examples, rows)
    inputs, positions, labels = static.apply(ids, rows) if static is not None else masking.apply(ids, rng)
    batch = {"input_ids": torch.from_numpy(inputs), "segment_ids": torch.from_numpy(segments),
             "mlm_positions": torch.from_numpy(positions), "mlm_labels": torch.from_numpy(labels),
             "n_tokens": int((ids != PAD_ID).sum())}
    if next_sentence:
        batch["nsp_labels"] = torch.from_numpy(examples.nsp_labels[rows])
    return batch


def length_batches(lengths: np.ndarray, batch_size: int, rng: np.random.Generator,
                   bucket_batches: int = 50) -> list[np.ndarray]:
    """Shuffled index batches of `batch_size` examples of similar lengths (less padding).

    Examples are shuffled, cut into buckets of `bucket_batches` batches, sorted by length within
    each bucket (stable: equal lengths stay shuffled) and cut into batches; the batch order is
    shuffled. Every example lands in exactly one batch.
    """
    order = rng.permutation(len(lengths))
    batches: list[np.ndarray] = []
    span = batch_size * bucket_batches
    for start in range(0, len(order), span):
        bucket = order[start:start + span]
        bucket = bucket[np.argsort(lengths[bucket], kind="stable")]
        batches.extend(bucket[i:i + batch_size] for i in range(0, len(bucket), batch_size))
    return [batches[i] for i in rng.permutation(len(batches))]


class PretrainingData:
    """The trainer's data module: length-bucketed batches, masked anew each epoch (dynamic) from
    the seed, or with masks drawn once (`static_masking`)."""

    def __init__(self, corpus: EncodedDocuments, examples: Examples, masking: Masking, batch_size: int, seed: int,
                 next_sentence: bool = True, static_masking: bool = False, bucket_batches: int = 50):
        if bucket_batches < 1:
            raise ValueError(f"bucket_batches must be >= 1, got {bucket_batches}")
        self.bucket_batches = bucket_batches  # batches per length-sorted bucket; 1: random batches, no sorting
        self.corpus = corpus
        self.examples = examples
        self.masking = masking
        self.batch_size = batch_size  # examples per batch, >= 1
        self.seed = seed
        self.next_sentence = next_sentence
        self.static = StaticMasks.draw(corpus, examples, masking, seed) if static_masking else None

    def _batches(self, epoch: int) -> list[np.ndarray]:
        return length_batches(self.examples.lengths, self.batch_size, np.random.default_rng([self.seed, epoch]),
                              self.bucket_batches)

    def train_dataloader(self, epoch: int, rank: int = 0, world_size: int = 1) -> Batches:
        """This rank's batches of `epoch`: the same for the same seed and epoch (masks included)."""
        batches = self._batches(epoch)
        usable = len(batches) - len(batches) % world_size if len(batches) >= world_size else len(batches)
        return Batches(self, batches[rank:usable:world_size], seed=(self.seed, epoch, rank))

    def steps_per_epoch(self, world_size: int = 1) -> int:
        return max(len(self._batches(0)) // world_size, 1)

    def state_dict(self) -> dict[str, Any]:
        return {"examples": len(self.examples), "batch_size": self.batch_size, "seed": self.seed,
                "bucket_batches": self.bucket_batches,
                "masking": dataclasses.asdict(self.masking), "static_masking": self.static is not None}


class Batches:
    """A sized, re-iterable sequence of batches; batch i's masks come from rng(seed..., i)."""

    def __init__(self, data: PretrainingData, rows: list[np.ndarray], seed: tuple[int, ...]):
        self.data = data
        self.rows = rows
        self.seed = seed

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        data = self.data
        for index, rows in enumerate(self.rows):
            rng = np.random.default_rng([*self.seed, index])
            yield make_batch(data.corpus, data.examples, rows, data.next_sentence, data.masking, rng, data.static)


def fixed_batches(corpus: EncodedDocuments, examples: Examples, masking: Masking, seed: int, batch_size: int,
                  next_sentence: bool) -> list[dict[str, Any]]:
    """Held-out batches masked once with `seed`, in example order sorted by length: the same
    batches for the same data and seed, whatever model scores them."""
    static = StaticMasks.draw(corpus, examples, masking, seed)
    order = np.argsort(examples.lengths, kind="stable")
    return [make_batch(corpus, examples, order[i:i + batch_size], next_sentence, static=static)
            for i in range(0, len(order), batch_size)]


def save_batches(path: str | Path, batches: Sequence[dict[str, Any]]) -> None:
    """Write batches to one .npz (plain arrays, no pickle), atomically."""
    arrays = {f"{i}/{key}": (value.numpy() if isinstance(value, torch.Tensor) else np.asarray(value))
              for i, batch in enumerate(batches) for key, value in batch.items()}
    with atomic_write(path) as handle:
        np.savez(handle, **arrays)


def load_batches(path: str | Path) -> list[dict[str, Any]]:
    """Read what `save_batches` wrote."""
    with np.load(path, allow_pickle=False) as archive:
        grouped: dict[int, dict[str, Any]] = {}
        for name in archive.files:
            index, key = name.split("/", 1)
            value = archive[name]
            grouped.setdefault(int(index), {})[key] = int(value) if key == "n_tokens" else torch.from_numpy(value)
    return [grouped[i] for i in sorted(grouped)]


def split_documents(n_docs: int, fraction: float, minimum: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Sorted (train, held-out) document indices: a seeded `fraction` of the documents (at least
    `minimum`, at most a fifth of them; none when a fifth is below `minimum`).

    >>> [len(part) for part in split_documents(100, 0.05, 2, seed=0)]
    [95, 5]
    """
    held = min(max(minimum, int(round(fraction * n_docs))), n_docs // 5)
    held = held if held >= minimum and fraction > 0 else 0
    order = np.random.default_rng(seed).permutation(n_docs)
    return np.sort(order[held:]), np.sort(order[:held])


__all__ = ["CorpusFormat", "Documents", "split_sentences", "read_documents", "train_tokenizer", "check_tokenizer",
           "EncodedDocuments", "encode_documents", "Examples", "create_examples", "assemble", "Masking", "StaticMasks",
           "make_batch", "length_batches", "PretrainingData", "Batches", "fixed_batches", "save_batches",
           "load_batches", "split_documents", "CLS_ID", "SEP_ID", "MASK_ID", "FIRST_PIECE", "IS_NEXT", "NOT_NEXT"]
