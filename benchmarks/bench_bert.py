"""BERT pretraining (MLM + NSP) and fine-tuning, nlprec against transformers, side by side.

Pretraining corpus: the IMDb train reviews (one document per line, split into sentences by the
rule of nlprec.data.bert_data) plus WikiText-2 valid (`= Heading =` documents). Held out:
WikiText-2 test plus 2,000 IMDb test reviews (a seeded choice), cut into examples and masked once
with a fixed seed and saved (work/heldout.npz): both tools score exactly these batches.

Both tools get the same sentencepiece model, the same examples with the same masks (drawn once
per example with one seed, BERT's original static masking, so that the masks do not depend on
how each tool batches; a second epoch repeats them, where `nlprec bert pretrain` would draw
new ones), the same sizes (4 layers x 256,
4 heads, FFN 1,024, 128 positions, attention dropout 0 and hidden dropout 0.1 for both), the
same optimizer (AdamW, weight decay 0.01 off for biases/LayerNorms, linear warmup 10% + decay,
clip 1.0) and the same trainer (nlprec.train.Trainer), each for --minutes of training; the
total steps of each tool's schedule come from a timed probe of its own speed. The peer is
transformers' BertForPreTraining from scratch (dense MLM head over every position, sdpa
attention, its default). Batches (--peer-batches): "padded" (the default) gives each tool its own
loader, nlprec its length-bucketed batches and the peer random batches of 32 padded to the
longest (as transformers' Trainer with DataCollatorForLanguageModeling batches, and as the
issue's reference measurement of 32 x 128); "same" gives the peer nlprec's bucketed batches, in
the same order, which compares the two implementations alone. Tokens/s counts real
(non-padding) pieces for both. nlprec runs first (a second run tends to be measured ~10% faster on
this machine: BENCHMARKS.md), so the order does not favour it.

Fine-tuning (each pretrained model, same batches and schedule for both, encoder at a fifth of the
head's rate): rt-polarity on a fixed, seeded 90/10 split, and IMDb train -> a seeded --imdb-test
(2,000) of the test reviews (disjoint from the MLM held-out ones), each capped at
--finetune-minutes.

    python benchmarks/bench_bert.py --minutes 30 --finetune-minutes 5          # the full run
    ATEN_CPU_CAPABILITY=avx2 python benchmarks/bench_bert.py --precision fp32   # a CPU without bf16 units
"""

from __future__ import annotations

import argparse
import dataclasses
import gzip
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, corpora_dir, write_json  # noqa: E402

from nlprec.tasks.bert import PretrainOptions, evaluate_batches, total_steps, trainer_config  # noqa: E402
from nlprec.data.bert_data import (CLS_ID, SEP_ID, Documents, PretrainingData, create_examples,  # noqa: E402
                                   encode_documents, fixed_batches, length_batches, read_documents, save_batches,
                                   split_sentences, train_tokenizer)
from nlprec.data.tokenize import PAD_ID  # noqa: E402
from nlprec.models.bert import Bert, BertConfig, decay_groups  # noqa: E402
from nlprec.models.bert_classifier import BertClassifier, BertClassifierConfig  # noqa: E402
from nlprec.registry import build_config  # noqa: E402
from nlprec.train import Trainer, TrainerConfig  # noqa: E402
from nlprec.train.trainer import cpu_has_bf16_units  # noqa: E402
from nlprec_cli.options import parse_overrides  # noqa: E402

SIZES = {"hidden": 256, "layers": 4, "heads": 4, "d_ff": 1024}


# ----- data ------------------------------------------------------------------------------------
def imdb_reviews(corpora: Path, split: str) -> tuple[list[str], np.ndarray]:
    """(texts, labels 1=pos) of an IMDb split; lines are label<TAB>text, split on the first TAB."""
    texts, labels = [], []
    with gzip.open(corpora / "imdb" / f"imdb_{split}.tsv.gz", "rt", encoding="utf-8", newline="\n") as handle:
        for line in handle:
            label, text = line.rstrip("\n").split("\t", 1)
            texts.append(text)
            labels.append(label == "pos")
    return texts, np.array(labels, dtype=np.int64)


def as_documents(texts: list[str], source: str) -> Documents:
    """Reviews as documents of sentences (the `documents` format's rule)."""
    docs = [split_sentences(text) for text in texts]
    docs = [doc for doc in docs if doc]
    return Documents([s for doc in docs for s in doc], np.array([len(d) for d in docs], dtype=np.int64), "", source,
                     "documents")


