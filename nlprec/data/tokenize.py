"""Tokenizers: a regular-expression word splitter with a fast whole-file path, and sentencepiece.

Files are read as bytes in blocks of whole lines and split on "\\n" only. Python's
`str.splitlines()` also breaks on U+0085, U+2028 and others, which real corpora contain inside
sentences (imdb reviews, rt-polarity snippets), so it is never used here. Gzip files (by their
magic bytes) are read transparently; undecodable bytes raise an `NlprecError` naming the file,
line and byte offset.
"""

from __future__ import annotations

import codecs
import gzip
import io
import os
import re
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Iterable, Iterator, Literal, NamedTuple, Sequence

import numpy as np

from nlprec.errors import NlprecError
from nlprec.io import atomic_write

if TYPE_CHECKING:  # sentencepiece loads with the first SentencePieceTokenizer (word2vec never needs it)
    import sentencepiece as spm

CHUNK_BYTES = 8 << 20  # default block: same speed as 32 MB, about half the peak memory


@dataclass(frozen=True)
class RegexTokenizer:
    """Tokens are the matches of one regular expression, after optional lower-casing.

    The default keeps runs of ASCII letters, digits and apostrophes, so "Don't stop, 2 cats!"
    gives ["don't", "stop", "2", "cats"] and accented letters split words ("café" -> "caf");
    pass a pattern such as r"[^\\W_]+(?:'[^\\W_]+)*" for Unicode words.
    """

    pattern: str = r"[a-z0-9']+"  # one token; must not match "\n", no capturing groups
    lowercase: bool = True  # lower-case text before matching

    def __post_init__(self) -> None:
        try:
            regex = re.compile(self.pattern)
            # Newlines become tokens of their own, marking where each line ends in a whole chunk.
            chunk_regex = re.compile(f"(?:{self.pattern})|\n")
        except re.error as err:
            raise NlprecError(f"tokenizer pattern {self.pattern!r} is not a valid regular expression: {err}") from None
        if regex.groups:
            raise NlprecError(f"tokenizer pattern {self.pattern!r} has capturing groups; write them as (?:...)")
        if any("\n" in match for match in regex.findall("\n a\nb 0\n' \n")):
            raise NlprecError(f"tokenizer pattern {self.pattern!r} matches a newline; lines must end at '\\n'")
        object.__setattr__(self, "_regex", regex)
        object.__setattr__(self, "_chunk_regex", chunk_regex)

    def tokenize(self, text: str) -> list[str]:
        """The tokens of `text`, in order."""
        return self._regex.findall(text.lower() if self.lowercase else text)

    def tokenize_lines(self, text: str) -> list[str]:
        """The tokens of `text` with each "\\n" kept as a token: one regex pass over many lines."""
        return self._chunk_regex.findall(text.lower() if self.lowercase else text)


class TokenChunk(NamedTuple):
    """The tokens of a block of whole lines and where each line ends."""

    tokens: np.ndarray  # (n_tokens,) object array of str, lines concatenated, no newlines
    line_lengths: np.ndarray  # (n_lines,) int64 tokens per line; 0 for a line without tokens


def token_chunk(text: str, tokenizer: RegexTokenizer) -> TokenChunk:
    """The tokens of `text` (whole lines, ending in "\n") and each line's token count."""
    tokens = np.array(tokenizer.tokenize_lines(text), dtype=object)  # (n_tokens + n_lines,)
    is_newline = tokens == "\n"
    line_ends = np.flatnonzero(is_newline)  # (n_lines,) index of each line's "\n"
    line_lengths = np.diff(line_ends, prepend=-1).astype(np.int64) - 1
    return TokenChunk(tokens[~is_newline], line_lengths)


def iter_lines(
    path: str | os.PathLike,
    encoding: str = "utf-8",
    column: int | None = None,
    maxsplit: int = -1,
    delimiter: str = "\t",
) -> Iterator[str]:
    """Each line of a file (or one column of it) without its "\\n"; arguments as in `iter_text_chunks`."""
    for text in iter_text_chunks(path, CHUNK_BYTES, encoding, column, maxsplit, delimiter):
        yield from text.split("\n")[:-1]


