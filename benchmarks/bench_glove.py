"""nlprec GloVe against the Stanford GloVe C tools, side by side on the same corpus and settings.

    python benchmarks/bench_glove.py --tools nlprec --out benchmarks/results/glove.json
    python benchmarks/bench_glove.py --tools stanford --stanford-build /tmp/GloVe/build

The Stanford tools are not part of nlprec: clone github.com/stanfordnlp/GloVe into a temporary
folder outside the repository, run `make`, and pass its build/ folder.

Corpus as bench_word2vec.py (IMDb train + test, about 11.75M tokens). Settings: min-count 5,
symmetric window 10 with 1/distance weighting, dim 100, x_max 100, alpha 0.75, AdaGrad rate 0.05,
15 epochs, 2 threads; vectors exported as word + context (glove.c `-model 2`). Reported:
co-occurrence seconds (nlprec: encode + count + shuffle excluded, the counter alone, plus
end-to-end; Stanford: vocab_count + cooccur + shuffle), training seconds per epoch, and the same
scores as the other benchmarks (analogy accuracy over the 30,000 most frequent words,
WordSim-353 Spearman). CPU seconds of each whole run (all threads; children's for the C tools)
are reported too: on a shared machine they compare more fairly than wall time. `--tools` runs a
subset; rows merge into the JSON.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from common import Timer, corpora_dir, count_tokens, imdb_token_file, write_json
from nlprec.tasks.embeddings import GloveOptions, train
from nlprec.metrics import analogy_accuracy, word_similarity
from nlprec.vectors import Vectors

SETTINGS = dict(dim=100, window=10, min_count=5, x_max=100.0, alpha=0.75, epochs=15)


def score(vectors: Vectors, wordeval: Path) -> dict[str, float]:
    analogies = analogy_accuracy(vectors, wordeval / "questions-words.txt", restrict_vocab=30000)
    similarity = word_similarity(vectors, wordeval / "wordsim353.tsv")
    return {"analogy": analogies["accuracy"], "analogy_used": analogies["used"], "wordsim353": similarity["spearman"]}


def run_nlprec(corpus: Path, work: Path, args: argparse.Namespace) -> tuple[Vectors, dict]:
    out = work / "nlprec.npz"
    options = GloveOptions(threads=args.threads, seed=args.seed, progress=False, **SETTINGS)
    cpu = time.process_time()
    with Timer() as total:
        vectors = train(corpus, out, options, log=lambda *_: None)
    cpu = time.process_time() - cpu
    records = [json.loads(line) for line in (work / "nlprec.npz.run" / "metrics.jsonl").read_text().splitlines()]
    epochs = [r["seconds"] for r in records if r.get("event") == "epoch"]
    return vectors, {"cooccurrence_seconds": vectors.meta["cooccurrence_seconds"], "train_seconds": sum(epochs),
                     "seconds_per_epoch": sum(epochs) / len(epochs), "end_to_end_seconds": total.seconds,
                     "entries": vectors.meta["cooccurrence_entries"], "cpu_seconds": cpu}


def run_stanford(corpus: Path, work: Path, args: argparse.Namespace) -> tuple[Vectors, dict]:
    build = Path(args.stanford_build)
    if not (build / "glove").is_file():
        raise SystemExit(f"{build}/glove not found: clone and `make` stanfordnlp/GloVe, pass --stanford-build")
    vocab, cooc, shuffled = work / "vocab.txt", work / "cooccurrence.bin", work / "cooccurrence.shuf.bin"
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    with Timer() as counting:
        _pipe([build / "vocab_count", "-min-count", str(SETTINGS["min_count"]), "-verbose", "0"], corpus, vocab)
        _pipe([build / "cooccur", "-memory", "4.0", "-vocab-file", vocab, "-verbose", "0",
               "-window-size", str(SETTINGS["window"])], corpus, cooc)
        _pipe([build / "shuffle", "-memory", "4.0", "-verbose", "0"], cooc, shuffled)
    with Timer() as training:
        subprocess.run([str(build / "glove"), "-save-file", str(work / "stanford"), "-threads", str(args.threads),
                        "-input-file", str(shuffled), "-x-max", str(SETTINGS["x_max"]), "-iter",
                        str(SETTINGS["epochs"]), "-vector-size", str(SETTINGS["dim"]), "-binary", "0",
                        "-vocab-file", str(vocab), "-verbose", "0", "-alpha", str(SETTINGS["alpha"]),
                        "-eta", "0.05", "-model", "2", "-seed", str(args.seed)], check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - children.ru_utime - children.ru_stime
    vectors = _read_glove_text(work / "stanford.txt")
    entries = cooc.stat().st_size // 16  # CREC: int32 word1, int32 word2, float64 value
    return vectors, {"cooccurrence_seconds": counting.seconds, "train_seconds": training.seconds,
                     "seconds_per_epoch": training.seconds / SETTINGS["epochs"],
                     "end_to_end_seconds": counting.seconds + training.seconds, "entries": int(entries),
                     "cpu_seconds": cpu}


def _pipe(command: list, source: Path, target: Path) -> None:
    with open(source, "rb") as stdin, open(target, "wb") as stdout:
        subprocess.run([str(part) for part in command], stdin=stdin, stdout=stdout, check=True)


def _read_glove_text(path: Path) -> Vectors:
    """GloVe's text output: `word v1 ... vd` per line, no header; its <unk> row is dropped."""
    words, rows = [], []
    for line in path.read_text(encoding="utf-8").splitlines():
        word, *values = line.rstrip().split(" ")
        if word != "<unk>":
            words.append(word)
            rows.append(np.array(values, dtype=np.float32))
    return Vectors(words, np.vstack(rows))


