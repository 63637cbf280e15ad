"""English -> French translation: nlprec's Transformer and GRU-attention, and a Marian peer.

    python benchmarks/bench_translation.py --minutes 30 --out benchmarks/results/translation.json

Data: fra-eng/fra.txt from the shared corpora (Tatoeba via manythings.org, English<TAB>French).
A fixed-seed permutation holds out 2,000 pairs for test; the rest is the training file (from
which training holds out its own validation split). Each architecture trains for --minutes of
wall time on the CPU with --threads threads and its default configuration, keeping the best
validation-BLEU checkpoint. Reported per model: test BLEU and chrF (sacrebleu, 13a, beam 5,
signatures), training tokens/s (non-padding source + target tokens per second of training,
validation excluded), decoding sentences/s for beam 1 and beam 5 (batches of 64), and beam 5
one sentence at a time on --single-sentences sentences (the batching speed-up).

Peer: a from-scratch `transformers` MarianMTModel (d_model 256, 3+3 layers, 4 heads, FFN 1024)
on the same joint 8k sentencepiece model (the first --archs model's) and the same token-budget
batches, trained for the same minutes with AdamW and inverse-sqrt warmup, decoded with `generate`.
It runs after the nlprec models unless --no-peer (it ran only beside the Transformer before
2026-12-02), and is skipped with a message when `transformers` is not installed.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import torch

from common import corpora_dir, write_json
from nlprec.data.pairs import PairsData, encode_pairs, read_pairs, split_indices
from nlprec.io import atomic_write
from nlprec.train.trainer import cpu_has_bf16_units
from nlprec.tasks.translate import TranslateOptions, Translator, score_model, train
from nlprec_cli.options import parse_overrides

TEST_SIZE = 2000


def split_files(corpora: Path, work: Path, seed: int) -> tuple[Path, list[str], list[str]]:
    """Training pairs written to `work`/train.tsv; the held-out test sources and references."""
    pairs = read_pairs(corpora / "fra-eng" / "fra.txt")
    train_idx, test_idx = split_indices(len(pairs.sources), TEST_SIZE, seed)
    train_path = work / "train.tsv"
    with open(train_path, "w", encoding="utf-8") as handle:
        handle.writelines(f"{pairs.sources[i]}\t{pairs.targets[i]}\n" for i in train_idx)
    return train_path, [pairs.sources[i] for i in test_idx], [pairs.targets[i] for i in test_idx]


def decode_speed(translator: Translator, sources: list[str], beam: int, batch_size: int) -> float:
    started = time.perf_counter()
    translator.translate(sources, beam=beam, batch_size=batch_size)
    return len(sources) / (time.perf_counter() - started)


def bench_nlprec(arch: str, train_path: Path, sources: list[str], references: list[str], work: Path,
                 args: argparse.Namespace) -> dict[str, Any]:
    options = TranslateOptions(arch=arch, max_minutes=args.minutes, threads=args.threads, seed=args.seed,
                               target_lang="fr", progress=not args.quiet, val_bleu_sentences=args.val_sentences,
                               precision=args.precision)
    started = time.perf_counter()
    translator = train(train_path, work / arch, options, overrides=parse_overrides(args.set),
                                   log=lambda line: print(line, file=sys.stderr))
    wall = time.perf_counter() - started
    metrics = json.loads((work / arch / "metrics.json").read_text())
    print(f"{arch}: trained in {wall:.0f} s (incl. sentencepiece and validation); decoding the test set",
          file=sys.stderr)
    test = score_model(translator.model, translator.tokenizer, sources, references, beam=5, target_lang="fr")
    single = sources[: args.single_sentences]
    batched_5 = decode_speed(translator, single, 5, 64)
    one_by_one_5 = decode_speed(translator, single, 5, 1)
    return {"arch": arch, "test_bleu": test["bleu"], "test_chrf": test["chrf"],
            "bleu_signature": test["bleu_signature"], "chrf_signature": test["chrf_signature"],
            "train_tokens_per_s": metrics["train_tokens_per_s"], "best_val_bleu": metrics["best_val_bleu"],
            "epochs": len(metrics["epochs"]), "train_wall_seconds": wall,
            "decode_sentences_per_s_beam1": decode_speed(translator, sources, 1, 64),
            "decode_sentences_per_s_beam5": test["sentences_per_s"],
            "beam5_batched_vs_single_speedup": batched_5 / one_by_one_5,
            "beam5_single_sentences_per_s": one_by_one_5,
            "model_config": translator.config["model_config"]}


def bench_marian(train_path: Path, sources: list[str], references: list[str], work: Path,
                 args: argparse.Namespace) -> dict[str, Any]:
    """The `transformers` peer; {"skipped": reason} when the library is missing."""
    torch.set_num_threads(args.threads)  # a fresh process: torch's default is every core
    try:
        from transformers import MarianConfig, MarianMTModel
    except ImportError:
        return {"skipped": "transformers is not installed (pip install transformers) - peer not run"}
    from nlprec.data.pairs import PairsTokenizer
    from nlprec.metrics import translation_scores

    tokenizer = PairsTokenizer.load(work / args.archs.split(",")[0])  # the joint 8k sentencepiece model nlprec used
    pairs = read_pairs(train_path)
    encoded = encode_pairs(tokenizer, pairs.sources, pairs.targets, max_len=100)
    data = PairsData(encoded, None, max_tokens=6000, seed=args.seed)
    vocab = tokenizer.source.vocab_size
    config = MarianConfig(vocab_size=vocab, decoder_vocab_size=vocab, d_model=256, encoder_layers=3,
                          decoder_layers=3, encoder_attention_heads=4, decoder_attention_heads=4,
                          encoder_ffn_dim=1024, decoder_ffn_dim=1024, max_position_embeddings=512,
                          pad_token_id=0, eos_token_id=3, bos_token_id=2, decoder_start_token_id=2,
                          share_encoder_decoder_embeddings=True, scale_embedding=True)
    torch.manual_seed(args.seed)
    model = MarianMTModel(config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.98))
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min((s + 1) / 1000, (1000 / (s + 1)) ** 0.5))
    tokens, seconds, deadline = 0, 0.0, time.perf_counter() + 60 * args.minutes
    model.train()
    for epoch in range(1000):
        for batch in data.train_dataloader(epoch):
            started = time.perf_counter()
            labels = batch["tgt_out"].masked_fill(batch["tgt_out"] == 0, -100)
            loss = model(input_ids=batch["src"], attention_mask=batch["src"] != 0,
                         decoder_input_ids=batch["tgt_in"], labels=labels).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad(set_to_none=True)
            seconds += time.perf_counter() - started
            tokens += batch["n_tokens"]
            if time.perf_counter() >= deadline:
                break
        if time.perf_counter() >= deadline:
            break
    model.eval()
    hypotheses, started = [], time.perf_counter()
    ids = tokenizer.source.encode(sources)
    for start in range(0, len(ids), 64):
        rows = [row + [3] for row in ids[start:start + 64]]
        src = torch.zeros(len(rows), max(map(len, rows)), dtype=torch.long)
        for i, row in enumerate(rows):
            src[i, :len(row)] = torch.tensor(row)
        with torch.no_grad():
            out = model.generate(input_ids=src, attention_mask=src != 0, num_beams=5, max_new_tokens=int(
                1.5 * src.shape[1]) + 10)
        hypotheses += tokenizer.target.decode([[t for t in row.tolist() if t > 3] for row in out])
    decode_seconds = time.perf_counter() - started
    scores = translation_scores(hypotheses, references, "fr")
    return {"arch": "marian (transformers)", "test_bleu": scores["bleu"], "test_chrf": scores["chrf"],
            "bleu_signature": scores["bleu_signature"], "train_tokens_per_s": tokens / max(seconds, 1e-9),
            "decode_sentences_per_s_beam5": len(sources) / decode_seconds}


def markdown(results: dict[str, Any]) -> str:
    rows = ["| model | test BLEU | chrF | train tokens/s | beam 1 sent/s | beam 5 sent/s | beam-5 batch speed-up |",
            "|---|---:|---:|---:|---:|---:|---:|"]

    def cell(value: Any, digits: int = 1) -> str:
        return "n/a" if value is None else f"{value:,.{digits}f}"

    def speedup(value: Any) -> str:
        return "n/a" if value is None else f"{value:.1f}x"

    for entry in results["models"]:
        if "skipped" in entry:
            rows.append(f"| {entry.get('arch', 'peer')} | skipped: {entry['skipped']} | | | | | |")
            continue
        rows.append(f"| {entry['arch']} | {cell(entry['test_bleu'])} | {cell(entry['test_chrf'])} | "
                    f"{cell(entry['train_tokens_per_s'], 0)} | {cell(entry.get('decode_sentences_per_s_beam1'))} | "
                    f"{cell(entry.get('decode_sentences_per_s_beam5'))} | "
                    f"{speedup(entry.get('beam5_batched_vs_single_speedup'))} |")
    return "\n".join(rows) + f"\n\n{results['protocol']}\n"


def in_fresh_process(function: Callable[..., dict[str, Any]], *args: Any) -> dict[str, Any]:
    """Run one model's benchmark in a new process: nothing one model did to the process (its
    allocator settings - nlprec's trainer raises glibc's mmap threshold -, threads, caches) reaches
    the next, and the peer runs as its users would run it."""
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(function, args)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpora", help="shared corpora folder (default: $NLPREC_CORPORA or ../shared/corpora)")
    parser.add_argument("--minutes", type=float, default=30.0, help="training minutes per model")
    parser.add_argument("--archs", default="transformer,gru-attention", help="comma-separated nlprec architectures")
    parser.add_argument("--no-peer", action="store_true", help="skip the transformers Marian peer")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--single-sentences", type=int, default=100, help="sentences for the one-at-a-time speed")
    parser.add_argument("--val-sentences", type=int, default=500, help="validation sentences for val BLEU")
    parser.add_argument("--test-limit", type=int, default=TEST_SIZE, help="score only this many test pairs (smoke)")
    parser.add_argument("--out", default="benchmarks/results/translation.json")
    parser.add_argument("--quiet", action="store_true")
    parser.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"], help="nlprec's autocast")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="nlprec model config override for every arch, repeatable (e.g. decoder_hidden=256)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        train_path, sources, references = split_files(corpora_dir(args.corpora), work, args.seed)
        sources, references = sources[: args.test_limit], references[: args.test_limit]
        models = [in_fresh_process(bench_nlprec, arch, train_path, sources, references, work, args)
                  for arch in args.archs.split(",")]
        if not args.no_peer:
            models.append(in_fresh_process(bench_marian, train_path, sources, references, work, args))
    results = {"task": "fra-eng English->French", "minutes_per_model": args.minutes, "threads": args.threads,
               "precision": args.precision, "overrides": args.set,
               "aten_cpu_capability": os.environ.get("ATEN_CPU_CAPABILITY"),
               "isa_limits": {name: os.environ.get(name) for name in ("MKL_ENABLE_INSTRUCTIONS", "ONEDNN_MAX_CPU_ISA")},
               "cpu_capability": torch.backends.cpu.get_cpu_capability(), "cpu_has_bf16_units": cpu_has_bf16_units(),
               "seed": args.seed, "test_pairs": len(sources), "models": models,
               "protocol": (f"fra.txt, seed-{args.seed} split, {len(sources)} test pairs; {args.minutes} training "
                            f"minutes per model on {args.threads} CPU threads; BLEU/chrF by sacrebleu (13a), beam 5, "
                            "alpha 0.6; tokens/s = non-padding source+target tokens per training second")}
    out = Path(args.out)
    write_json(out, results)
    with atomic_write(out.with_suffix(".md"), "w", encoding="utf-8") as handle:
        handle.write(markdown(results))
    print(markdown(results))


if __name__ == "__main__":
    main()