def iter_text_chunks(
    path: str | os.PathLike,
    chunk_bytes: int = CHUNK_BYTES,
    encoding: str = "utf-8",
    column: int | None = None,
    maxsplit: int = -1,
    delimiter: str = "\t",
) -> Iterator[str]:
    """Decoded text of a file (gzip or plain) in blocks of whole lines, each ending in "\\n".

    encoding: any encoding that writes "\\n" as the byte 0x0a ("utf-8", "latin-1", "cp1252").
    column: keep only field `column` (0-based) of each line split on `delimiter`, at most
        `maxsplit` times as in `str.split`; label<TAB>text files where the text may itself hold
        a TAB (imdb) take `column=1, maxsplit=1`. None keeps whole lines.
    A last line without "\\n" is still a line.
    """
    path = Path(path)
    check_encoding(encoding)
    for block in iter_raw_blocks(path, chunk_bytes):
        yield block_text(block, path, encoding, column, maxsplit, delimiter)


class RawBlock(NamedTuple):
    """Undecoded bytes of whole lines and where they sit in the file (for error messages)."""

    data: bytes
    offset: int  # bytes before the block
    line_no: int  # lines before the block
    unit: str  # "byte", or "uncompressed byte" in a gzip file


def iter_raw_blocks(path: str | os.PathLike, chunk_bytes: int = CHUNK_BYTES) -> Iterator[RawBlock]:
    """A file (gzip or plain) in undecoded blocks of about `chunk_bytes` of whole lines."""
    path = Path(path)
    offset, line_no = 0, 0  # bytes and lines before the current block
    with _open_bytes(path) as handle:
        unit = "uncompressed byte" if isinstance(handle, gzip.GzipFile) else "byte"
        while block := _read_block(handle, path, chunk_bytes, offset):
            yield RawBlock(block, offset, line_no, unit)
            offset += len(block)
            line_no += block.count(b"\n")


def block_text(block: RawBlock, path: Path, encoding: str = "utf-8", column: int | None = None,
               maxsplit: int = -1, delimiter: str = "\t") -> str:
    """The decoded text of `block` (of `path`), ending in "\n"; arguments as in `iter_text_chunks`."""
    text = _decode(block.data, path, encoding, block.unit, block.offset, block.line_no)
    text = text if text.endswith("\n") else text + "\n"
    return text if column is None else _select_column(text, path, block.line_no, column, maxsplit, delimiter)


def check_encoding(encoding: str) -> None:
    """Reject unknown encodings and those (UTF-16, UTF-32) where "\\n" is not the byte 0x0a."""
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise NlprecError(f"unknown encoding {encoding!r}; expected e.g. 'utf-8' or 'latin-1'") from None
    if "\n".encode(encoding) != b"\n":
        raise NlprecError(f"encoding {encoding!r} is not ASCII-compatible; expected e.g. 'utf-8' or 'latin-1'")


def _open_bytes(path: Path) -> IO[bytes]:
    """Open `path` for binary reading, gunzipping it when it starts with the gzip magic bytes."""
    try:
        with open(path, "rb") as probe:
            magic = probe.read(2)
    except OSError as err:
        raise NlprecError(f"{path}: cannot open ({err.strerror or err})") from None
    return gzip.open(path, "rb") if magic == b"\x1f\x8b" else open(path, "rb")


def _read_block(handle: IO[bytes], path: Path, chunk_bytes: int, offset: int) -> bytes:
    """About `chunk_bytes` bytes, extended to the end of the line they stop in."""
    try:
        block = handle.read(chunk_bytes)
        return block if block.endswith(b"\n") or not block else block + handle.readline()
    except (OSError, EOFError, zlib.error) as err:
        raise NlprecError(f"{path}: unreadable after byte {offset} ({' '.join(str(err).split())})") from None


