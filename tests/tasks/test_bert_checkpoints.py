"""Import and export of transformers / sentence-transformers BERT checkpoints, checked against
transformers and sentence-transformers themselves on small random models whose WordPiece
vocabularies were trained on IMDb reviews (tests/hf_bert_support.py): hidden states, MLM and
NSP logits within 1e-4 in fp32, sentence vectors equal to SentenceTransformer.encode, fill-mask
top-5 equal after export (nlprec's own sentencepiece BERT included), and every bad input a
one-line error with nothing written."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("transformers", reason="the checks compare with transformers (dev extra)")
pytest.importorskip("sentence_transformers", reason="the checks compare with sentence-transformers (dev extra)")

from hf_bert_support import imdb_texts, write_bert, write_sentence_transformer  # noqa: E402

from nlprec.errors import NlprecError  # noqa: E402
from nlprec.tasks.bert import PretrainedBert, PretrainOptions, train  # noqa: E402
from nlprec.tasks.bert_checkpoints import export_folder, import_checkpoint  # noqa: E402

QUIET = {"log": lambda message: None}


@pytest.fixture(scope="module")
def texts(corpora_dir):
    return imdb_texts(corpora_dir, 400)


def transformers_outputs(model, tokenizer, texts):
    """transformers' last hidden states, MLM and NSP logits on a padded batch, and the batch."""
    batch = tokenizer(texts, truncation=True, max_length=model.config.max_position_embeddings, padding=True,
                      return_tensors="pt")
    with torch.no_grad():
        out = model(**batch, output_hidden_states=True)
    return out, batch


def our_outputs(bert: PretrainedBert, batch):
    keep = batch["attention_mask"].bool()  # (B, T)
    with torch.no_grad():
        hidden = bert.model.encoder(batch["input_ids"], batch["token_type_ids"], keep=keep)  # (B, T, d)
    return hidden, keep


def random_sizes(rng: np.random.Generator) -> dict[str, int]:
    """BERT sizes drawn at random: vocabulary, layers, heads x head width, FFN, positions."""
    vocab, layers, heads, head_width, d_ff, positions = (int(v) for v in rng.integers([120, 1, 1, 2, 5, 30],
                                                                                       [600, 4, 6, 9, 90, 90]))
    return {"vocab_size": vocab, "layers": layers, "heads": heads, "hidden": heads * head_width, "d_ff": d_ff,
            "positions": positions}


@pytest.mark.parametrize("case", [
    {"kind": "pretraining"},
    # sizes, a vocabulary and a layout not seen above: tokenizer.json, cased, accents kept, three token types,
    # pytorch_model.bin with the older LayerNorm.gamma/beta names
    {"kind": "masked", "vocab_size": 450, "hidden": 24, "layers": 3, "heads": 3, "d_ff": 40, "positions": 50,
     "type_vocab": 3, "lowercase": False, "strip_accents": False, "tokenizer_json": True, "torch_bin": True},
    # sizes drawn at random (seeded): whatever config.json says
    {"kind": "pretraining", **random_sizes(np.random.default_rng(28))},
], ids=["BertForPreTraining-safetensors-vocab.txt", "BertForMaskedLM-bin-gamma-beta-tokenizer.json", "random-sizes"])
def test_import_equals_transformers_in_fp32(tmp_path, texts, case):
    from transformers import AutoTokenizer

    model = write_bert(tmp_path / "hf", texts, **case)
    bert = import_checkpoint(tmp_path / "hf", tmp_path / "ours", **QUIET)
    tokenizer = AutoTokenizer.from_pretrained(str(tmp_path / "hf"))
    out, batch = transformers_outputs(model, tokenizer, texts[:6])
    hidden, keep = our_outputs(bert, batch)
    assert bert.tokenize(texts[:6], truncate=True) == [row[m.bool()].tolist() for row, m in
                                                        zip(batch["input_ids"], batch["attention_mask"])]
    torch.testing.assert_close(hidden[keep], out.hidden_states[-1][keep], atol=1e-4, rtol=0)
    logits = out.prediction_logits if case["kind"] == "pretraining" else out.logits
    torch.testing.assert_close(bert.model.mlm_logits(hidden[keep]), logits[keep], atol=1e-4, rtol=0)
    if case["kind"] == "pretraining":
        torch.testing.assert_close(bert.model.nsp_logits(hidden), out.seq_relationship_logits, atol=1e-4, rtol=0)
    heads = json.loads((tmp_path / "ours" / "config.json").read_text())["imported"]["heads"]
    assert heads == {"mlm": "imported", "nsp": "imported" if case["kind"] == "pretraining" else "none",
                     "pooler": "imported" if case["kind"] == "pretraining" else "random"}


