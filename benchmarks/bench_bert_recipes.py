"""BERT pretraining recipes compared at equal steps: does any leave the unigram plateau sooner?

The 30-minute quality bar (held-out MLM accuracy 0.35) is a question of how fast a recipe
learns per step, not of tokens/s, so this script trains nlprec's BERT (bench_bert's sizes and
corpus: IMDb train + WikiText-2 valid, sentencepiece 8,000, examples of <= 128 pieces, batches
of 32, dynamic masks) for the same number of steps under each recipe, one after the other in one
process, and reports the training MLM accuracy every 100 steps and, at the end, MLM and NSP
accuracy on 1,000 held-out examples (WikiText-2 test + 2,000 IMDb test reviews, masked once
with seed 12345). The schedule is linear warmup (--warmup of the steps) then linear decay to
zero at the last step, so a short run finishes its schedule as a 30-minute run would.

A recipe is `name:key=value,...` over lr, beta2 and BertConfig fields (norm_first, dropout, ...):

    python benchmarks/bench_bert_recipes.py --steps 2000 --recipe post-5e-4: \
        --recipe pre-1e-3-nodrop:lr=1e-3,norm_first=true,dropout=0.0 \
        --out benchmarks/results/bert_recipes_2000.json
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_bert import SIZES, as_documents, imdb_reviews, merge  # noqa: E402
from common import corpora_dir, write_json  # noqa: E402

from nlprec.tasks.bert import PretrainOptions, evaluate_batches  # noqa: E402
from nlprec.data.bert_data import (PretrainingData, create_examples, encode_documents, fixed_batches,  # noqa: E402
                                   read_documents, train_tokenizer)
from nlprec.models.bert import Bert, BertConfig  # noqa: E402
from nlprec.registry import build_config  # noqa: E402
from nlprec.train.trainer import cpu_has_bf16_units  # noqa: E402
from nlprec_cli.options import parse_overrides  # noqa: E402

MASKING_SEED = 12345


def parse_recipe(text: str) -> tuple[str, dict[str, Any]]:
    """`name:lr=1e-3,norm_first=true` -> ("name", {"lr": 0.001, "norm_first": True})."""
    name, _, rest = text.partition(":")
    return name, parse_overrides([item for item in rest.split(",") if item])


def prepare(corpora: Path, work: Path, heldout: int) -> tuple[PretrainingData, list[dict[str, Any]], int]:
    """Training data (batches of 32, dynamic masks, seed 1) and fixed held-out batches."""
    train_texts, _ = imdb_reviews(corpora, "train")
    test_texts, _ = imdb_reviews(corpora, "test")
    corpus = merge(as_documents(train_texts, "imdb_train"),
                   read_documents(corpora / "wikitext-2" / "wiki.valid.tokens", "wikitext"))
    chosen = np.random.default_rng(0).permutation(len(test_texts))[:2000]
    held_docs = merge(read_documents(corpora / "wikitext-2" / "wiki.test.tokens", "wikitext"),
                      as_documents([test_texts[i] for i in chosen], "imdb_test_2000"))
    tokenizer = train_tokenizer(work / "spm.model", corpus, 8000, 0)
    encoded = encode_documents(tokenizer, corpus)
    examples = create_examples(encoded, 128, np.random.default_rng(1))
    held_corpus = encode_documents(tokenizer, held_docs)
    held_examples = create_examples(held_corpus, 128, np.random.default_rng(MASKING_SEED))
    keep = np.sort(np.random.default_rng(MASKING_SEED).permutation(len(held_examples))[:heldout])
    held_examples = type(held_examples)(*(getattr(held_examples, f.name)[keep]
                                          for f in dataclasses.fields(held_examples)))
    masking = PretrainOptions(vocab_size=tokenizer.vocab_size).masking_rule(tokenizer.vocab_size)
    held = fixed_batches(held_corpus, held_examples, masking, MASKING_SEED, 64, True)
    return PretrainingData(encoded, examples, masking, 32, 1), held, tokenizer.vocab_size


def train_recipe(recipe: dict[str, Any], data: PretrainingData, held: list[dict[str, Any]], vocab: int,
                 steps: int, warmup: float, autocast: torch.dtype | None) -> dict[str, Any]:
    """`steps` AdamW steps (weight decay 0.01, clip 1.0) of one recipe; the MLM accuracy curve and held-out scores."""
    recipe = dict(recipe)
    lr, beta2 = float(recipe.pop("lr", 5e-4)), float(recipe.pop("beta2", 0.999))
    torch.manual_seed(1)
    model = Bert(build_config(BertConfig, {"vocab_size": vocab, "max_positions": 128, **SIZES, **recipe}))
    optimizer = torch.optim.AdamW(model.param_groups(), lr=lr, betas=(0.9, beta2), weight_decay=0.01, fused=True)
    warm = max(int(warmup * steps), 1)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min((s + 1) / warm, max(0.0, (steps - s) / max(steps - warm, 1))))
    curve, correct, seen, step, epoch, started = [], 0.0, 0, 0, 0, time.perf_counter()
    model.train()
    while step < steps:
        for batch in data.train_dataloader(epoch):
            with torch.autocast("cpu", dtype=autocast, enabled=autocast is not None):
                parts = model.loss(batch)
            parts["loss"].backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad(set_to_none=True)
            correct, seen, step = correct + float(parts["mlm_accuracy"]), seen + 1, step + 1
            if step % 100 == 0:
                curve.append({"step": step, "train_mlm_accuracy": correct / seen})
                print(f"  step {step}: train MLM accuracy {correct / seen:.4f}", file=sys.stderr, flush=True)
                correct, seen = 0.0, 0
            if step >= steps:
                break
        epoch += 1
    seconds = time.perf_counter() - started
    return {"lr": lr, "beta2": beta2, "config": recipe, "seconds": seconds, "curve": curve,
            "heldout": evaluate_batches(model, held, autocast)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpora")
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--warmup", type=float, default=0.1, help="warmup as a share of --steps")
    parser.add_argument("--recipe", action="append", required=True, help="name:key=value,... (repeatable)")
    parser.add_argument("--heldout-examples", type=int, default=1000)
    parser.add_argument("--precision", choices=["auto", "fp32", "bf16"], default="auto")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--work", default="/tmp/nlprec-bench/bert-recipes")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    precision = args.precision if args.precision != "auto" else ("bf16" if cpu_has_bf16_units() else "fp32")
    autocast = torch.bfloat16 if precision == "bf16" else None
    data, held, vocab = prepare(corpora_dir(args.corpora), work, args.heldout_examples)
    results = {}
    for name, recipe in map(parse_recipe, args.recipe):
        print(f"[{name}] {args.steps} steps", file=sys.stderr, flush=True)
        results[name] = train_recipe(recipe, data, held, vocab, args.steps, args.warmup, autocast)
        print(f"[{name}] held-out MLM {results[name]['heldout']['mlm_accuracy']:.4f} NSP "
              f"{results[name]['heldout']['nsp_accuracy']:.4f}", file=sys.stderr, flush=True)
    write_json(args.out, {"command": " ".join(["python"] + sys.argv), "steps": args.steps, "warmup": args.warmup,
                          "precision": precision, "threads": args.threads, "sizes": SIZES, "batch_size": 32,
                          "heldout_examples": args.heldout_examples, "masking_seed": MASKING_SEED,
                          "recipes": results})


if __name__ == "__main__":
    main()