def merge(*parts: Documents) -> Documents:
    return Documents([s for part in parts for s in part.sentences], np.concatenate([p.doc_sizes for p in parts]),
                     "+".join(p.sha256[:12] for p in parts), "+".join(p.path for p in parts), "mixed")


# ----- the peer --------------------------------------------------------------------------------
class PeerBert(nn.Module):
    """transformers' BertForPreTraining behind nlprec's model interface (loss, and the scoring
    methods `evaluate_batches` calls); labels are dense (B, T) with -100 off the masked positions."""

    def __init__(self, vocab_size: int, max_len: int):
        super().__init__()
        from transformers import BertConfig as HFConfig, BertForPreTraining

        self.hf_config = HFConfig(vocab_size=vocab_size, hidden_size=SIZES["hidden"],
                                  num_hidden_layers=SIZES["layers"], num_attention_heads=SIZES["heads"],
                                  intermediate_size=SIZES["d_ff"], max_position_embeddings=max_len, type_vocab_size=2,
                                  hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.0, pad_token_id=PAD_ID)
        self.bert = BertForPreTraining(self.hf_config)
        self.nsp = self.bert.cls.seq_relationship

    def loss(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        ids = batch["input_ids"]
        labels = torch.full_like(ids, -100)
        labels.view(-1)[batch["mlm_positions"]] = batch["mlm_labels"]
        out = self.bert(input_ids=ids, token_type_ids=batch["segment_ids"], attention_mask=(ids != PAD_ID).long(),
                        labels=labels, next_sentence_label=batch["nsp_labels"])
        with torch.no_grad():
            guessed = out.prediction_logits.reshape(-1, out.prediction_logits.shape[-1])[batch["mlm_positions"]]
            mlm_accuracy = (guessed.argmax(-1) == batch["mlm_labels"]).float().mean()
            nsp_accuracy = (out.seq_relationship_logits.argmax(-1) == batch["nsp_labels"]).float().mean()
        return {"loss": out.loss, "mlm_accuracy": mlm_accuracy, "nsp_accuracy": nsp_accuracy}

    def forward(self, input_ids: torch.Tensor, segment_ids: torch.Tensor | None = None) -> torch.Tensor:
        return self.bert.bert(input_ids=input_ids, token_type_ids=segment_ids,
                              attention_mask=(input_ids != PAD_ID).long()).last_hidden_state  # (B, T, d)

    def mlm_logits(self, states: torch.Tensor) -> torch.Tensor:
        return self.bert.cls.predictions(states)  # (M, V)

    def nsp_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.bert.cls.seq_relationship(self.bert.bert.pooler(hidden))  # (B, 2)

    def param_groups(self) -> list[dict[str, Any]]:
        return decay_groups(self)


class PeerClassifier(nn.Module):
    """transformers' BertForSequenceClassification initialised from a PeerBert's encoder."""

    def __init__(self, peer: PeerBert, n_classes: int, encoder_lr_scale: float):
        super().__init__()
        from transformers import BertForSequenceClassification

        config = peer.hf_config.__class__(**{**peer.hf_config.to_dict(), "num_labels": n_classes})
        self.model = BertForSequenceClassification(config)
        self.model.bert.load_state_dict(peer.bert.bert.state_dict())
        self.encoder_lr_scale = encoder_lr_scale

    def forward(self, batch: dict[str, Any]) -> torch.Tensor:
        tokens = batch["tokens"]
        return self.model(input_ids=tokens, attention_mask=(tokens != PAD_ID).long()).logits  # (B, C)

    def loss(self, batch: dict[str, Any]) -> torch.Tensor:
        return F.cross_entropy(self(batch).float(), batch["labels"])

    def param_groups(self) -> list[dict[str, Any]]:
        return decay_groups(self, {"model.bert.": self.encoder_lr_scale})


# ----- fine-tuning -----------------------------------------------------------------------------
class ClassBatches:
    """Length-bucketed [CLS] text [SEP] batches for the trainer: {"tokens", "lengths", "labels"}."""

    def __init__(self, ids: list[list[int]], labels: np.ndarray, batch_size: int, seed: int):
        self.ids, self.labels, self.batch_size, self.seed = ids, labels, batch_size, seed
        self.lengths = np.array([len(row) for row in ids])

    def batch(self, rows: np.ndarray) -> dict[str, Any]:
        width = int(self.lengths[rows].max())
        tokens = np.full((len(rows), width), PAD_ID, dtype=np.int64)
        for r, i in enumerate(rows):
            tokens[r, :self.lengths[i]] = self.ids[i]
        return {"tokens": torch.from_numpy(tokens), "lengths": torch.from_numpy(self.lengths[rows]),
                "labels": torch.from_numpy(self.labels[rows]), "n_tokens": int(self.lengths[rows].sum())}

    def train_dataloader(self, epoch: int, rank: int = 0, world_size: int = 1) -> list[dict[str, Any]]:
        rows = length_batches(self.lengths, self.batch_size, np.random.default_rng([self.seed, epoch]))
        return _Lazy(self, rows)

    def steps_per_epoch(self, world_size: int = 1) -> int:
        return math.ceil(len(self.ids) / self.batch_size)


class _Lazy:
    def __init__(self, data: ClassBatches, rows: list[np.ndarray]):
        self.data, self.rows = data, rows

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self):
        return (self.data.batch(rows) for rows in self.rows)