RUNNERS = {"nlprec": run_nlprec, "stanford": run_stanford}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpora", help="public corpora folder (default: $NLPREC_CORPORA or ../shared/corpora)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/glove.json"))
    parser.add_argument("--tools", default="nlprec,stanford", help="comma-separated subset of " + ",".join(RUNNERS))
    parser.add_argument("--stanford-build", default="/tmp/stanford-glove/build", help="folder of the built C tools")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "nlprec-bench")
    args = parser.parse_args()
    corpora = corpora_dir(args.corpora)
    corpus = imdb_token_file(corpora, args.cache)
    tokens = count_tokens(corpus)
    work = Path(tempfile.mkdtemp(prefix="bench-glove-"))
    if "nlprec" in args.tools:  # compile the kernels first so compile time is not counted
        tiny = work / "tiny.txt"
        tiny.write_text("".join(line for _, line in zip(range(200), open(corpus, encoding="utf-8"))))
        train(tiny, work / "warm.npz", GloveOptions(epochs=1, min_count=1, progress=False), log=lambda *_: None)
    previous = json.loads(args.out.read_text())["runs"] if args.out.is_file() else []
    runs = [row for row in previous if row["tool"] not in args.tools.split(",")]
    for tool in args.tools.split(","):
        vectors, timing = RUNNERS[tool](corpus, work, args)
        row = {"tool": tool, "epochs": SETTINGS["epochs"], **timing, **score(vectors, corpora / "wordeval")}
        runs.append(row)
        print({k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items()}, flush=True)
    write_json(args.out, {"benchmark": "glove", "corpus": "imdb train+test", "corpus_tokens": tokens,
                          "settings": {**SETTINGS, "threads": args.threads, "seed": args.seed}, "runs": runs})
    print(markdown(runs))


def markdown(runs: list[dict]) -> str:
    lines = ["| tool | entries | co-occurrence s | s/epoch | train s (15 ep) | end-to-end s | CPU s | analogy@30k | "
             "WordSim-353 |", "|---|---|---|---|---|---|---|---|---|"]
    for r in sorted(runs, key=lambda r: r["tool"]):
        lines.append(f"| {r['tool']} | {r['entries']:,} | {r['cooccurrence_seconds']:.1f} | "
                     f"{r['seconds_per_epoch']:.1f} | {r['train_seconds']:.1f} | {r['end_to_end_seconds']:.1f} | "
                     f"{r['cpu_seconds']:.1f} | "
                     f"{r['analogy']:.3f} | {r['wordsim353']:.3f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