def test_a_bare_bert_model_imports_with_its_missing_mlm_head_reported(tmp_path, texts):
    from transformers import AutoTokenizer

    model = write_bert(tmp_path / "hf", texts, "model", hidden=16, heads=2, d_ff=24, layers=1)
    reports: list[str] = []
    bert = import_checkpoint(tmp_path / "hf", tmp_path / "ours", log=reports.append)
    assert "no mlm head in the checkpoint: initialised at random" in reports[0]
    tokenizer = AutoTokenizer.from_pretrained(str(tmp_path / "hf"))
    batch = tokenizer(texts[:3], truncation=True, max_length=64, padding=True, return_tensors="pt")
    with torch.no_grad():
        theirs = model(**batch).last_hidden_state
    hidden, keep = our_outputs(bert, batch)
    torch.testing.assert_close(hidden[keep], theirs[keep], atol=1e-4, rtol=0)


def test_tokenization_equals_transformers_fast_tokenizer_on_1000_imdb_reviews(tmp_path, corpora_dir, texts):
    from transformers import AutoTokenizer

    reviews = imdb_texts(corpora_dir, 1000, start=5000)
    for name, lowercase, accents, as_json in (("uncased", True, None, False), ("cased", False, False, True)):
        write_bert(tmp_path / name, texts, "masked", hidden=8, heads=2, d_ff=8, layers=1, lowercase=lowercase,
                   strip_accents=accents, tokenizer_json=as_json)
        bert = import_checkpoint(tmp_path / name, tmp_path / f"{name}-ours", **QUIET)
        theirs = AutoTokenizer.from_pretrained(str(tmp_path / name))(reviews)["input_ids"]
        ours = [[bert.cls_id, *row, bert.sep_id] for row in bert.tokenizer.encode(reviews)]
        assert ours == theirs, name


@pytest.mark.parametrize("pooling,normalize", [("mean", True), ("cls", False), ("max", True)])
def test_sentence_transformers_folder_embeds_as_sentence_transformers(tmp_path, texts, pooling, normalize):
    model = write_sentence_transformer(tmp_path / "st", texts, pooling, normalize, max_seq_length=40,
                                       hidden=16, heads=2, d_ff=24, layers=2)
    bert = import_checkpoint(tmp_path / "st", tmp_path / "ours", **QUIET)
    assert (bert.pooling, bert.normalize, bert.max_tokens, bert.dimensions) == (pooling, normalize, 40, 16)
    sentences = texts[:40]  # long reviews are cut at 40 tokens by both
    np.testing.assert_allclose(bert.embed(sentences, batch_tokens=300),
                               model.encode(sentences, convert_to_numpy=True), atol=1e-4, rtol=0)


def top5_after_export(folder: Path, text: str, bert: PretrainedBert) -> list[list[int]]:
    """transformers' top-5 ids at each [MASK] of `text` from the exported folder (reserved ids excluded as
    `nlprec bert fill` excludes them)."""
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    model = AutoModelForMaskedLM.from_pretrained(str(folder)).eval()
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    batch = tokenizer(text, return_tensors="pt")
    assert batch["input_ids"][0].tolist() == bert.encode(text)
    with torch.no_grad():
        logits = model(**batch).logits[0]  # (T, V)
    logits = logits[batch["input_ids"][0] == tokenizer.mask_token_id]  # (masks, V)
    logits[:, bert.reserved_ids()] = float("-inf")
    return logits.topk(5).indices.tolist()


def test_export_of_an_imported_checkpoint_gives_the_same_fill_mask_in_transformers(tmp_path, texts):
    write_bert(tmp_path / "hf", texts, "pretraining", hidden=16, heads=2, d_ff=24, layers=2)
    bert = import_checkpoint(tmp_path / "hf", tmp_path / "ours", **QUIET)
    export_folder(tmp_path / "ours", tmp_path / "back", **QUIET)
    text = "the movie was [MASK] and the acting was [MASK] ."
    assert top5_after_export(tmp_path / "back", text, bert) == [[g.token_id for g in mask] for mask in
                                                                bert.fill([text], 5)[0]]
    again = import_checkpoint(tmp_path / "back", tmp_path / "again", **QUIET)
    torch.testing.assert_close(again.model.state_dict(), bert.model.state_dict(), atol=0, rtol=0)


def test_export_of_nlprec_sentencepiece_bert_loads_in_transformers(tmp_path, corpora_dir):
    from transformers import AutoTokenizer

    corpus = corpora_dir / "wikitext-2" / "wiki.valid.tokens"
    options = PretrainOptions(vocab_size=300, max_len=48, batch_size=8, max_steps=3, threads=1, progress=False,
                              device="cpu", heldout_fraction=0.05, heldout_examples=8)
    bert = train(corpus, tmp_path / "own", options, {"hidden": 16, "layers": 1, "heads": 2, "d_ff": 32}, **QUIET)
    export_folder(tmp_path / "own", tmp_path / "hf", **QUIET)
    text = "the game was [MASK] in the united states ."
    assert top5_after_export(tmp_path / "hf", text, bert) == [[g.token_id for g in m] for m in bert.fill([text])[0]]
    reviews = imdb_texts(corpora_dir, 300, start=9000)  # the sentencepiece pieces, through tokenizers' Unigram
    ours = [[bert.cls_id, *row, bert.sep_id] for row in bert.tokenizer.encode(reviews)]
    assert AutoTokenizer.from_pretrained(str(tmp_path / "hf"))(reviews)["input_ids"] == ours
    imported = import_checkpoint(tmp_path / "hf", tmp_path / "back", **QUIET)
    np.testing.assert_allclose(imported.embed(reviews[:8]), bert.embed(reviews[:8]), atol=1e-5)


