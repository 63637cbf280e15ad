"""Translation training-step speed, A/B: configurations take turns step by step in one process.

    python benchmarks/bench_transformer_step.py --variant base: --variant ffn512:d_ff=512 \
        --out benchmarks/results/transformer_step.json

A 2-core machine's speed drifts by 10-20% between minutes, so two separate runs cannot resolve a
5% change. Here every variant trains on the same real fra.txt batches (joint 8k sentencepiece,
the default 4,000-token batches, bf16 autocast on CPUs with bf16 units) and the variants
alternate: batch i goes through variant A, then B, and so on, so drift hits them alike.
Reported per variant: non-padding tokens per second of step time (forward, backward, clipping,
AdamW), the same unit as `nlprec translate train`'s metrics, and the ratio to the first variant.

Run every comparison in both orders and take the geometric mean of the two ratios: in this
process the variant that runs second in each round gained about 10% from its position alone
(2026-11-23: fused vs split self-attention projections gave 0.90x with the fused one first and
1.08x with it second).

A variant is `name:key=value,...` over TransformerConfig fields, plus `kernel=0` to run the
label-smoothed cross-entropy through torch ops instead of the numba kernel, and `split_qkv=1`
to project self-attention's queries and keys/values in two matmuls (the code before they were
fused into one). `model=gru` makes the variant a GRUAttention (its fields then).
`--precision fp32` (with `ATEN_CPU_CAPABILITY=avx2`) measures what a CPU without bf16 units gets.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from common import corpora_dir, write_json
from nlprec.data.pairs import PairsData, PairsTokenizer, encode_pairs, read_pairs, target_piece_counts
from nlprec.models.seq2seq import GRUAttention, GRUAttentionConfig
from nlprec.models.transformer import Transformer, TransformerConfig
from nlprec.nn import losses
from nlprec.nn.attention import MultiHeadAttention
from nlprec.train.memory import keep_freed_memory
from nlprec.train.trainer import cpu_has_bf16_units


def parse_variant(text: str) -> tuple[str, dict[str, Any]]:
    name, _, assignments = text.partition(":")
    fields: dict[str, Any] = {}
    for assignment in filter(None, assignments.split(",")):
        key, _, value = assignment.partition("=")
        fields[key] = int(value) if value.lstrip("-").isdigit() else float(value) if "." in value else value
    return name, fields


FUSED_SELF_ATTEND = MultiHeadAttention.self_attend


def split_self_attend(self: MultiHeadAttention, x: torch.Tensor, keep: torch.Tensor | None = None,
                      causal: bool = False) -> torch.Tensor:
    """Self-attention with separate query and key/value matmuls, for comparison."""
    keys, values = self.keys_values(x)  # 2 x (B, heads, T, d_head)
    return self(x, keys, values, keep, causal)


def build(fields: dict[str, Any]) -> torch.nn.Module:
    if fields.pop("model", "transformer") == "gru":
        return GRUAttention(GRUAttentionConfig(**fields))
    return Transformer(TransformerConfig(**fields))


def train_step(run: dict[str, Any], batch: dict[str, Any], precision: torch.dtype | None) -> None:
    """Forward, backward, clipping and AdamW for one variant."""
    losses.USE_COMPILED_KERNEL = run["kernel"]
    MultiHeadAttention.self_attend = split_self_attend if run["split_qkv"] else FUSED_SELF_ATTEND
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision is not None):
        loss = run["model"].loss(batch)["loss"]
    loss.backward()
    torch.nn.utils.clip_grad_norm_(run["model"].parameters(), 1.0)
    run["optimizer"].step()
    run["optimizer"].zero_grad(set_to_none=True)


def profile_steps(run: dict[str, Any], batches: list[dict[str, Any]], precision: torch.dtype | None) -> list[dict]:
    """The 15 operators with the most self CPU time over `batches`, with their shares."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as profiler:
        for batch in batches:
            train_step(run, batch, precision)
    events = sorted(profiler.key_averages(), key=lambda event: event.self_cpu_time_total, reverse=True)
    total = sum(event.self_cpu_time_total for event in events)
    print(profiler.key_averages().table(sort_by="self_cpu_time_total", row_limit=15))
    return [{"op": event.key, "self_cpu_s": event.self_cpu_time_total / 1e6, "share": event.self_cpu_time_total / total,
             "calls": event.count} for event in events[:15]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpora", help="shared corpora folder (default: $NLPREC_CORPORA or ../shared/corpora)")
    parser.add_argument("--variant", action="append", default=[], help="name:key=value,... (repeatable)")
    parser.add_argument("--steps", type=int, default=60, help="timed steps per variant (after 5 warm-up steps)")
    parser.add_argument("--max-tokens", type=int, default=4000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--precision", default="auto", choices=["auto", "fp32"],
                        help="auto: bf16 autocast where the CPU has bf16 units")
    parser.add_argument("--profile", type=int, default=0,
                        help="after the A/B, profile this many steps of the first variant (torch.profiler)")
    parser.add_argument("--out", default="benchmarks/results/transformer_step.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    keep_freed_memory()  # as the trainer does on a CPU
    pairs = read_pairs(corpora_dir(args.corpora) / "fra-eng" / "fra.txt")
    with tempfile.TemporaryDirectory() as tmp:
        tokenizer = PairsTokenizer.train(Path(tmp), pairs.sources, pairs.targets, vocab_size=8000)
    encoded = encode_pairs(tokenizer, pairs.sources, pairs.targets, max_len=100)
    counts = target_piece_counts(encoded, tokenizer.target.vocab_size)
    batches = list(PairsData(encoded, None, args.max_tokens, seed=0).train_dataloader(0))[: args.steps + 5]
    precision = torch.bfloat16 if args.precision == "auto" and cpu_has_bf16_units() else None
    runs = []
    for name, fields in map(parse_variant, args.variant or ["base:"]):
        kernel = bool(fields.pop("kernel", 1))
        split_qkv = bool(fields.pop("split_qkv", 0))
        torch.manual_seed(0)
        model = build(dict(fields)).train()
        if hasattr(model, "order_output_pieces"):
            model.order_output_pieces(counts)
        runs.append({"name": name, "fields": fields, "kernel": kernel, "split_qkv": split_qkv, "model": model,
                     "seconds": 0.0, "tokens": 0,
                     "optimizer": torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.9, 0.98))})
    for index, batch in enumerate(batches):
        for run in runs:
            started = time.perf_counter()
            train_step(run, batch, precision)
            if index >= 5:
                run["seconds"] += time.perf_counter() - started
                run["tokens"] += batch["n_tokens"]
    profile = profile_steps(runs[0], batches[5:5 + args.profile], precision) if args.profile else None
    base = runs[0]["tokens"] / runs[0]["seconds"]
    rows = [{"variant": run["name"], "fields": run["fields"], "compiled_cross_entropy": run["kernel"],
             "split_qkv": run["split_qkv"],
             "tokens_per_s": run["tokens"] / run["seconds"], "vs_first": run["tokens"] / run["seconds"] / base}
            for run in runs]
    write_json(Path(args.out), {"steps": len(batches) - 5, "max_tokens": args.max_tokens, "threads": args.threads,
                                "bf16": precision is not None,
                                "aten_cpu_capability": os.environ.get("ATEN_CPU_CAPABILITY"), "variants": rows,
                                "profile_of_first_variant": profile})
    for row in rows:
        print(f"{row['variant']:>12}  {row['tokens_per_s']:9,.0f} tokens/s  {row['vs_first']:.3f}x")


if __name__ == "__main__":
    main()
