"""The BERT API: pretrain -> folder, load, fill-mask, evaluate, embed, resume, bad inputs, and a
quality check on real text (WikiText-2) against the most-frequent-piece baseline."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from nlprec.tasks.bert import PretrainedBert, PretrainOptions, evaluate_batches, heldout_batches, train
from nlprec.data.bert_data import FIRST_PIECE, Masking, encode_documents, read_documents
from nlprec.errors import NlprecError
from nlprec.models.bert import Bert

TINY = {"hidden": 32, "layers": 1, "heads": 2, "d_ff": 64}
TOPICS = [["cat", "dog", "bird", "fish", "mouse"], ["red", "blue", "green", "black", "white"],
          ["run", "jump", "swim", "fly", "walk"], ["one", "two", "three", "four", "five"]]


def write_corpus(path, n_docs: int = 40, seed: int = 0):
    """One sentence per line, a blank line between documents; each document keeps to one topic."""
    rng = np.random.default_rng(seed)
    docs = []
    for d in range(n_docs):
        words = TOPICS[d % len(TOPICS)]
        docs.append("\n".join(" ".join(["the", *rng.choice(words, rng.integers(2, 6))]) + " ." for _ in range(6)))
    path.write_text("\n\n".join(docs) + "\n", encoding="utf-8")
    return path


def options(**changes) -> PretrainOptions:
    base = {"vocab_size": 60, "max_len": 32, "batch_size": 8, "max_steps": 6, "lr": 1e-3, "threads": 1,
            "progress": False, "heldout_fraction": 0.1, "heldout_examples": 16, "seed": 3,
            "device": "cpu"}  # same-seed identity and thresholds were measured on the CPU
    return PretrainOptions(**{**base, **changes})


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bert")
    corpus = write_corpus(folder / "corpus.txt")
    torch.set_num_threads(1)
    bert = train(corpus, folder / "model", options(), overrides=TINY, log=lambda message: None)
    return bert, folder / "model", corpus


def test_folder_records_provenance_and_loads_weights_only(trained):
    bert, folder, corpus = trained
    config = json.loads((folder / "config.json").read_text())
    assert config["format"] == "nlprec-bert-v1" and config["seed"] == 3 and len(config["data_sha256"]) == 64
    assert config["nlprec_version"] and config["model_config"]["hidden"] == 32
    assert config["model_config"]["vocab_size"] == bert.tokenizer.vocab_size <= 60
    assert config["heldout"]["examples"] > 0 and config["trainer_config"]["schedule"] == "linear"
    state = torch.load(folder / "model.pt", weights_only=True)
    assert isinstance(state, dict) and all(isinstance(v, torch.Tensor) for v in state.values())
    records = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    epoch = [r for r in records if r.get("event") == "epoch"][-1]
    for key in ("mlm", "nsp", "mlm_accuracy", "nsp_accuracy", "val_mlm", "val_nsp", "val_mlm_accuracy",
                "val_nsp_accuracy"):
        assert key in epoch
    assert (folder / "checkpoints" / "best.pt").is_file()


def test_fill_gives_k_learned_pieces_for_every_mask(trained):
    bert, _, _ = trained
    guesses = bert.fill(["the [MASK] cat .", "the [MASK] [MASK] ."], k=3)
    assert [len(text) for text in guesses] == [1, 2]
    for mask in guesses[1]:
        assert len(mask) == 3 and all(g.token_id >= FIRST_PIECE for g in mask)
        probabilities = [g.probability for g in mask]
        assert probabilities == sorted(probabilities, reverse=True) and 0 < sum(probabilities) <= 1
    assert "[MASK]" not in bert.filled_text("the [MASK] cat .", guesses[0])
    with pytest.raises(NlprecError, match=r"no \[MASK\]"):
        bert.fill(["no mask here"])


def test_evaluate_is_deterministic_and_names_its_seed(trained):
    bert, _, corpus = trained
    first = bert.evaluate(corpus)
    assert first == bert.evaluate(corpus)
    assert {"mlm_accuracy", "mlm_perplexity", "nsp_accuracy", "examples", "masking_seed"} <= set(first)
    assert first["masking_seed"] == 12345 and 0 <= first["mlm_accuracy"] <= 1 and first["mlm_perplexity"] > 1
    assert bert.evaluate(corpus, masking_seed=7)["masking_seed"] == 7


def test_evaluate_splits_accuracy_by_masked_random_and_kept_positions(trained):
    bert, _, corpus = trained
    report = bert.evaluate(corpus)
    kinds = report["masked_positions_by_kind"]
    assert sum(kinds.values()) == report["masked_positions"]
    assert 0.7 < kinds["masked"] / report["masked_positions"] < 0.9  # BERT's 80/10/10 corruption
    weighted = sum(report[f"mlm_accuracy_{kind}"] * count for kind, count in kinds.items()) / report["masked_positions"]
    assert abs(weighted - report["mlm_accuracy"]) < 1e-9
    batches = heldout_batches(read_documents(corpus), bert.tokenizer, 32, Masking(bert.tokenizer.vocab_size, 0.15, 20),
                              12345, True)  # the majority baseline by hand, on the same positions
    labels = np.concatenate([b["mlm_labels"].numpy() for b in batches])
    shown = np.concatenate([b["input_ids"].reshape(-1)[b["mlm_positions"]].numpy() for b in batches])
    majority = np.bincount(labels).argmax()
    assert report["majority_piece_id"] == majority and report["majority_piece"] == bert.tokenizer.id_to_piece(majority)
    assert report["majority_accuracy_masked"] == pytest.approx(float(np.mean(labels[shown == 6] == majority)))


def test_embed_cls_mean_max_are_batch_invariant(trained):
    bert, _, _ = trained
    sentences = ["the cat .", "the red blue green black white dog fish .", ""]
    together = bert.embed(sentences, "cls", batch_tokens=1000)
    alone = np.stack([bert.embed([s], "cls")[0] for s in sentences])
    assert together.shape == (3, 32) and together.dtype == np.float32
    np.testing.assert_allclose(together, alone, atol=1e-5)
    for pooling in ("mean", "max"):
        pooled = bert.embed(sentences, pooling, batch_tokens=8)
        np.testing.assert_allclose(pooled, np.stack([bert.embed([s], pooling)[0] for s in sentences]), atol=1e-5)
        assert not np.allclose(pooled, together)


def test_embedding_contract_of_an_own_folder(trained):
    bert, _, _ = trained
    assert (bert.pooling, bert.normalize, bert.dimensions, bert.max_tokens) == ("mean", False, 32, 32)
    ids = bert.tokenize(["the cat .", "dog"])
    assert all(row[0] == 4 and row[-1] == 5 for row in ids)  # [CLS] ... [SEP]
    np.testing.assert_allclose(bert.embed_ids(ids), bert.embed(["the cat .", "dog"]), atol=1e-6)
    hidden = bert.model(torch.tensor([ids[0]]))[0]  # (T, d): the mean over the tokens by hand
    np.testing.assert_allclose(bert.embed_ids(ids[:1])[0], hidden.mean(0).detach().numpy(), atol=1e-5)
    unit = bert.embed(["the cat ."], normalize=True)
    assert abs(float(np.linalg.norm(unit)) - 1) < 1e-5
    long = " ".join(["cat"] * 60)
    with pytest.raises(NlprecError, match=r"input 1 has \d+ tokens, over the model's limit of 32"):
        bert.tokenize(["fine", long])
    cut = bert.tokenize(["fine", long], truncate=True)[1]
    assert len(cut) == 32 and cut[-1] == 5
    assert bert.embed([long]).shape == (1, 32)  # embed cuts by default


def test_resume_continues_to_more_steps(tmp_path):
    corpus = write_corpus(tmp_path / "c.txt")
    out = tmp_path / "m"
    train(corpus, out, options(max_steps=3), overrides=TINY, log=lambda m: None)
    with pytest.raises(NlprecError, match="already holds"):
        train(corpus, out, options(max_steps=3), overrides=TINY, log=lambda m: None)
    (out / "config.json").unlink()  # as if the first run had been interrupted
    checkpoint = torch.load(out / "checkpoints" / "last.pt", weights_only=True)
    assert checkpoint["train_state"]["step"] == 3
    resumed = train(corpus, out, options(max_steps=3), overrides=TINY, resume=True, log=lambda m: None)
    assert resumed.config["trainer_config"]["max_steps"] == 3


def test_same_seed_same_model(tmp_path):
    corpus = write_corpus(tmp_path / "c.txt")
    first = train(corpus, tmp_path / "a", options(max_steps=2), overrides=TINY, log=lambda m: None)
    second = train(corpus, tmp_path / "b", options(max_steps=2), overrides=TINY, log=lambda m: None)
    for (name, a), b in zip(first.model.state_dict().items(), second.model.state_dict().values()):
        assert torch.equal(a, b), name


def test_bad_inputs_are_one_line_errors_and_write_nothing(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n", encoding="utf-8")
    single = tmp_path / "single.txt"
    single.write_text("one sentence .\nanother one .\n", encoding="utf-8")
    for corpus, message in ((empty, "no text"), (single, "--no-nsp")):
        with pytest.raises(NlprecError, match=message):
            train(corpus, tmp_path / "out", options(format="sentences"), overrides=TINY, log=lambda m: None)
        assert not (tmp_path / "out").exists()
    with pytest.raises(NlprecError, match="--max-len must be >= 8"):
        options(max_len=7)
    with pytest.raises(NlprecError, match="not a BERT"):
        PretrainedBert.load(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"format": "nlprec-translation-v1"}), encoding="utf-8")
    with pytest.raises(NlprecError, match="not a BERT model config"):
        PretrainedBert.load(tmp_path)


def test_single_document_trains_with_mlm_only(tmp_path):
    corpus = tmp_path / "single.txt"
    corpus.write_text("\n".join(f"the cat number {i} sat ." for i in range(60)) + "\n", encoding="utf-8")
    bert = train(corpus, tmp_path / "m", options(format="sentences", objectives="mlm", max_steps=2,
                                                     vocab_size=40), overrides=TINY, log=lambda m: None)
    assert bert.model.nsp is None and bert.evaluate(corpus)["nsp_accuracy"] is None


def test_pretrained_on_wikitext_beats_the_most_frequent_piece(corpora_dir, tmp_path):
    """Real text: a tiny BERT trained 600 steps on 40 WikiText-2 valid articles must predict the
    masked pieces of the other 20 clearly better than a model that always guesses the most
    frequent piece (accuracy) or the unigram distribution (cross-entropy): what a collapsed model
    does. Calibrated: accuracy 0.182 against 0.134, cross-entropy 4.76 against 5.24 nats."""
    wiki = corpora_dir / "wikitext-2" / "wiki.valid.tokens"
    lines = wiki.read_text(encoding="utf-8").split("\n")
    starts = [i for i, line in enumerate(lines) if line.startswith(" = ") and not line.startswith(" = = ")]
    (tmp_path / "train.txt").write_text("\n".join(lines[:starts[40]]) + "\n", encoding="utf-8")
    (tmp_path / "held.txt").write_text("\n".join(lines[starts[40]:]) + "\n", encoding="utf-8")
    bert = train(tmp_path / "train.txt", tmp_path / "m",
                    options(vocab_size=1000, max_len=64, batch_size=32, max_steps=600, lr=2e-3, threads=2,
                            warmup_fraction=0.05, heldout_fraction=0.0, precision="fp32", seed=1),
                    overrides={"hidden": 64, "layers": 2, "heads": 2, "d_ff": 256}, log=lambda m: None)
    held = heldout_batches(read_documents(tmp_path / "held.txt"), bert.tokenizer, 64,
                           Masking(bert.tokenizer.vocab_size), 123, True)
    report = evaluate_batches(bert.model, held)
    train_pieces = encode_documents(bert.tokenizer, read_documents(tmp_path / "train.txt"))
    pieces = train_pieces.tokens
    counts = np.bincount(pieces[pieces >= FIRST_PIECE], minlength=bert.tokenizer.vocab_size) + 1.0
    labels = torch.cat([batch["mlm_labels"] for batch in held]).numpy()
    baseline = float((labels == counts.argmax()).mean())
    unigram = float(-np.log(counts[labels] / counts.sum()).mean())
    assert report["masked_positions"] > 10000 and isinstance(bert.model, Bert)
    assert report["mlm_accuracy"] > baseline + 0.03, (report, baseline)
    assert report["mlm_loss"] < unigram - 0.25, (report, unigram)


def test_a_time_budget_is_spent_and_recorded(tmp_path):
    """--max-minutes 0.1 on a tiny model: at least 90% of the 6 s trained, the rate decayed to
    (nearly) zero, and config.json's plan says so (the held-out scoring is part of the budget)."""
    corpus = write_corpus(tmp_path / "corpus.txt")
    torch.set_num_threads(1)
    bert = train(corpus, tmp_path / "m", options(max_steps=None, epochs=10_000, max_minutes=0.1, device="cpu"),
                 overrides=TINY, log=lambda m: None)
    plan = bert.config["plan"]
    assert plan["ended_by"] == "time" and plan["schedule_follows"] == "time budget", plan
    assert 0.9 * 0.1 <= plan["minutes"] <= 0.1 + 0.05 and plan["steps"] < plan["planned_steps"], plan
    assert plan["final_lr"] <= 0.03 * bert.config["options"]["lr"], plan
