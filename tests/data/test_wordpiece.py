"""The WordPiece tokenizer of imported BERT checkpoints (nlprec.data.wordpiece): vocab.txt with
tokenizer_config.json's lower-casing and accent stripping, tokenizer.json round trips, the
SentencePieceTokenizer interface, and bad vocabularies as one-line errors."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("tokenizers", reason="WordPiece runs on the tokenizers library (bert extra)")

from nlprec.data.wordpiece import WordPieceTokenizer  # noqa: E402
from nlprec.errors import NlprecError  # noqa: E402

PIECES = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cafe", "café", "caf", "##e", "##é", "film", "##s",
          "good", "Good", ".", ",", "!"]


def checkpoint(tmp_path, **settings):
    (tmp_path / "vocab.txt").write_text("\n".join(PIECES) + "\n", encoding="utf-8")
    if settings:
        (tmp_path / "tokenizer_config.json").write_text(json.dumps(settings), encoding="utf-8")
    return WordPieceTokenizer.from_checkpoint(tmp_path)


def test_vocab_txt_lower_cases_and_strips_accents_as_configured(tmp_path):
    uncased = checkpoint(tmp_path)  # BERT's defaults: lower-case, and accents stripped with it
    assert uncased.tokenize("Good Café films!") == ["good", "cafe", "film", "##s", "!"]
    cased = checkpoint(tmp_path, do_lower_case=False, strip_accents=False)
    assert cased.tokenize("Good café films!") == ["Good", "café", "film", "##s", "!"]
    kept = checkpoint(tmp_path, do_lower_case=True, strip_accents=False)
    assert kept.tokenize("Café") == ["café"]


def test_interface_matches_the_sentencepiece_tokenizer(tmp_path):
    tokenizer = checkpoint(tmp_path)
    ids = tokenizer.encode(["the films", "good [MASK] ."])
    assert ids == [[5, 11, 12], [13, 4, 15]]  # a literal [MASK] is the mask piece
    assert tokenizer.encode(["the"], add_bos=True, add_eos=True) == [[2, 5, 3]]
    assert (tokenizer.cls_id, tokenizer.sep_id, tokenizer.mask_id, tokenizer.pad_id, tokenizer.unk_id) == (2, 3, 4, 0, 1)
    assert tokenizer.vocab_size == len(PIECES) and tokenizer.special_ids == [0, 1, 2, 3, 4]
    assert tokenizer.decode([[2, 5, 11, 12, 3]]) == ["the films"]
    assert tokenizer.piece_to_id("zebra") == 1 and tokenizer.id_to_piece(6) == "cafe"
    assert tokenizer.encode(["zebra"]) == [[1]]
    with pytest.raises(TypeError):
        tokenizer.encode("not a list")
    with pytest.raises(NlprecError, match="out of range"):
        tokenizer.decode([[999]])


def test_tokenizer_json_round_trip(tmp_path):
    tokenizer = checkpoint(tmp_path, do_lower_case=False)
    tokenizer.save(tmp_path / "out.json")
    again = WordPieceTokenizer.load(tmp_path / "out.json")
    texts = ["Good café films, the cafe!", "good [MASK] ."]
    assert again.encode(texts) == tokenizer.encode(texts)
    assert again.backend.encode("the").ids == [2, 5, 3]  # the [CLS] A [SEP] template for AutoTokenizer


def test_bad_vocabularies_are_one_line_errors(tmp_path):
    with pytest.raises(NlprecError, match="no vocabulary"):
        WordPieceTokenizer.from_checkpoint(tmp_path)
    (tmp_path / "vocab.txt").write_text("[PAD]\n[UNK]\nthe\n", encoding="utf-8")
    with pytest.raises(NlprecError, match=r"no \[CLS\], \[SEP\], \[MASK\] piece"):
        WordPieceTokenizer.from_checkpoint(tmp_path)
    (tmp_path / "tokenizer_config.json").write_text('{"do_lower_case": "yes"}', encoding="utf-8")
    with pytest.raises(NlprecError, match="do_lower_case must be true or false"):
        WordPieceTokenizer.from_checkpoint(tmp_path)
    (tmp_path / "tokenizer.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(NlprecError, match="not a tokenizers tokenizer.json"):
        WordPieceTokenizer.load(tmp_path / "tokenizer.json")
