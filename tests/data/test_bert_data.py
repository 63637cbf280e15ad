"""BERT data: corpus formats, examples (segments, NSP), masking rules and rates, batches."""

from __future__ import annotations

import gzip

import numpy as np
import pytest
import torch

from nlprec.data.bert_data import (CLS_ID, FIRST_PIECE, IS_NEXT, MASK_ID, NOT_NEXT, SEP_ID, EncodedDocuments, Masking,
                                   PretrainingData, assemble, create_examples, encode_documents, fixed_batches,
                                   load_batches, read_documents, save_batches, split_documents, split_sentences,
                                   train_tokenizer)
from nlprec.data.tokenize import PAD_ID, UNK_ID
from nlprec.errors import NlprecError

VOCAB = 60


def synthetic_corpus(n_docs: int = 40, seed: int = 0, sentence_len: tuple[int, int] = (3, 9),
                     sentences: tuple[int, int] = (4, 12)) -> EncodedDocuments:
    """Random ids in [FIRST_PIECE, VOCAB) as sentences and documents (no tokenizer needed)."""
    rng = np.random.default_rng(seed)
    doc_sizes = rng.integers(*sentences, n_docs)
    lengths = rng.integers(*sentence_len, int(doc_sizes.sum()))
    tokens = rng.integers(FIRST_PIECE, VOCAB, int(lengths.sum())).astype(np.int32)
    return EncodedDocuments(tokens, np.concatenate([[0], np.cumsum(lengths)]),
                            np.concatenate([[0], np.cumsum(doc_sizes)]))


def doc_of_token(corpus: EncodedDocuments) -> np.ndarray:
    sentence_doc = np.repeat(np.arange(corpus.n_docs), np.diff(corpus.doc_starts))
    return np.repeat(sentence_doc, np.diff(corpus.sentence_starts))


# ----- reading -----------------------------------------------------------------------------------
def test_sentence_rule_keeps_u0085_and_splits_on_html_breaks():
    assert split_sentences("Great\x85film. Really!<br /><br />Yes") == ["Great\x85film.", "Really!", "Yes"]
    assert split_sentences("no break here") == ["no break here"]


def test_sentences_format_blank_lines_between_documents(tmp_path):
    path = tmp_path / "c.txt"
    path.write_text("one a.\none b.\n\n\ntwo a.\n  \nthree a.\nthree\x85b.\n", encoding="utf-8")
    docs = read_documents(path)
    assert docs.format == "sentences"
    assert docs.doc_sizes.tolist() == [2, 1, 2] and docs.sentences[-1] == "three\x85b."


def test_documents_format_one_per_line_split_into_sentences(tmp_path):
    path = tmp_path / "c.txt.gz"
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        handle.write("First one. Second one!\nAnother doc? Yes.<br />End\n")
    docs = read_documents(path)
    assert docs.format == "documents" and docs.doc_sizes.tolist() == [2, 3]
    assert docs.sentences == ["First one.", "Second one!", "Another doc?", "Yes.", "End"]


def test_documents_column_of_a_tsv(tmp_path):
    path = tmp_path / "c.tsv"
    path.write_text("pos\tGood film. Yes\tstill text.\nneg\tBad.\n", encoding="utf-8")
    docs = read_documents(path, "documents", column=1)
    assert docs.sentences == ["Good film.", "Yes\tstill text.", "Bad."]


def test_wikitext_headings_start_documents(tmp_path):
    path = tmp_path / "wiki.tokens"
    path.write_text(" \n = Alpha = \n \n A one . A two . \n = = Sub = = \n A three . \n = Beta = \n B one . \n",
                    encoding="utf-8")
    docs = read_documents(path)
    assert docs.format == "wikitext" and docs.doc_sizes.tolist() == [3, 1]
    assert docs.sentences[:3] == ["A one .", "A two .", "A three ."]


def test_empty_corpus_is_an_error(tmp_path):
    path = tmp_path / "empty.txt"
    path.write_text("\n  \n\n", encoding="utf-8")
    with pytest.raises(NlprecError, match="no text"):
        read_documents(path)


