"""The fine-tuning figure of a BERT that went through transformers' format and back.

A 4-layer, 256-wide BERT (nlprec's default sizes) is pretrained by `nlprec bert pretrain` on the
IMDb train reviews for --pretrain-minutes, exported with `nlprec bert export` to a folder that
transformers loads, checked there (AutoModelForMaskedLM + AutoTokenizer: the same pieces and the
same fill-mask top-5 as `nlprec bert fill` on a few sentences), re-imported with `nlprec bert
import`, and both the original and the round-tripped folder are fine-tuned on rt-polarity (a
seeded 90/10 split written to the work folder) with the same command and seed, then scored on
the held-out 10%. Everything runs through the CLI, as a user would; the commands are in the JSON.
`--pretrained FOLDER` starts from a BERT that `nlprec bert pretrain` already made (its own budget).

    python benchmarks/bench_bert_roundtrip.py     # writes benchmarks/results/bert_roundtrip.json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

from common import corpora_dir, write_json  # noqa: E402

SENTENCES = ["the movie was [MASK] .", "i have never seen a [MASK] film like this .",
             "the acting was [MASK] and the plot was [MASK] .", "this is one of the best [MASK] of the year ."]


def nlprec(*argv: str | Path, capture: bool = False) -> str:
    """Run the `nlprec` CLI (this interpreter's), failing loudly; its stdout when `capture`."""
    command = [sys.executable, "-m", "nlprec_cli.main", *map(str, argv)]
    print("$ nlprec " + " ".join(map(str, argv)), file=sys.stderr, flush=True)
    done = subprocess.run(command, check=True, text=True, stdout=subprocess.PIPE if capture else None)
    return done.stdout or ""


def split_rt_polarity(corpora: Path, work: Path, seed: int) -> tuple[Path, Path]:
    """A seeded, stratified 90/10 split of rt-polarity as label<TAB>text files."""
    import numpy as np

    rows = []
    for label in ("pos", "neg"):
        text = (corpora / "rt-polarity" / f"rt-polarity.{label}").read_bytes().decode("latin-1")
        rows += [(label, line.strip()) for line in text.split("\n") if line.strip()]
    order = np.random.default_rng(seed).permutation(len(rows))
    cut = int(0.9 * len(rows))
    paths = (work / "rt_train.tsv", work / "rt_test.tsv")
    for path, part in zip(paths, (order[:cut], order[cut:])):
        path.write_text("".join(f"{rows[i][0]}\t{rows[i][1]}\n" for i in part), encoding="utf-8")
    return paths


def transformers_agrees(pretrained: Path, exported: Path) -> dict[str, object]:
    """transformers' pieces and fill-mask top-5 on SENTENCES against `nlprec bert fill`."""
    import torch
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    from nlprec.tasks.bert import PretrainedBert

    bert = PretrainedBert.load(pretrained)
    model = AutoModelForMaskedLM.from_pretrained(str(exported)).eval()
    tokenizer = AutoTokenizer.from_pretrained(str(exported))
    same_pieces, same_top5 = 0, 0
    for text, guesses in zip(SENTENCES, bert.fill(SENTENCES, 5)):
        batch = tokenizer(text, return_tensors="pt")
        same_pieces += batch["input_ids"][0].tolist() == bert.encode(text)
        with torch.no_grad():
            logits = model(**batch).logits[0][batch["input_ids"][0] == tokenizer.mask_token_id]  # (masks, V)
        logits[:, bert.reserved_ids()] = float("-inf")
        same_top5 += logits.topk(5).indices.tolist() == [[g.token_id for g in mask] for mask in guesses]
    return {"sentences": len(SENTENCES), "same_pieces": same_pieces, "same_fill_top5": same_top5}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpora")
    parser.add_argument("--work", default="/tmp/nlprec-bench/bert_roundtrip", help="model folders and the split")
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "bert_roundtrip.json"))
    parser.add_argument("--pretrain-minutes", type=float, default=5.0)
    parser.add_argument("--pretrained", help="an nlprec BERT folder to start from instead of pretraining one")
    parser.add_argument("--epochs", type=int, default=2, help="fine-tuning epochs (steps, not time: both runs equal)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    corpora, work = corpora_dir(args.corpora), Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    pre, hf, back = work / "pretrained", work / "hf", work / "reimported"
    if args.pretrained:
        pre = Path(args.pretrained)
    if not (pre / "config.json").is_file():
        nlprec("bert", "pretrain", corpora / "imdb" / "imdb_train.tsv.gz", "--column", "1", "--format", "documents",
               "--out", pre, "--max-minutes", args.pretrain_minutes, "--threads", args.threads, "--device", "cpu",
               "--seed", args.seed, "-q")
    for folder in (hf, back):
        if folder.exists():
            import shutil

            shutil.rmtree(folder)
    nlprec("bert", "export", pre, "--out", hf, "-q")
    nlprec("bert", "import", hf, "--out", back, "-q")
    agreement = transformers_agrees(pre, hf)
    train, test = split_rt_polarity(corpora, work, args.seed)
    scores = {}
    for name, init in (("original", pre), ("round_trip", back)):
        out = work / f"clf-{name}"
        if out.exists():
            import shutil

            shutil.rmtree(out)
        nlprec("classify", "train", train, "--model", "bert", "--init", init, "--out", out, "--epochs", args.epochs,
               "--max-len", "64", "--threads", args.threads, "--device", "cpu", "--seed", args.seed, "-q")
        scores[name] = json.loads(nlprec("classify", "evaluate", out, test, "--json", capture=True))
    heldout = json.loads((pre / "config.json").read_text())["heldout"]
    summary = {"benchmark": "bert_roundtrip", "command": " ".join(["python", *sys.argv]),
               "pretrain_minutes": None if args.pretrained else args.pretrain_minutes,
               "pretrained_folder": str(pre), "pretrained_heldout": heldout,
               "transformers_check": agreement,
               "rt_polarity_test_accuracy": {name: s["accuracy"] for name, s in scores.items()},
               "scores": scores, "fine_tune_epochs": args.epochs, "test_texts": sum(1 for _ in open(test))}
    write_json(Path(args.out), summary)
    print(json.dumps({k: summary[k] for k in ("transformers_check", "rt_polarity_test_accuracy")}, indent=2))


if __name__ == "__main__":
    main()
