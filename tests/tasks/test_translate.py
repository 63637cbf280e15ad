"""The translation pipeline: train -> model folder -> load -> translate/evaluate, resume, bad
folders, BLEU through sacrebleu, and (slow) a quality check on real English-French pairs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import sacrebleu
import torch

from nlprec.data.tokenize import EOS_ID
from nlprec.errors import NlprecError
from nlprec.metrics import bleu_files, bleu_tokenizer_for, translation_scores
from nlprec.tasks.translate import (TranslateOptions, Translator, evaluate, precision_defaults, score_model,
                              train)

WORDS = "cat dog bird fish runs sleeps eats small big red blue the a".split()
TINY_TRANSFORMER = dict(d_model=32, heads=2, encoder_layers=1, decoder_layers=1, d_ff=64)
TINY_GRU = dict(embed_dim=16, hidden=16, decoder_hidden=16, attention_dim=16)


pytestmark = pytest.mark.usefixtures("one_thread")


def write_pairs(path, n: int = 300, seed: int = 0):
    """Made-up pairs: the target is the source reversed and upper-cased, plus an ignored column."""
    rng = np.random.default_rng(seed)
    lines = []
    for _ in range(n):
        words = list(rng.choice(WORDS, rng.integers(1, 6)))
        lines.append(" ".join(words) + "\t" + " ".join(w.upper() for w in reversed(words)) + "\tattribution")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def tiny_options(**overrides) -> TranslateOptions:
    settings = dict(vocab_size=60, valid_size=30, val_bleu_sentences=10, max_tokens=300, max_steps=8, threads=1,
                    progress=False, warmup_steps=2, seed=3,
                    device="cpu")  # expected outputs and precision defaults were measured on the CPU
    settings.update(overrides)
    return TranslateOptions(**settings)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tfm")
    pairs = write_pairs(folder / "pairs.tsv")
    torch.set_num_threads(1)
    translator = train(pairs, folder / "model", tiny_options(), TINY_TRANSFORMER, log=lambda *_: None)
    return translator, folder / "model", pairs


def test_model_folder_format(trained):
    _, model_dir, pairs = trained
    config = json.loads((model_dir / "config.json").read_text())
    assert config["format"] == "nlprec-translation-v1" and config["arch"] == "transformer"
    assert config["model_config"]["d_model"] == 32 and config["model_config"]["share_embeddings"] is True
    assert config["trainer_config"]["schedule"] == "inverse_sqrt" and config["seed"] == 3
    assert len(config["data_sha256"]) == 64 and config["nlprec_version"] and config["tokenizer"] == ["spm.model"]
    state = torch.load(model_dir / "model.pt", weights_only=True)
    assert "tgt_embed.weight" in state
    metrics = json.loads((model_dir / "metrics.json").read_text())
    assert metrics["epochs"] and metrics["train_tokens_per_s"] > 0 and "best_val_bleu" in metrics
    assert (model_dir / "checkpoints" / "best.pt").is_file() and (model_dir / "spm.model").is_file()


def test_translate_one_out_per_input_and_nbest(trained):
    translator, model_dir, _ = trained
    loaded = Translator.load(model_dir)
    sentences = ["the cat runs", "", "a big red dog eats"]
    out = loaded.translate(sentences, beam=3, nbest=2)
    assert len(out) == 3 and out[1][0].text == "" and all(len(n) == 2 for n in (out[0], out[2]))
    assert out[0][0].score >= out[0][1].score
    same = translator.translate(sentences, beam=3, nbest=2)
    assert [[t.text for t in n] for n in same] == [[t.text for t in n] for n in out]
    with pytest.raises(NlprecError, match="nbest"):
        loaded.translate(sentences, beam=2, nbest=3)


def test_evaluate_reports_sacrebleu_scores_and_speed(trained):
    translator, _, pairs = trained
    report = evaluate(translator, pairs, beam=2)
    assert report["sentences"] == 300 and report["sentences_per_s"] > 0 and report["beam"] == 2
    assert report["bleu_signature"].startswith("nrefs:1|") and "tok:13a" in report["bleu_signature"]
    assert 0 <= report["bleu"] <= 100 and 0 <= report["chrf"] <= 100


def test_validation_uses_the_evaluate_code(trained):
    translator, model_dir, _ = trained
    sources, references = ["the cat runs", "a dog"], ["RUNS CAT THE", "DOG A"]
    report = score_model(translator.model, translator.tokenizer, sources, references, beam=1)
    assert report["bleu"] == sacrebleu.corpus_bleu(report["hypotheses"], [references]).score


def test_bleu_equals_sacrebleu_and_counts_must_match(tmp_path):
    hypotheses = ["the cat sat on the mat", "a dog barks loudly today", "hello there"]
    references = ["the cat sat on a mat", "the dog barks loudly", "hello there friend"]
    report = translation_scores(hypotheses, references)
    assert report["bleu"] == sacrebleu.corpus_bleu(hypotheses, [references]).score
    assert report["chrf"] == sacrebleu.corpus_chrf(hypotheses, [references]).score
    metric = sacrebleu.BLEU()
    metric.corpus_score(hypotheses, [references])
    assert report["bleu_signature"] == str(metric.get_signature())
    (tmp_path / "h.txt").write_text("\n".join(hypotheses) + "\n", encoding="utf-8")
    (tmp_path / "r.txt").write_text("\n".join(references[:2]) + "\n", encoding="utf-8")
    with pytest.raises(NlprecError, match="has 3 lines but .* has 2") as err:
        bleu_files(tmp_path / "h.txt", tmp_path / "r.txt")
    assert "\n" not in str(err.value)
    assert bleu_tokenizer_for("zh") == "zh" and bleu_tokenizer_for("fr") == "13a" and bleu_tokenizer_for(None) == "13a"
    assert bleu_tokenizer_for("ja") in ("ja-mecab", "13a")


def test_not_a_model_folder_errors(tmp_path):
    with pytest.raises(NlprecError, match="no such model folder"):
        Translator.load(tmp_path / "absent")
    with pytest.raises(NlprecError, match="no config.json"):
        Translator.load(tmp_path)
    (tmp_path / "config.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(NlprecError, match="not valid JSON"):
        Translator.load(tmp_path)
    (tmp_path / "config.json").write_text('{"format": "other"}', encoding="utf-8")
    with pytest.raises(NlprecError, match="not a translation model config"):
        Translator.load(tmp_path)


def test_resume_continues_and_a_used_folder_needs_resume(tmp_path):
    pairs = write_pairs(tmp_path / "p.tsv", n=200)
    train(pairs, tmp_path / "m", tiny_options(max_steps=4), TINY_TRANSFORMER, log=lambda *_: None)
    with pytest.raises(NlprecError, match="--resume"):
        train(pairs, tmp_path / "m", tiny_options(max_steps=4), TINY_TRANSFORMER, log=lambda *_: None)
    lines = []
    train(pairs, tmp_path / "m", tiny_options(max_steps=7), TINY_TRANSFORMER, resume=True,
                      log=lines.append)
    assert any("resuming" in line and "step 4" in line for line in lines)
    records = [json.loads(line) for line in (tmp_path / "m" / "metrics.jsonl").read_text().splitlines()]
    assert max(r["step"] for r in records) == 7
    with pytest.raises(NlprecError, match="no checkpoint"):
        train(pairs, tmp_path / "other", tiny_options(), TINY_TRANSFORMER, resume=True)


def test_gru_attention_trains_reversed_per_side_and_shows_attention(tmp_path):
    pairs = write_pairs(tmp_path / "p.tsv", n=200)
    translator = train(pairs, tmp_path / "gru", tiny_options(arch="gru-attention", reverse=True,
                                                                         joint_vocab=False, vocab_size=30),
                                   TINY_GRU, log=lambda *_: None)
    assert translator.config["tokenizer"] == ["src.model", "tgt.model"] and translator.reverse
    source, output, weights = translator.attention("RUNS CAT THE")
    assert weights.shape == (len(output), len(source)) and np.allclose(weights.sum(axis=1), 1, atol=1e-5)
    assert evaluate(translator, pairs, beam=1)["sentences"] == 200
    with pytest.raises(NlprecError, match="empty sentence"):
        translator.attention("   ")
    with pytest.raises(NlprecError, match="needs a transformer"):
        translator.attention_heads("RUNS CAT")


def test_precision_defaults_change_only_fp32_models():
    assert precision_defaults("gru-attention", "fp32") == {"decoder_hidden": 256, "adaptive_head": 2000}
    assert precision_defaults("gru-attention", "fp32", tgt_vocab=3000) == {"decoder_hidden": 256}
    assert precision_defaults("gru-attention", "bf16") == {} and precision_defaults("gru-attention", "auto") == {}
    assert precision_defaults("transformer", "fp32") == {"adaptive_head": 2000}
    assert precision_defaults("transformer", "fp32", tgt_vocab=3000) == {}  # too few pieces for a tail
    assert precision_defaults("transformer", "bf16") == {}


@pytest.mark.parametrize("arch, sizes", [("transformer", TINY_TRANSFORMER), ("gru-attention", TINY_GRU)])
def test_adaptive_softmax_model_trains_saves_and_reloads(tmp_path, arch, sizes):
    pairs = write_pairs(tmp_path / "p.tsv", n=200)
    options = tiny_options(arch=arch, precision="fp32", device="cpu", max_steps=4)
    translator = train(pairs, tmp_path / "m", options, {**sizes, "adaptive_head": 20},
                                   log=lambda *_: None)
    order = translator.model.piece_order
    counts = torch.bincount(torch.from_numpy(np.concatenate(
        translator.tokenizer.target.encode([line.split("\t")[1] for line in pairs.read_text().splitlines()]))),
        minlength=len(order))
    counts[EOS_ID] += 200  # one eos per target
    assert EOS_ID in order[:20] and counts[order[:20]].float().mean() > 3 * counts[order[20:]].float().mean()
    assert translator.config["model_config"]["adaptive_head"] == 20
    assert len(translator.translate(["alpha beta"], beam=2)) == 1
    again = Translator.load(tmp_path / "m")
    assert torch.equal(again.model.piece_order, order)
    state = torch.load(tmp_path / "m" / "model.pt", weights_only=True)
    state["piece_order"][0] = state["piece_order"][1]
    torch.save(state, tmp_path / "m" / "model.pt")
    with pytest.raises(NlprecError, match="piece_order is not a permutation"):
        Translator.load(tmp_path / "m")


def test_fp32_gru_records_its_precision_default_and_set_wins(tmp_path):
    pairs = write_pairs(tmp_path / "p.tsv", n=100)
    small = {key: value for key, value in TINY_GRU.items() if key != "decoder_hidden"}
    options = tiny_options(arch="gru-attention", precision="fp32", max_steps=2, device="cpu")
    chosen = train(pairs, tmp_path / "auto", options, small, log=lambda *_: None).config
    assert chosen["model_config"]["decoder_hidden"] == 256 and chosen["trainer_config"]["precision"] == "fp32"
    bf16 = train(pairs, tmp_path / "bf16", tiny_options(arch="gru-attention", precision="bf16",
                                                                    max_steps=2, device="cpu"),
                             small, log=lambda *_: None).config
    assert bf16["model_config"]["decoder_hidden"] == 512 and bf16["trainer_config"]["precision"] == "bf16"
    explicit = train(pairs, tmp_path / "set", options, TINY_GRU, log=lambda *_: None).config
    assert explicit["model_config"]["decoder_hidden"] == 16


def test_resume_with_another_model_size_is_one_line_error(tmp_path):
    pairs = write_pairs(tmp_path / "p.tsv", n=100)
    train(pairs, tmp_path / "m", tiny_options(max_steps=2), TINY_TRANSFORMER, log=lambda *_: None)
    with pytest.raises(NlprecError, match=r"started with d_ff=64 \(now 128\)"):
        train(pairs, tmp_path / "m", tiny_options(max_steps=3), {**TINY_TRANSFORMER, "d_ff": 128},
                          resume=True, log=lambda *_: None)


def test_unknown_model_override_is_one_line_error(tmp_path):
    pairs = write_pairs(tmp_path / "p.tsv", n=100)
    with pytest.raises(NlprecError, match="no option 'layers'"):
        train(pairs, tmp_path / "m", tiny_options(), {"layers": 2}, log=lambda *_: None)


@pytest.mark.slow
@pytest.mark.corpora
def test_tiny_transformer_learns_frequent_short_french(tmp_path, corpora_dir):
    """250 steps (~90 s on one thread) on 20k short fra.txt pairs: BLEU on training-like sentences must be far
    above the same hypotheses scored against shuffled references (a broken model scores ~0 on both)."""
    lines = (corpora_dir / "fra-eng" / "fra.txt").read_text(encoding="utf-8").split("\n")[:20000]
    pairs = tmp_path / "short.tsv"
    pairs.write_text("\n".join(lines) + "\n", encoding="utf-8")
    options = TranslateOptions(vocab_size=1000, valid_size=500, val_bleu_sentences=200, max_tokens=2500, device="cpu",
                               max_steps=250, max_minutes=4.0, threads=1, progress=False, warmup_steps=50, lr=3e-3,
                               seed=1)  # a step budget, not a time budget: the same result on a busy machine
    translator = train(pairs, tmp_path / "m", options, dict(d_model=128, heads=4, encoder_layers=2,
                                                                        decoder_layers=2, d_ff=512),
                                   log=lambda *_: None)
    sample = [line.split("\t") for line in lines[:20000:40]]  # 500 pairs seen in training (or held out)
    sources, references = [s for s, *_ in sample], [t for _, t, *_ in sample]
    report = score_model(translator.model, translator.tokenizer, sources, references, beam=1)
    shuffled = list(np.random.default_rng(0).permutation(references))
    baseline = sacrebleu.corpus_bleu(report["hypotheses"], [shuffled]).score
    assert report["bleu"] > 5 and report["bleu"] > 3 * baseline, (report["bleu"], baseline)
