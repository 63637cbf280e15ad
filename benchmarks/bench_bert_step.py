"""One BERT pretraining step, nlprec against transformers, on the same full batch: the implementations alone.

Both models have bench_bert's sizes (4 layers x 256, 4 heads, FFN 1,024, vocabulary 8,000) and
take the same batch of 32 x 128 pieces with 15% of them masked (random ids: the speed does not
depend on the text) and the same step: loss, backward, gradient clipping, fused AdamW. Steps
alternate between the tools so that both see the same machine load; the first two of each are
warm-up and the median of the rest is reported. No padding, so loaders and batching play no
part here (bench_bert measures those on the real corpus).

    python benchmarks/bench_bert_step.py --out benchmarks/results/bert_step.json
    ATEN_CPU_CAPABILITY=avx2 python benchmarks/bench_bert_step.py --precision fp32 --out ...   # no bf16 units
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_bert import SIZES, PeerBert, timed_step  # noqa: E402
from common import write_json  # noqa: E402

from nlprec.models.bert import Bert, BertConfig  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def full_batch(batch: int, length: int, vocab: int, seed: int) -> dict:
    """A (batch, length) pretraining batch without padding, 15% of the positions masked."""
    rng = np.random.default_rng(seed)
    ids = torch.from_numpy(rng.integers(5, vocab, (batch, length))).long()  # (B, T)
    ids[:, 0] = 2  # [CLS]
    segments = torch.zeros(batch, length, dtype=torch.long)
    segments[:, length // 2:] = 1
    flat = torch.from_numpy(np.sort(rng.choice(np.arange(batch * length).reshape(batch, length)[:, 1:].ravel(),
                                               int(0.15 * batch * length), replace=False)))  # (M,) never [CLS]
    return {"input_ids": ids, "segment_ids": segments, "mlm_positions": flat, "mlm_labels": ids.view(-1)[flat].clone(),
            "nsp_labels": torch.from_numpy(rng.integers(0, 2, batch)), "n_tokens": batch * length}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=12, help="timed steps per tool, after 2 of warm-up")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--length", type=int, default=128)
    parser.add_argument("--vocab-size", type=int, default=8000)
    parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "bert_step.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    batch = full_batch(args.batch, args.length, args.vocab_size, seed=0)
    torch.manual_seed(0)
    models = {"nlprec": Bert(BertConfig(vocab_size=args.vocab_size, max_positions=args.length, **SIZES)),
              "transformers": PeerBert(args.vocab_size, args.length)}
    optimizers = {name: torch.optim.AdamW(model.param_groups(), lr=1e-4, weight_decay=0.01, fused=True)
                  for name, model in models.items()}
    autocast = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if args.precision == "bf16" \
        else contextlib.nullcontext
    seconds: dict[str, list[float]] = {name: [] for name in models}
    for index in range(args.steps + 2):
        for name in (list(models) if index % 2 == 0 else list(models)[::-1]):
            seconds[name].append(timed_step(models[name], optimizers[name], batch, autocast))
    report = {name: {"median_step_s": float(np.median(times[2:])),
                     "tokens_per_s": batch["n_tokens"] / float(np.median(times[2:])),
                     "step_seconds": [round(t, 4) for t in times]} for name, times in seconds.items()}
    speedup = report["nlprec"]["tokens_per_s"] / report["transformers"]["tokens_per_s"]
    for name, row in report.items():
        print(f"{name:>12}: {row['median_step_s']:.3f} s/step, {row['tokens_per_s']:,.0f} tokens/s")
    print(f"speedup {speedup:.2f}x")
    write_json(args.out, {"command": " ".join(["python", "benchmarks/bench_bert_step.py", *sys.argv[1:]]),
                          "aten_cpu_capability": os.environ.get("ATEN_CPU_CAPABILITY"),
                          "precision": args.precision, "threads": args.threads, "batch": args.batch,
                          "length": args.length, "sizes": SIZES, "vocab_size": args.vocab_size,
                          "results": report, "speedup": speedup})


if __name__ == "__main__":
    main()