def test_tokenizer_reserves_the_bert_pieces(tmp_path):
    path = tmp_path / "c.txt"
    path.write_text("\n".join(f"the cat {i} sat on the mat . [CLS] odd" for i in range(200)) + "\n", encoding="utf-8")
    docs = read_documents(path, "documents")
    tokenizer = train_tokenizer(tmp_path / "spm.model", docs, 5000, seed=0)  # capped to what the text supports
    assert tokenizer.vocab_size < 5000
    assert [tokenizer.id_to_piece(i) for i in (PAD_ID, CLS_ID, SEP_ID, MASK_ID)] == ["<pad>", "[CLS]", "[SEP]",
                                                                                     "[MASK]"]
    encoded = encode_documents(tokenizer, docs)
    assert CLS_ID not in encoded.tokens and UNK_ID in encoded.tokens  # literal "[CLS]" in text becomes unk


# ----- examples ----------------------------------------------------------------------------------
def test_examples_fit_max_len_and_nsp_is_half_and_half():
    corpus = synthetic_corpus(n_docs=300)
    examples = create_examples(corpus, 48, np.random.default_rng(0))
    assert examples.lengths.max() <= 48 and (examples.a_len >= 1).all() and (examples.b_len >= 1).all()
    assert examples.nsp_labels.mean() == 0.5
    doc = doc_of_token(corpus)
    same_doc = doc[examples.a_start] == doc[examples.b_start]
    gap = examples.b_start - examples.a_start - examples.a_len  # > 0 where trimming cut A's back or B's front
    is_next = examples.nsp_labels == IS_NEXT
    assert same_doc[is_next].all() and (gap[is_next] >= 0).all() and (gap[is_next] < 16).all()
    assert (gap[is_next] == 0).mean() > 0.5
    assert not same_doc[examples.nsp_labels == NOT_NEXT].any()
    long_docs = synthetic_corpus(n_docs=100, sentences=(30, 40))
    full = create_examples(long_docs, 48, np.random.default_rng(0), short_seq_prob=0.0).lengths
    short = create_examples(long_docs, 48, np.random.default_rng(0), short_seq_prob=1.0).lengths
    assert np.median(full) >= 46 and short.mean() < 0.75 * full.mean()


def test_single_document_needs_no_nsp():
    corpus = synthetic_corpus(n_docs=1)
    with pytest.raises(NlprecError, match="--no-nsp"):
        create_examples(corpus, 32, np.random.default_rng(0))
    examples = create_examples(corpus, 32, np.random.default_rng(0), next_sentence=False)
    assert (examples.b_len == 0).all() and examples.lengths.max() <= 32


def test_segments_and_special_pieces():
    corpus = synthetic_corpus()
    examples = create_examples(corpus, 40, np.random.default_rng(1))
    rows = np.arange(16)
    ids, segments = assemble(corpus, examples, rows)
    for r in rows:
        la, lb = examples.a_len[r], examples.b_len[r]
        row = ids[r]
        assert row[0] == CLS_ID and row[la + 1] == SEP_ID and row[la + lb + 2] == SEP_ID
        assert (row[la + lb + 3:] == PAD_ID).all() and (row[1:la + 1] >= FIRST_PIECE).all()
        np.testing.assert_array_equal(row[1:la + 1], corpus.tokens[examples.a_start[r]:examples.a_start[r] + la])
        assert segments[r, :la + 2].sum() == 0 and (segments[r, la + 2:la + lb + 3] == 1).all()
        assert segments[r, la + lb + 3:].sum() == 0


# ----- masking -----------------------------------------------------------------------------------
def test_masking_never_picks_special_pieces_or_padding_over_many_batches():
    corpus = synthetic_corpus(n_docs=200)
    examples = create_examples(corpus, 40, np.random.default_rng(2))
    masking = Masking(VOCAB, max_predictions=5)
    data = PretrainingData(corpus, examples, masking, batch_size=16, seed=3)
    batches = 0
    for epoch in range(3):
        for batch in data.train_dataloader(epoch):
            clean, _ = assemble(corpus, examples, np.arange(1))  # shape only
            positions, labels = batch["mlm_positions"].numpy(), batch["mlm_labels"].numpy()
            inputs = batch["input_ids"].numpy()
            assert (labels >= FIRST_PIECE).all()  # never [CLS], [SEP], padding or another reserved id
            rows = positions // inputs.shape[1]
            counts = np.bincount(rows, minlength=len(inputs))
            real = (inputs != PAD_ID) & (inputs != CLS_ID) & (inputs != SEP_ID)
            expected = np.clip(np.rint(0.15 * real.sum(1)), 1, 5)
            np.testing.assert_array_equal(counts, expected)
            unmasked = np.ones(inputs.size, dtype=bool)
            unmasked[positions] = False
            assert MASK_ID not in inputs.reshape(-1)[unmasked]
            assert len(np.unique(positions)) == len(positions)
            batches += 1
    assert batches > 50 and clean.shape[0] == 1