def _decode(block: bytes, path: Path, encoding: str, unit: str, offset: int, line_no: int) -> str:
    """Decode `block`, naming the line and the byte (`unit` at `offset` starts the block) that fails."""
    try:
        return block.decode(encoding)
    except UnicodeDecodeError as err:
        line = line_no + block.count(b"\n", 0, err.start) + 1
        bad = block[err.start : err.start + 4]
        raise NlprecError(
            f"{path}: line {line} ({unit} {offset + err.start}) is not valid {encoding}: {bad!r}; "
            f"pass encoding='latin-1' if the file is single-byte encoded"
        ) from None


def _select_column(text: str, path: Path, first_line: int, column: int, maxsplit: int, delimiter: str) -> str:
    """Keep field `column` of each line of `text` (lines end in "\\n")."""
    lines = text.split("\n")[:-1]
    try:
        return "\n".join([line.split(delimiter, maxsplit)[column] for line in lines]) + "\n"
    except IndexError:
        bad = next(i for i, line in enumerate(lines) if len(line.split(delimiter, maxsplit)) <= column)
        raise NlprecError(
            f"{path}: line {first_line + bad + 1} has no column {column}; expected at least {column + 1} "
            f"{delimiter!r}-separated fields"
        ) from None


def _nonempty_lines(sources: Iterable[Iterable[str]], errors: list[NlprecError]) -> Iterator[str]:
    """Lines with some non-space text from each source in turn; an `NlprecError` is also kept in `errors`."""
    try:
        for source in sources:
            yield from (line for line in source if line.strip())
    except NlprecError as err:
        errors.append(err)
        raise


# Special ids of every model trained here; user symbols follow from 4 in the order given.
PAD_ID, UNK_ID, BOS_ID, EOS_ID = 0, 1, 2, 3
PAD_PIECE, UNK_PIECE, BOS_PIECE, EOS_PIECE = "<pad>", "<unk>", "<s>", "</s>"


