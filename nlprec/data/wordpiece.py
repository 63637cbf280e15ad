"""BERT's WordPiece tokenizer (Wu et al. 2016; Devlin et al. 2019) through the `tokenizers`
library, with the interface of nlprec.data.tokenize.SentencePieceTokenizer.

Published BERT checkpoints ship their vocabulary as `vocab.txt` (one piece a line, the line
number its id) with `tokenizer_config.json` saying whether text is lower-cased and stripped of
accents, or as a `tokenizers` `tokenizer.json`. `from_checkpoint` reads either, building from
vocab.txt what transformers' fast BERT tokenizer builds: BertNormalizer (clean text, CJK
characters split, lower-casing and accent stripping as configured), BertPreTokenizer
(whitespace and punctuation), WordPiece with "##" continuations and "[UNK]" for words over 100
characters or without pieces. A model folder keeps it as `tokenizer.json`, which `load` reads;
any model a tokenizer.json holds works (an exported nlprec sentencepiece model is a Unigram).

Special pieces ([PAD], [UNK], [CLS], [SEP], [MASK]) are looked up by name; `encode` never
adds them (PretrainedBert adds [CLS] and [SEP]), and a literal "[MASK]" in a text encodes as
the mask piece, as in transformers.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from nlprec.errors import NlprecError
from nlprec.io import atomic_write, read_json

if TYPE_CHECKING:
    import tokenizers

SPECIAL_NAMES = {"pad": "[PAD]", "unk": "[UNK]", "cls": "[CLS]", "sep": "[SEP]", "mask": "[MASK]"}


def _tokenizers() -> Any:
    """The `tokenizers` module, or an actionable error (it comes with the `bert` extra)."""
    try:
        import tokenizers
    except ImportError:
        raise NlprecError("WordPiece tokenizers need the `tokenizers` package: pip install 'nlprec[bert]'") from None
    return tokenizers


class WordPieceTokenizer:
    """Subword tokenizer over a `tokenizers.Tokenizer` (WordPiece for BERT checkpoints)."""

    def __init__(self, tokenizer: tokenizers.Tokenizer, specials: dict[str, str] | None = None,
                 where: str = "tokenizer") -> None:
        self._tok = tokenizer
        self._tok.no_padding()
        self._tok.no_truncation()
        names = {**SPECIAL_NAMES, **(specials or {})}
        ids = {role: tokenizer.token_to_id(piece) for role, piece in names.items()}
        missing = [names[role] for role in ("cls", "sep", "mask", "pad") if ids[role] is None]
        if missing:
            raise NlprecError(f"{where}: the vocabulary has no {', '.join(missing)} piece; a BERT vocabulary needs "
                              f"{', '.join(SPECIAL_NAMES.values())}")
        self.specials = names  # role -> piece, as written into tokenizer.json's companion config
        self._ids = ids

    # ----- reading and writing -----
    @classmethod
    def load(cls, path: str | os.PathLike) -> WordPieceTokenizer:
        """A tokenizer.json written by `save` (or by the tokenizers library)."""
        path = Path(path)
        tokenizers = _tokenizers()
        if not path.is_file():
            raise NlprecError(f"{path}: no such tokenizer file")
        try:
            tokenizer = tokenizers.Tokenizer.from_file(str(path))
        except Exception as err:  # the Rust side raises its own Exception type for any bad file
            raise NlprecError(f"{path}: not a tokenizers tokenizer.json ({' '.join(str(err).split())[:160]})") from None
        return cls(tokenizer, _specials_of(tokenizer), str(path))

    @classmethod
    def from_checkpoint(cls, folder: str | os.PathLike) -> WordPieceTokenizer:
        """The tokenizer of a transformers checkpoint folder: its tokenizer.json, else vocab.txt
        with the lower-casing and accent stripping of its tokenizer_config.json."""
        folder = Path(folder)
        settings = _read_tokenizer_config(folder)
        specials = {role: str(settings[f"{role}_token"]) for role in SPECIAL_NAMES
                    if isinstance(settings.get(f"{role}_token"), str)}
        if (folder / "tokenizer.json").is_file():
            tokenizer = cls.load(folder / "tokenizer.json")._tok
            return cls(tokenizer, specials, str(folder / "tokenizer.json"))
        if not (folder / "vocab.txt").is_file():
            raise NlprecError(f"{folder}: no vocabulary (neither tokenizer.json nor vocab.txt); a BERT checkpoint "
                              "needs one of them")
        return cls(_from_vocab_txt(folder / "vocab.txt", settings, specials), specials, str(folder / "vocab.txt"))

    def save(self, path: str | os.PathLike) -> None:
        """Write the tokenizer as a tokenizers-library tokenizer.json (atomically), with the
        [CLS] $A [SEP] post-processor that transformers' AutoTokenizer applies."""
        self.with_bert_template()
        with atomic_write(path, "w", encoding="utf-8") as handle:
            handle.write(self._tok.to_str(pretty=True))

    def with_bert_template(self) -> WordPieceTokenizer:
        """Set the post-processor to BERT's [CLS] A [SEP] (B [SEP]) template."""
        processors = _tokenizers().processors
        cls, sep = self.specials["cls"], self.specials["sep"]
        self._tok.post_processor = processors.TemplateProcessing(
            single=f"{cls}:0 $A:0 {sep}:0", pair=f"{cls}:0 $A:0 {sep}:0 $B:1 {sep}:1",
            special_tokens=[(cls, self.cls_id), (sep, self.sep_id)])
        return self

    # ----- the SentencePieceTokenizer interface -----
    def encode(self, texts: Sequence[str], add_bos: bool = False, add_eos: bool = False) -> list[list[int]]:
        """Piece ids of each text (no [CLS]/[SEP]), in one batched call; add_bos/add_eos put
        [CLS] before and [SEP] after, as sentencepiece's bos/eos."""
        if isinstance(texts, str):
            raise TypeError("encode takes a list of texts; wrap a single text in a list")
        rows = [encoding.ids for encoding in self._tok.encode_batch_fast(list(texts), add_special_tokens=False)]
        if add_bos or add_eos:
            rows = [[self.cls_id] * add_bos + row + [self.sep_id] * add_eos for row in rows]
        return rows

    def decode(self, ids: Sequence[Sequence[int]]) -> list[str]:
        """The text of each id sequence; special pieces decode to nothing."""
        size = self.vocab_size
        if any(not 0 <= int(i) < size for row in ids for i in row):
            raise NlprecError(f"a piece id is out of range; expected 0 <= id < {size}")
        return self._tok.decode_batch([list(map(int, row)) for row in ids], skip_special_tokens=True)

    def tokenize(self, text: str) -> list[str]:
        """The pieces of one text, e.g. ["the", "cat", "##s"]."""
        return self._tok.encode(text, add_special_tokens=False).tokens

    def piece_to_id(self, piece: str) -> int:
        """Id of `piece`; `unk_id` when the vocabulary lacks it."""
        found = self._tok.token_to_id(piece)
        return self.unk_id if found is None else found

    def id_to_piece(self, piece_id: int) -> str:
        """The piece with id `piece_id`."""
        piece = self._tok.id_to_token(int(piece_id))
        if piece is None:
            raise NlprecError(f"piece id {piece_id} is out of range; expected 0 <= id < {self.vocab_size}")
        return piece

    @property
    def vocab_size(self) -> int:
        """Number of pieces, special ones included."""
        return self._tok.get_vocab_size(with_added_tokens=True)

    @property
    def pad_id(self) -> int:
        return self._ids["pad"]

    @property
    def unk_id(self) -> int:
        return -1 if self._ids["unk"] is None else self._ids["unk"]

    @property
    def bos_id(self) -> int:
        return self.cls_id

    @property
    def eos_id(self) -> int:
        return self.sep_id

    @property
    def cls_id(self) -> int:
        return self._ids["cls"]

    @property
    def sep_id(self) -> int:
        return self._ids["sep"]

    @property
    def mask_id(self) -> int:
        return self._ids["mask"]

    @property
    def special_ids(self) -> list[int]:
        """Ids of the special pieces (the named ones and every special added token)."""
        named = {i for i in self._ids.values() if i is not None}
        added = {i for i, token in self._tok.get_added_tokens_decoder().items() if token.special}
        return sorted(named | added)

    @property
    def backend(self) -> tokenizers.Tokenizer:
        """The underlying tokenizers.Tokenizer."""
        return self._tok


