"""nlprec fastText against Facebook's fastText (fasttext-wheel) and gensim 4.4's FastText.

    python benchmarks/bench_fasttext.py --tools nlprec,facebook,gensim --out benchmarks/results/fasttext.json

Corpus and settings as bench_word2vec.py: IMDb train + test reviews, lower-cased, tokens
[a-z0-9']+, one review per line (about 11.75M tokens); skip-gram, dim 100, window 5, negative 5,
sample 1e-3, min-count 5, character n-grams 3..6 in 2,000,000 buckets, 1 epoch, 2 threads, each
tool's own default learning rate (nlprec and fastText 0.05, gensim 0.025). words/s = corpus
tokens x epochs / training seconds: nlprec and gensim time training alone; Facebook's call also
reads the corpus and builds its dictionary, so its end-to-end time is its training time. The CPU
seconds of each whole run (all threads, process time) are reported too: on a shared machine they
compare the tools more fairly than wall time.
All vectors are scored by the same code (analogy accuracy on questions-words over the 30,000 most
frequent words, WordSim-353 Spearman) on the vocabulary's vectors; Facebook's .bin is read with
nlprec's own reader. `--tools` runs a subset; rows merge into the JSON, so tools can run apart.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from common import Timer, corpora_dir, count_tokens, imdb_token_file, write_json
from nlprec.tasks.embeddings import FastTextOptions, train
from nlprec.metrics import analogy_accuracy, word_similarity
from nlprec.vectors import Vectors

SETTINGS = dict(dim=100, window=5, negative=5, sample=1e-3, min_count=5, min_n=3, max_n=6, buckets=2_000_000)


def score(vectors: Vectors, wordeval: Path) -> dict[str, float]:
    analogies = analogy_accuracy(vectors, wordeval / "questions-words.txt", restrict_vocab=30000)
    similarity = word_similarity(vectors, wordeval / "wordsim353.tsv")
    return {"analogy": analogies["accuracy"], "analogy_used": analogies["used"], "wordsim353": similarity["spearman"]}


class CpuTimer:
    """`with CpuTimer() as t: ...; t.seconds`: CPU seconds of this process, all threads."""

    def __enter__(self) -> CpuTimer:
        self.start = time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.process_time() - self.start


def run_nlprec(corpus: Path, work: Path, epochs: int, threads: int, seed: int) -> tuple[Vectors, dict]:
    out = work / "nlprec.npz"
    options = FastTextOptions(arch="skipgram", epochs=epochs, threads=threads, seed=seed, progress=False, **SETTINGS)
    with Timer() as total, CpuTimer() as cpu:
        vectors = train(corpus, out, options, log=lambda *_: None)
    records = [json.loads(line) for line in (work / "nlprec.npz.run" / "metrics.jsonl").read_text().splitlines()]
    train_seconds = sum(r["seconds"] for r in records if r.get("event") == "epoch")
    return vectors, {"train_seconds": train_seconds, "end_to_end_seconds": total.seconds, "cpu_seconds": cpu.seconds}


def run_facebook(corpus: Path, work: Path, epochs: int, threads: int, seed: int) -> tuple[Vectors, dict]:
    import fasttext

    from nlprec.subword_vectors import load_vectors

    with Timer() as total, CpuTimer() as cpu:
        model = fasttext.train_unsupervised(
            str(corpus), model="skipgram", dim=SETTINGS["dim"], ws=SETTINGS["window"], neg=SETTINGS["negative"],
            t=SETTINGS["sample"], minCount=SETTINGS["min_count"], minn=SETTINGS["min_n"], maxn=SETTINGS["max_n"],
            bucket=SETTINGS["buckets"], epoch=epochs, thread=threads, verbose=0)  # fasttext-wheel 0.9.2: no seed
    model.save_model(str(work / "facebook.bin"))
    vectors = load_vectors(work / "facebook.bin")  # nlprec's reader; checked against fastText below
    probe = ["movie", "unwatchableness"]
    gap = max(float(np.abs(vectors.vector(w) - model.get_word_vector(w)).max()) for w in probe)
    return vectors, {"train_seconds": total.seconds, "end_to_end_seconds": total.seconds, "cpu_seconds": cpu.seconds,
                     "reader_max_abs_diff": gap}


def run_gensim(corpus: Path, work: Path, epochs: int, threads: int, seed: int) -> tuple[Vectors, dict]:
    from gensim.models import FastText as GensimFastText

    with CpuTimer() as cpu:
        with Timer() as read:
            sentences = [line.split() for line in open(corpus, encoding="utf-8")]
        model = GensimFastText(vector_size=SETTINGS["dim"], window=SETTINGS["window"], negative=SETTINGS["negative"],
                               sample=SETTINGS["sample"], min_count=SETTINGS["min_count"], min_n=SETTINGS["min_n"],
                               max_n=SETTINGS["max_n"], bucket=SETTINGS["buckets"], sg=1, workers=threads, seed=seed)
        with Timer() as vocab:
            model.build_vocab(sentences)
        with Timer() as train:
            model.train(sentences, total_examples=len(sentences), epochs=epochs)
    vectors = Vectors(list(model.wv.index_to_key), model.wv.vectors)
    return vectors, {"train_seconds": train.seconds, "end_to_end_seconds": read.seconds + vocab.seconds + train.seconds,
                     "cpu_seconds": cpu.seconds}


RUNNERS = {"nlprec": run_nlprec, "facebook": run_facebook, "gensim": run_gensim}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpora", help="public corpora folder (default: $NLPREC_CORPORA or ../shared/corpora)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/fasttext.json"))
    parser.add_argument("--tools", default="nlprec,facebook,gensim", help="comma-separated subset of the tools")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "nlprec-bench")
    args = parser.parse_args()
    corpora = corpora_dir(args.corpora)
    corpus = imdb_token_file(corpora, args.cache)
    tokens = count_tokens(corpus)
    work = Path(tempfile.mkdtemp(prefix="bench-fasttext-"))
    if "nlprec" in args.tools:  # compile the kernels first so compile time is not counted as training
        tiny = work / "tiny.txt"
        tiny.write_text("".join(line for _, line in zip(range(200), open(corpus, encoding="utf-8"))))
        train(tiny, work / "warm.npz", FastTextOptions(epochs=1, min_count=1, buckets=1000, progress=False),
                       log=lambda *_: None)
    previous = json.loads(args.out.read_text())["runs"] if args.out.is_file() else []
    runs = [row for row in previous if row["tool"] not in args.tools.split(",")]
    for tool in args.tools.split(","):
        vectors, timing = RUNNERS[tool](corpus, work, args.epochs, args.threads, args.seed)
        row = {"tool": tool, "epochs": args.epochs, **timing,
               "words_per_s": tokens * args.epochs / timing["train_seconds"], **score(vectors, corpora / "wordeval")}
        runs.append(row)
        print({k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items()}, flush=True)
    write_json(args.out, {"benchmark": "fasttext skip-gram", "corpus": "imdb train+test", "corpus_tokens": tokens,
                          "settings": {**SETTINGS, "threads": args.threads, "seed": args.seed}, "runs": runs})
    print(markdown(runs))


def markdown(runs: list[dict]) -> str:
    lines = ["| tool | epochs | words/s | train s | end-to-end s | CPU s (whole run) | analogy@30k | WordSim-353 |",
             "|---|---|---|---|---|---|---|---|"]
    for r in sorted(runs, key=lambda r: r["tool"]):
        lines.append(f"| {r['tool']} | {r['epochs']} | {r['words_per_s']:,.0f} | {r['train_seconds']:.1f} | "
                     f"{r['end_to_end_seconds']:.1f} | {r['cpu_seconds']:.1f} | {r['analogy']:.3f} | "
                     f"{r['wordsim353']:.3f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