class SentencePieceTokenizer:
    """Subword tokenizer over a sentencepiece model (Kudo and Richardson 2018), unigram LM or BPE.

    Models trained by `train` have fixed special ids: pad 0 "<pad>", unk 1 "<unk>", bos 2 "<s>",
    eos 3 "</s>", then `user_symbols` from id 4 in the order given (e.g. "[MASK]", "[CLS]"),
    then the learned pieces. Models loaded from elsewhere report their own ids through the
    `pad_id`, `unk_id`, `bos_id` and `eos_id` properties (-1 when the model has none).
    """

    def __init__(self, processor: spm.SentencePieceProcessor) -> None:
        self._sp = processor

    @classmethod
    def train(
        cls,
        model_path: str | os.PathLike,
        vocab_size: int,
        *,
        paths: Sequence[str | os.PathLike] = (),
        sentences: Iterable[str] = (),
        encoding: str = "utf-8",
        model_type: Literal["unigram", "bpe"] = "unigram",
        character_coverage: float = 1.0,
        user_symbols: Sequence[str] = (),
        seed: int = 0,
        max_sentences: int = 1_000_000,
        num_threads: int = 1,
    ) -> SentencePieceTokenizer:
        """Train on the lines of `paths` (read with `encoding`) and then `sentences`; write `model_path`.

        vocab_size: pieces in the model, special and user symbols included; must be reachable
            from the data (sentencepiece says the maximum when it is not).
        character_coverage: share of characters kept as pieces, in (0, 1]; 0.9995 suits CJK.
        max_sentences: sentences sampled (with `seed`) when the input has more.
        num_threads: training threads; 1 makes runs repeat exactly.
        The model is written atomically; for a column of a TSV pass
        `sentences=iter_lines(path, column=1, maxsplit=1)`.
        """
        if not 0 < character_coverage <= 1:
            raise NlprecError(f"character_coverage={character_coverage}; expected a value in (0, 1]")
        sources = [*(iter_lines(p, encoding) for p in paths), sentences]
        reader_errors: list[NlprecError] = []  # sentencepiece turns errors raised while reading into RuntimeError
        buffer = io.BytesIO()
        import sentencepiece as spm

        spm.set_random_generator_seed(seed)
        try:
            spm.SentencePieceTrainer.train(
                sentence_iterator=_nonempty_lines(sources, reader_errors),
                model_writer=buffer,
                vocab_size=vocab_size,
                model_type=model_type,
                character_coverage=character_coverage,
                user_defined_symbols=list(user_symbols),
                pad_id=PAD_ID, unk_id=UNK_ID, bos_id=BOS_ID, eos_id=EOS_ID,
                pad_piece=PAD_PIECE, unk_piece=UNK_PIECE, bos_piece=BOS_PIECE, eos_piece=EOS_PIECE,
                input_sentence_size=max_sentences,
                shuffle_input_sentence=True,
                num_threads=num_threads,
                minloglevel=2,
            )
        except RuntimeError as err:
            if reader_errors:
                raise reader_errors[0] from None
            reason = "no non-empty input lines" if "sentences_.empty()" in str(err) else " ".join(str(err).split())
            raise NlprecError(f"sentencepiece training for {model_path} failed: {reason}") from None
        with atomic_write(model_path) as out:
            out.write(buffer.getvalue())
        return cls(spm.SentencePieceProcessor(model_proto=buffer.getvalue()))

    @classmethod
    def load(cls, path: str | os.PathLike) -> SentencePieceTokenizer:
        """Load a `.model` file written by `train` or by sentencepiece itself."""
        if not Path(path).is_file():
            raise NlprecError(f"{path}: no such sentencepiece model file")
        import sentencepiece as spm

        try:
            processor = spm.SentencePieceProcessor(model_file=str(path))
        except RuntimeError as err:
            raise NlprecError(f"{path}: not a sentencepiece model ({' '.join(str(err).split())})") from None
        try:  # every piece must be text: a damaged file can hold bytes that are not UTF-8
            processor.id_to_piece(list(range(processor.get_piece_size())))
        except UnicodeDecodeError:
            raise NlprecError(f"{path}: not a readable sentencepiece model (a piece is not valid UTF-8: the file "
                              "is damaged)") from None
        return cls(processor)

    def encode(self, texts: Sequence[str], add_bos: bool = False, add_eos: bool = False) -> list[list[int]]:
        """Piece ids of each text, in one batched call."""
        if isinstance(texts, str):
            raise TypeError("encode takes a list of texts; wrap a single text in a list")
        return self._sp.encode(list(texts), out_type=int, add_bos=add_bos, add_eos=add_eos)

    def decode(self, ids: Sequence[Sequence[int]]) -> list[str]:
        """The text of each id sequence; special ids (pad, bos, eos) decode to nothing."""
        try:
            return self._sp.decode([list(row) for row in ids])
        except IndexError:
            raise NlprecError(f"a piece id is out of range; expected 0 <= id < {self.vocab_size}") from None

    def tokenize(self, text: str) -> list[str]:
        """The pieces of one text, e.g. ["▁the", "▁cat", "s"]."""
        return self._sp.encode(text, out_type=str)

    def piece_to_id(self, piece: str) -> int:
        """Id of `piece`; `unk_id` when the model lacks it."""
        return self._sp.piece_to_id(piece)

    def id_to_piece(self, piece_id: int) -> str:
        """The piece with id `piece_id`."""
        return self._sp.id_to_piece(piece_id)

    @property
    def vocab_size(self) -> int:
        """Number of pieces, special symbols included."""
        return self._sp.get_piece_size()

    @property
    def pad_id(self) -> int:
        """Padding id (0 for models trained here)."""
        return self._sp.pad_id()

    @property
    def unk_id(self) -> int:
        """Unknown-piece id (1 for models trained here)."""
        return self._sp.unk_id()

    @property
    def bos_id(self) -> int:
        """Begin-of-sentence id (2 for models trained here)."""
        return self._sp.bos_id()

    @property
    def eos_id(self) -> int:
        """End-of-sentence id (3 for models trained here)."""
        return self._sp.eos_id()