def test_evaluate_masks_an_imported_wordpiece_checkpoint_and_scores_as_transformers(tmp_path, texts):
    from nlprec.data.bert_data import Masking, read_documents
    from nlprec.tasks.bert import PieceLayout, heldout_batches

    model = write_bert(tmp_path / "hf", texts)  # BertForPreTraining: MLM and NSP heads
    bert = import_checkpoint(tmp_path / "hf", tmp_path / "ours", **QUIET)
    corpus = tmp_path / "heldout.txt"
    corpus.write_text("\n".join(text.replace("\n", " ") for text in texts[300:340]) + "\n", encoding="utf-8")
    report = bert.evaluate(corpus, "documents")
    kinds = report["masked_positions_by_kind"]
    assert kinds["masked"] > 4 * kinds["random"] > 0 and kinds["kept"] > 0 and report["nsp_accuracy"] is not None
    # the same examples and masks (BERT's defaults: seed 12345, 15%, 20 at most, 128 pieces), in the checkpoint's ids
    layout = PieceLayout(bert.tokenizer)
    batches = [layout.to_model_ids(batch) for batch in heldout_batches(
        read_documents(corpus, "documents"), layout, 64, Masking(layout.vocab_size), 12345, True)]
    special = set(bert.tokenizer.special_ids) - {bert.tokenizer.unk_id}
    correct, labels, shown = [], [], []
    for batch in batches:
        keep = batch["input_ids"] != bert.tokenizer.pad_id  # (B, T)
        with torch.no_grad():
            logits = model(input_ids=batch["input_ids"], token_type_ids=batch["segment_ids"],
                           attention_mask=keep.long()).prediction_logits  # (B, T, V)
        picked = logits.reshape(-1, logits.shape[-1])[batch["mlm_positions"]]  # (M, V)
        correct.append(picked.argmax(-1) == batch["mlm_labels"])
        labels.append(batch["mlm_labels"])
        shown.append(batch["input_ids"].reshape(-1)[batch["mlm_positions"]])
    correct, labels, shown = torch.cat(correct), torch.cat(labels), torch.cat(shown)
    assert not special & set(labels.tolist()) and not special - {bert.tokenizer.mask_id} & set(shown.tolist())
    at_mask = shown == bert.tokenizer.mask_id
    assert int(at_mask.sum()) == kinds["masked"] and len(labels) == report["masked_positions"]
    assert report["mlm_accuracy_masked"] == pytest.approx(float(correct[at_mask].float().mean()))
    assert report["mlm_accuracy"] == pytest.approx(float(correct.float().mean()))
    majority = int(torch.bincount(labels).argmax())
    assert report["majority_accuracy_masked"] == pytest.approx(float((labels[at_mask] == majority).float().mean()))


def test_bad_checkpoints_are_one_line_errors_and_write_nothing(tmp_path, texts):
    write_bert(tmp_path / "hf", texts, "masked", hidden=8, heads=2, d_ff=8, layers=1)
    out = tmp_path / "out"

    def refused(folder: Path, match: str) -> None:
        with pytest.raises(NlprecError, match=match) as raised:
            import_checkpoint(folder, out, **QUIET)
        assert "\n" not in str(raised.value) and not out.exists()
        assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.")]

    config = json.loads((tmp_path / "hf" / "config.json").read_text())
    (tmp_path / "hf" / "config.json").write_text(json.dumps({**config, "model_type": "gpt2"}))
    refused(tmp_path / "hf", "not a BERT config")
    (tmp_path / "hf" / "config.json").write_text(json.dumps({**config, "hidden_size": 12, "num_attention_heads": 2}))
    refused(tmp_path / "hf", r"has shape \(\d+, 8\), config.json implies \(\d+, 12\)")
    (tmp_path / "hf" / "config.json").write_text(json.dumps(config))
    (tmp_path / "hf" / "vocab.txt").unlink()
    refused(tmp_path / "hf", "no vocabulary")
    write_bert(tmp_path / "bin", texts, "masked", hidden=8, heads=2, d_ff=8, layers=1, torch_bin=True)
    torch.save({"x": print}, tmp_path / "bin" / "pytorch_model.bin")  # loading it would call into code
    refused(tmp_path / "bin", r"pytorch_model.bin: not a readable transformers weights \(Weights only load failed")
    with open(tmp_path / "bin" / "pytorch_model.bin", "wb") as handle:  # an old-style bare pickle
        pickle.dump({"x": print}, handle)
    refused(tmp_path / "bin", "pytorch_model.bin: not a readable transformers weights")
    refused(tmp_path / "nothing", "no such checkpoint folder")
    out.mkdir()
    (out / "keep.txt").write_text("x")
    with pytest.raises(NlprecError, match="already exists"):
        import_checkpoint(tmp_path / "bin", out, **QUIET)