def encode_texts(tokenizer, texts: list[str], max_len: int) -> list[list[int]]:
    return [[CLS_ID, *ids[:max_len - 2], SEP_ID] for ids in tokenizer.encode(texts)]


def accuracy(model: nn.Module, data: ClassBatches) -> float:
    model.eval()
    order = np.argsort(data.lengths, kind="stable")
    correct = 0
    with torch.no_grad():
        for start in range(0, len(order), 64):
            batch = data.batch(order[start:start + 64])
            correct += int((model(batch).argmax(-1) == batch["labels"]).sum())
    model.train()
    return correct / len(order)


def fine_tune(model: nn.Module, train: ClassBatches, test: ClassBatches, args, precision: str, epochs: int) -> dict:
    """Train with AdamW (lr --ft-lr for the head, encoder scaled), warmup (10% of the planned
    steps, at most 30: a time cap must not end training inside the warmup) and linear decay over
    the epochs, capped at --finetune-minutes; accuracy on `test`."""
    steps = train.steps_per_epoch() * epochs
    config = TrainerConfig(device="cpu", precision=precision, optimizer="adamw", lr=args.ft_lr, weight_decay=0.01,
                           schedule="linear", warmup_steps=min(steps // 10, 30), epochs=epochs, max_steps=steps,
                           max_minutes=args.finetune_minutes, grad_clip=1.0, seed=args.seed, progress=False,
                           throughput_unit="tokens")
    trainer = Trainer(model, train, config)
    started = time.perf_counter()
    history = trainer.fit()
    seconds = time.perf_counter() - started
    tokens = sum(r.get("tokens_per_s", 0) * r.get("seconds", 0) for r in history)
    return {"accuracy": accuracy(model.cpu(), test), "train_seconds": seconds, "steps": trainer.state.step,
            "planned_steps": steps, "train_tokens_per_s": tokens / max(sum(r.get("seconds", 0) for r in history), 1e-9),
            "train_examples": len(train.ids), "test_examples": len(test.ids)}


def rt_polarity(corpora: Path, seed: int) -> tuple[list[str], np.ndarray, list[str], np.ndarray]:
    """rt-polarity (latin-1), a fixed seeded 90/10 split."""
    texts, labels = [], []
    for name, label in (("rt-polarity.pos", 1), ("rt-polarity.neg", 0)):
        lines = (corpora / "rt-polarity" / name).read_bytes().decode("latin-1").split("\n")
        lines = [line.strip() for line in lines if line.strip()]
        texts += lines
        labels += [label] * len(lines)
    order = np.random.default_rng(seed).permutation(len(texts))
    cut = len(texts) // 10
    test, train = order[:cut], order[cut:]
    y = np.array(labels, dtype=np.int64)
    return [texts[i] for i in train], y[train], [texts[i] for i in test], y[test]


# ----- the run ---------------------------------------------------------------------------------
def pretrain_one(name: str, model: nn.Module, data: PretrainingData, options: PretrainOptions,
                 held: list[dict[str, Any]]) -> dict[str, Any]:
    torch.manual_seed(options.seed)
    total = total_steps(options, data)
    config = trainer_config(options, None, total, validate=False)
    trainer = Trainer(model, data, config)
    print(f"[{name}] pretraining for {options.max_minutes} min (at most {total:,} steps), precision "
          f"{config.precision}", file=sys.stderr, flush=True)
    started = time.perf_counter()
    history = trainer.fit()
    seconds = time.perf_counter() - started
    tokens = sum(r.get("tokens_per_s", 0) * r.get("seconds", 0) for r in history)
    train_seconds = sum(r.get("seconds", 0) for r in history)
    evaluated = time.perf_counter()
    report = evaluate_batches(model, held)
    result = {"train_tokens_per_s": tokens / max(train_seconds, 1e-9), "train_tokens": tokens,
              "steps": trainer.state.step, "plan": trainer.plan(), "train_seconds": seconds,
              "heldout": report, "eval_seconds": time.perf_counter() - evaluated, "precision": config.precision,
              "last_train_record": history[-1] if history else None}
    print(f"[{name}] {result['train_tokens_per_s']:,.0f} tokens/s, held-out MLM {report['mlm_accuracy']:.4f} NSP "
          f"{report['nsp_accuracy']:.4f}", file=sys.stderr, flush=True)
    return result


def padding_share(data: PretrainingData) -> float:
    """Share of the (B, T) grid that is padding over one epoch of `data`'s batches (T: each batch's longest)."""
    lengths = data.examples.lengths
    grid = real = 0
    for rows in data._batches(0):
        grid += len(rows) * int(lengths[rows].max())
        real += int(lengths[rows].sum())
    return 1.0 - real / grid


def timed_step(model: nn.Module, optimizer: torch.optim.Optimizer, batch: dict[str, Any], context) -> float:
    """Seconds of one training step as the trainer takes it: loss (in `context()`), backward,
    clipping at 1.0, optimizer step."""
    started = time.perf_counter()
    with context():
        loss = model.loss(batch)["loss"]
    loss.backward()
    nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return time.perf_counter() - started


def interleaved_speed(makers: dict[str, Any], datas: dict[str, PretrainingData], precision: str, steps: int,
                      seed: int) -> dict[str, Any]:
    """Training-step tokens/s of each tool on its own loader's batches (`datas`), steps alternating
    between the tools (AdamW + clipping + autocast as the trainer does), so that both see the same
    load on a shared machine; the first 3 steps of each are warm-up. Median and mean over the rest."""
    import contextlib

    torch.manual_seed(seed)
    models = {name: make() for name, make in makers.items()}
    optimizers = {name: torch.optim.AdamW(model.param_groups(), lr=1e-4, weight_decay=0.01, fused=True)
                  for name, model in models.items()}
    context = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if precision == "bf16" else contextlib.nullcontext
    seconds: dict[str, list[float]] = {name: [] for name in models}
    tokens: dict[str, list[int]] = {name: [] for name in models}
    loaders = {name: iter(datas[name].train_dataloader(99)) for name in models}
    for index in range(steps + 3):
        for name in (list(models) if index % 2 == 0 else list(models)[::-1]):  # alternate who goes first
            model, optimizer, batch = models[name], optimizers[name], next(loaders[name])
            tokens[name].append(batch["n_tokens"])
            seconds[name].append(timed_step(model, optimizer, batch, context))
    report = {}
    for name, times in seconds.items():
        rates = np.array(tokens[name][3:]) / np.array(times[3:])
        report[name] = {"median_tokens_per_s": float(np.median(rates)), "mean_tokens_per_s":
                        float(sum(tokens[name][3:]) / sum(times[3:])), "steps": len(rates)}
    if len(report) == 2:
        ours, peer = report.get("nlprec"), report.get("transformers")
        report["speedup_median"] = ours["median_tokens_per_s"] / peer["median_tokens_per_s"]
    return report


def markdown(summary: dict[str, Any]) -> str:
    """The BENCHMARKS.md table of a run."""
    results = summary["results"]
    tools = [t for t in ("nlprec", "transformers") if t in results and "pretraining" in results[t]]
    tasks = sorted({task for t in tools for task in results[t].get("fine_tuning", {})})
    head = ["tool", "padding", "train tokens/s", "A/B tokens/s (median)", "steps", "held-out MLM acc", "MLM ppl",
            "NSP acc", *tasks]
    lines = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
    for tool in tools:
        pre = results[tool]["pretraining"]
        ab = results.get("interleaved", {}).get(tool, {}).get("median_tokens_per_s")
        row = [tool, f"{summary['padding_share'][tool]:.0%}", f"{pre['train_tokens_per_s']:,.0f}", f"{ab:,.0f}" if ab else "n/a", f"{pre['steps']:,}",
               f"{pre['heldout']['mlm_accuracy']:.4f}", f"{pre['heldout']['mlm_perplexity']:.1f}",
               f"{pre['heldout']['nsp_accuracy']:.4f}"]
        row += [f"{results[tool]['fine_tuning'][task]['accuracy']:.4f}" if task in results[tool].get("fine_tuning", {})
                else "n/a" for task in tasks]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpora")
    parser.add_argument("--minutes", type=float, default=30.0, help="pretraining minutes per tool")
    parser.add_argument("--finetune-minutes", type=float, default=5.0, help="per tool and task")
    parser.add_argument("--ft-lr", type=float, default=5e-4, help="fine-tuning rate of the head")
    parser.add_argument("--ft-encoder-scale", type=float, default=0.2)
    parser.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--vocab-size", type=int, default=8000)
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--warmup-fraction", type=float, default=0.1)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="nlprec BertConfig override, repeatable (e.g. norm_first=true); the peer keeps its own")
    parser.add_argument("--heldout-examples", type=int, default=None, help="score a seeded subset (default: all)")
    parser.add_argument("--imdb-docs", type=int, default=None, help="use only this many IMDb train reviews (smoke)")
    parser.add_argument("--imdb-test", type=int, default=2000, help="IMDb test reviews scored after fine-tuning")
    parser.add_argument("--tools", default="nlprec,transformers")
    parser.add_argument("--skip-finetune", action="store_true")
    parser.add_argument("--ab-steps", type=int, default=30, help="interleaved timing steps per tool (0: off)")
    parser.add_argument("--skip-pretrain", action="store_true", help="only the interleaved timing")
    parser.add_argument("--peer-batches", default="padded", choices=["padded", "same"],
                        help="the peer's batches: random and padded (its usual loader) or nlprec's own")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--work", default="/tmp/nlprec-bert-bench")
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "bert.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    corpora = corpora_dir(args.corpora)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()

    train_texts, train_labels = imdb_reviews(corpora, "train")
    test_texts, test_labels = imdb_reviews(corpora, "test")
    imdb_docs = train_texts[:args.imdb_docs] if args.imdb_docs else train_texts
    wiki_valid = read_documents(corpora / "wikitext-2" / "wiki.valid.tokens", "wikitext")
    corpus = merge(as_documents(imdb_docs, "imdb_train"), wiki_valid)
    test_order = np.random.default_rng(args.seed).permutation(len(test_texts))
    held_reviews, clf_test = test_order[:2000], test_order[2000:2000 + args.imdb_test]
    held_docs = merge(read_documents(corpora / "wikitext-2" / "wiki.test.tokens", "wikitext"),
                      as_documents([test_texts[i] for i in held_reviews], "imdb_test_2000"))
    tokenizer = train_tokenizer(work / "spm.model", corpus, args.vocab_size, args.seed)
    encoded = encode_documents(tokenizer, corpus)
    options = PretrainOptions(vocab_size=args.vocab_size, lr=args.lr, warmup_fraction=args.warmup_fraction,
                              max_minutes=args.minutes,
                              precision=args.precision, threads=args.threads, seed=args.seed, device="cpu",
                              progress=False)
    examples = create_examples(encoded, options.max_len, np.random.default_rng(options.seed))
    masking = options.masking_rule(tokenizer.vocab_size)
    data = PretrainingData(encoded, examples, masking, options.batch_size, options.seed, static_masking=True)
    peer_data = data if args.peer_batches == "same" else PretrainingData(
        encoded, examples, masking, options.batch_size, options.seed, static_masking=True, bucket_batches=1)
    datas = {"nlprec": data, "transformers": peer_data}
    held_corpus = encode_documents(tokenizer, held_docs)
    held_examples = create_examples(held_corpus, options.max_len, np.random.default_rng(options.masking_seed))
    if args.heldout_examples and args.heldout_examples < len(held_examples):
        keep = np.sort(np.random.default_rng(options.masking_seed).permutation(len(held_examples))[
            :args.heldout_examples])
        held_examples = type(held_examples)(*(getattr(held_examples, f.name)[keep]
                                              for f in dataclasses.fields(held_examples)))
    held = fixed_batches(held_corpus, held_examples, masking, options.masking_seed, 64, True)
    save_batches(work / "heldout.npz", held)
    prep_seconds = time.perf_counter() - started
    print(f"data: {len(corpus):,} documents, {int(encoded.tokens.size):,} pieces, {len(examples):,} examples; "
          f"held-out {len(held_examples):,} examples; vocabulary {tokenizer.vocab_size:,} ({prep_seconds:.0f} s)",
          file=sys.stderr, flush=True)

    model_config = build_config(BertConfig, {"vocab_size": tokenizer.vocab_size, "max_positions": options.max_len,
                                             **SIZES, **parse_overrides(args.set)})
    makers = {"nlprec": lambda: Bert(model_config),
              "transformers": lambda: PeerBert(tokenizer.vocab_size, options.max_len)}
    tools = [t for t in args.tools.split(",") if t]
    results: dict[str, Any] = {}
    train_precision = trainer_config(options, None, 1, False).precision
    if args.ab_steps:
        results["interleaved"] = interleaved_speed({t: makers[t] for t in tools}, datas, train_precision,
                                                   args.ab_steps, args.seed)
        print(f"interleaved A/B: {results['interleaved']}", file=sys.stderr, flush=True)
    models: dict[str, nn.Module] = {}
    for tool in tools if not args.skip_pretrain else []:
        torch.manual_seed(args.seed)
        models[tool] = makers[tool]()
        results[tool] = {"pretraining": pretrain_one(tool, models[tool], datas[tool], options, held)}

    if not args.skip_finetune and not args.skip_pretrain:
        precision = "bf16" if (args.precision == "bf16" or (args.precision == "auto" and cpu_has_bf16_units())) \
            else "fp32"
        rt_train, rt_train_y, rt_test, rt_test_y = rt_polarity(corpora, args.seed)
        tasks = {
            "rt-polarity (fixed 90/10 split)": (rt_train, rt_train_y, rt_test, rt_test_y, 3),
            f"imdb (train -> {len(clf_test):,} test reviews)": (train_texts, train_labels, [test_texts[i] for i in clf_test],
                                                   test_labels[clf_test], 1),
        }
        for task, (x_train, y_train, x_test, y_test, epochs) in tasks.items():
            train = ClassBatches(encode_texts(tokenizer, x_train, options.max_len), y_train, 32, args.seed)
            test = ClassBatches(encode_texts(tokenizer, x_test, options.max_len), y_test, 64, args.seed)
            for tool in tools:
                torch.manual_seed(args.seed)
                if tool == "nlprec":
                    config = BertClassifierConfig.from_pretrained(dataclasses.asdict(model_config), n_classes=2,
                                                                  encoder_lr_scale=args.ft_encoder_scale)
                    classifier = BertClassifier(config)
                    classifier.load_pretrained(models[tool].state_dict())
                else:
                    classifier = PeerClassifier(models[tool], 2, args.ft_encoder_scale)
                report = fine_tune(classifier, train, test, args, precision, epochs)
                results[tool].setdefault("fine_tuning", {})[task] = report
                print(f"[{tool}] {task}: accuracy {report['accuracy']:.4f} ({report['steps']} steps)",
                      file=sys.stderr, flush=True)

    if "nlprec" in models and "transformers" in models:
        ours, peer = (results[t]["pretraining"]["train_tokens_per_s"] for t in ("nlprec", "transformers"))
        results["speedup"] = ours / peer
    summary = {
        "command": " ".join(["python", "benchmarks/bench_bert.py", *sys.argv[1:]]),
        "aten_cpu_capability": os.environ.get("ATEN_CPU_CAPABILITY"), "cpu_has_bf16_units": cpu_has_bf16_units(),
        "threads": args.threads, "minutes": args.minutes, "finetune_minutes": args.finetune_minutes,
        "sizes": SIZES, "nlprec_config": dataclasses.asdict(model_config), "vocab_size": tokenizer.vocab_size,
        "batch_size": options.batch_size, "peer_batches": args.peer_batches,
        "padding_share": {tool: padding_share(datas[tool]) for tool in tools}, "max_len": options.max_len,
        "lr": options.lr, "warmup_fraction": options.warmup_fraction, "train_examples": len(examples),
        "train_pieces": int(encoded.tokens.size), "heldout_examples": len(held_examples),
        "masking_seed": options.masking_seed, "prep_seconds": prep_seconds, "results": results,
        "wall_seconds": time.perf_counter() - started}
    write_json(Path(args.out), summary)
    if not args.skip_pretrain:
        Path(args.out).with_suffix(".md").write_text(markdown(summary), encoding="utf-8")
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