def _read_tokenizer_config(folder: Path) -> dict[str, Any]:
    """tokenizer_config.json merged over special_tokens_map.json (either may be absent)."""
    settings: dict[str, Any] = {}
    for name in ("special_tokens_map.json", "tokenizer_config.json"):
        path = folder / name
        if not path.is_file():
            continue
        for key, entry in read_json(path, dict).items():  # special tokens may be {"content": "[CLS]", ...}
            settings[key] = entry["content"] if isinstance(entry, dict) and "content" in entry else entry
    return settings


def _from_vocab_txt(path: Path, settings: dict[str, Any], specials: dict[str, str]) -> tokenizers.Tokenizer:
    """transformers' fast BERT tokenizer over a vocab.txt, configured by tokenizer_config.json."""
    tokenizers = _tokenizers()
    try:
        pieces = path.read_text(encoding="utf-8").split("\n")
    except (OSError, UnicodeDecodeError) as err:
        raise NlprecError(f"{path}: not a readable UTF-8 vocabulary ({err})") from None
    if pieces and pieces[-1] == "":
        pieces.pop()
    vocab: dict[str, int] = {}
    for index, piece in enumerate(pieces):
        vocab[piece.rstrip("\r")] = index  # a repeated line keeps its last id, as transformers' load_vocab
    names = {**SPECIAL_NAMES, **specials}
    if names["unk"] not in vocab:
        raise NlprecError(f"{path}: no {names['unk']} piece; a BERT vocabulary needs {', '.join(names.values())}")
    lowercase = settings.get("do_lower_case", True)
    strip_accents = settings.get("strip_accents")
    chinese = settings.get("tokenize_chinese_chars", True)
    for key, value in (("do_lower_case", lowercase), ("tokenize_chinese_chars", chinese)):
        if not isinstance(value, bool):
            raise NlprecError(f"{path.parent / 'tokenizer_config.json'}: {key} must be true or false, got {value!r}")
    if strip_accents is not None and not isinstance(strip_accents, bool):
        raise NlprecError(f"{path.parent / 'tokenizer_config.json'}: strip_accents must be true, false or null, "
                          f"got {strip_accents!r}")
    tokenizer = tokenizers.Tokenizer(tokenizers.models.WordPiece(vocab, unk_token=names["unk"]))
    tokenizer.normalizer = tokenizers.normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=chinese, strip_accents=strip_accents, lowercase=lowercase)
    tokenizer.pre_tokenizer = tokenizers.pre_tokenizers.BertPreTokenizer()
    tokenizer.decoder = tokenizers.decoders.WordPiece(prefix="##")
    tokenizer.add_special_tokens([piece for piece in names.values() if piece in vocab])
    return tokenizer


def _specials_of(tokenizer: tokenizers.Tokenizer) -> dict[str, str]:
    """Special pieces by role for a tokenizer.json: the BERT names, or sentencepiece's for an
    exported nlprec model ("<pad>", "<unk>"), whichever the vocabulary holds."""
    found = {}
    for role, piece in SPECIAL_NAMES.items():
        alternatives = [piece, {"pad": "<pad>", "unk": "<unk>"}.get(role, piece)]
        found[role] = next((p for p in alternatives if tokenizer.token_to_id(p) is not None), piece)
    return found


__all__ = ["WordPieceTokenizer", "SPECIAL_NAMES"]