def test_mask_rates_80_10_10_and_15_percent():
    rng = np.random.default_rng(0)
    ids = rng.integers(FIRST_PIECE, 1000, (2000, 100))  # no specials: 15 of 100 positions per row
    inputs, positions, labels = Masking(1000, max_predictions=100).apply(ids, rng)
    assert len(positions) == 2000 * 15
    placed = inputs.reshape(-1)[positions]
    masked = (placed == MASK_ID).mean()
    kept = (placed == labels).mean()
    random = ((placed != MASK_ID) & (placed != labels)).mean()
    assert abs(masked - 0.8) < 0.01 and abs(kept - 0.1) < 0.008 and abs(random - 0.1) < 0.008
    assert (placed[placed != MASK_ID] >= FIRST_PIECE).all()
    unchanged = np.ones(ids.size, dtype=bool)
    unchanged[positions] = False
    np.testing.assert_array_equal(inputs.reshape(-1)[unchanged], ids.reshape(-1)[unchanged])


def test_dynamic_masks_change_per_epoch_and_repeat_per_seed_static_do_not_change():
    corpus = synthetic_corpus()
    examples = create_examples(corpus, 40, np.random.default_rng(2))
    masking = Masking(VOCAB)

    def masks_of(data, epoch):
        by_example = {}
        for rows, batch in zip(data._batches(epoch), data.train_dataloader(epoch)):
            positions = batch["mlm_positions"].numpy()
            width = batch["input_ids"].shape[1]
            for row, example in enumerate(rows):
                by_example[int(example)] = tuple(positions[positions // width == row] % width)
        return by_example

    dynamic = PretrainingData(corpus, examples, masking, 8, seed=5)
    again = PretrainingData(corpus, examples, masking, 8, seed=5)
    assert masks_of(dynamic, 0) == masks_of(again, 0)
    assert masks_of(dynamic, 0) != masks_of(dynamic, 1)
    static = PretrainingData(corpus, examples, masking, 8, seed=5, static_masking=True)
    assert masks_of(static, 0) == masks_of(static, 1)


def test_batches_cover_every_example_once_with_little_padding():
    corpus = synthetic_corpus(n_docs=200)
    examples = create_examples(corpus, 64, np.random.default_rng(0))
    data = PretrainingData(corpus, examples, Masking(VOCAB), 16, seed=0)
    rows = np.concatenate(data._batches(0))
    assert sorted(rows.tolist()) == list(range(len(examples)))
    real = sum(batch["n_tokens"] for batch in data.train_dataloader(0))
    padded = sum(batch["input_ids"].numel() for batch in data.train_dataloader(0))
    assert real / padded > 0.9 and data.steps_per_epoch() == len(data.train_dataloader(0))
    unsorted = PretrainingData(corpus, examples, Masking(VOCAB), 16, seed=0, bucket_batches=1)  # random batches
    assert sorted(np.concatenate(unsorted._batches(0)).tolist()) == list(range(len(examples)))
    padded_random = sum(batch["input_ids"].numel() for batch in unsorted.train_dataloader(0))
    assert padded_random > padded
    with pytest.raises(ValueError, match="bucket_batches"):
        PretrainingData(corpus, examples, Masking(VOCAB), 16, seed=0, bucket_batches=0)


def test_fixed_batches_round_trip_through_npz(tmp_path):
    corpus = synthetic_corpus()
    examples = create_examples(corpus, 40, np.random.default_rng(0))
    batches = fixed_batches(corpus, examples, Masking(VOCAB), seed=7, batch_size=16, next_sentence=True)
    again = fixed_batches(corpus, examples, Masking(VOCAB), seed=7, batch_size=16, next_sentence=True)
    save_batches(tmp_path / "held.npz", batches)
    loaded = load_batches(tmp_path / "held.npz")
    assert len(loaded) == len(batches) and sum(len(b["input_ids"]) for b in loaded) == len(examples)
    for a, b, c in zip(batches, loaded, again):
        assert a.keys() == b.keys()
        for key in a:
            if isinstance(a[key], torch.Tensor):
                assert torch.equal(a[key], b[key]) and torch.equal(a[key], c[key])


def test_split_documents_holds_out_whole_documents():
    train, held = split_documents(50, 0.1, 2, seed=0)
    assert len(held) == 5 and len(set(train) | set(held)) == 50
    assert len(split_documents(6, 0.1, 2, seed=0)[1]) == 0  # a fifth of 6 is below the minimum of 2
