"""nlprec word2vec against gensim 4.4, side by side on the same corpus and settings.

    python benchmarks/bench_word2vec.py --out benchmarks/results/word2vec.json

Corpus: IMDb train + test reviews (../shared/corpora/imdb), lower-cased, tokens [a-z0-9']+,
one review per line (about 11.75M tokens). Settings: dim 100, window 5, negative 5, sample
1e-3, min-count 5, 2 threads. Speed runs are 1 epoch of skip-gram/negative and of
CBOW/hierarchical; the quality run is 5 epochs of skip-gram/negative. words/s = corpus tokens
x epochs / training seconds (vocabulary building excluded for both; end-to-end times are
reported too). Both tools' vectors are scored by the same code: analogy accuracy on
questions-words restricted to the 30,000 most frequent words, and WordSim-353 Spearman. The
nlprec vectors are also loaded in gensim to check that the nearest neighbours agree.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from common import Timer, corpora_dir, count_tokens, imdb_token_file, write_json
from nlprec.tasks.embeddings import EmbedOptions, train
from nlprec.metrics import analogy_accuracy, word_similarity
from nlprec.vectors import Vectors

SETTINGS = dict(dim=100, window=5, negative=5, sample=1e-3, min_count=5)


def score(vectors: Vectors, wordeval: Path) -> dict[str, float]:
    analogies = analogy_accuracy(vectors, wordeval / "questions-words.txt", restrict_vocab=30000)
    similarity = word_similarity(vectors, wordeval / "wordsim353.tsv")
    return {"analogy": analogies["accuracy"], "analogy_used": analogies["used"],
            "wordsim353": similarity["spearman"]}


def common_questions(path: Path, vocabularies: list[Vectors], out: Path, restrict: int = 30000) -> Path:
    """The questions whose four words are among the `restrict` most frequent words of every model.

    Each tool breaks count ties at the cut-off its own way, so their restricted vocabularies
    differ by a few words; scoring both on these shared questions compares like with like.
    """
    allowed = set.intersection(*({key.upper() for key in v.keys[:restrict]} for v in vocabularies))
    kept = [line for line in path.read_text(encoding="utf-8").splitlines()
            if line.startswith(":") or all(word.upper() in allowed for word in line.split())]
    out.write_text("\n".join(kept) + "\n", encoding="utf-8")
    return out


def run_gensim(corpus: Path, arch: str, objective: str, epochs: int, threads: int, seed: int) -> tuple[Any, dict]:
    from gensim.models import Word2Vec as GensimWord2Vec

    with Timer() as read:
        sentences = [line.split() for line in open(corpus, encoding="utf-8")]
    model = GensimWord2Vec(vector_size=SETTINGS["dim"], window=SETTINGS["window"], sample=SETTINGS["sample"],
                           min_count=SETTINGS["min_count"], sg=int(arch == "skipgram"),
                           hs=int(objective == "hierarchical"),
                           negative=SETTINGS["negative"] if objective == "negative" else 0,
                           workers=threads, seed=seed)
    with Timer() as vocab:
        model.build_vocab(sentences)
    with Timer() as train:
        model.train(sentences, total_examples=len(sentences), epochs=epochs)
    vectors = Vectors(list(model.wv.index_to_key), model.wv.vectors)
    return vectors, {"train_seconds": train.seconds, "end_to_end_seconds": read.seconds + vocab.seconds + train.seconds}


def run_nlprec(corpus: Path, arch: str, objective: str, epochs: int, threads: int, seed: int,
               out: Path) -> tuple[Vectors, dict]:
    options = EmbedOptions(arch=arch, objective=objective, epochs=epochs, threads=threads, seed=seed,
                           progress=False, **SETTINGS)
    with Timer() as total:
        vectors = train(corpus, out, options, log=lambda *_: None)
    history = [line for line in (out.with_name(out.name + ".run") / "metrics.jsonl").read_text().splitlines()
               if '"event": "epoch"' in line]
    import json

    train_seconds = sum(json.loads(line)["seconds"] for line in history[-epochs:])
    return vectors, {"train_seconds": train_seconds, "end_to_end_seconds": total.seconds}


def neighbour_agreement(path: Path, vectors: Vectors, n_words: int = 200, k: int = 10) -> float:
    """Fraction of top-k neighbours gensim finds in our saved file that nlprec also returns."""
    from gensim.models import KeyedVectors

    loaded = KeyedVectors.load_word2vec_format(str(path), binary=True)
    words = vectors.keys[100:100 + n_words]
    ours = vectors.most_similar(words, k=k)
    same = sum(len({w for w, _ in mine} & {w for w, _ in loaded.most_similar(word, topn=k)})
               for word, mine in zip(words, ours))
    return same / (n_words * k)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpora", help="folder of the public corpora (default: $NLPREC_CORPORA or ../shared/corpora)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/word2vec.json"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quality-epochs", type=int, default=5)
    parser.add_argument("--speed-repeats", type=int, default=3,
                        help="1-epoch runs per tool, alternating; words/s is their median")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "nlprec-bench")
    args = parser.parse_args()
    corpora = corpora_dir(args.corpora)
    corpus = imdb_token_file(corpora, args.cache)
    tokens = count_tokens(corpus)
    work = Path(tempfile.mkdtemp(prefix="bench-w2v-"))
    # Warm the compiled kernels so compile time is not counted as training.
    train(_tiny_copy(corpus, work), work / "warm.npz",
                   EmbedOptions(epochs=1, min_count=1, progress=False), log=lambda *_: None)
    runs = []
    plans = [("skipgram", "negative", 1), ("cbow", "hierarchical", 1), ("skipgram", "negative", args.quality_epochs)]
    for arch, objective, epochs in plans:
        trained: dict[str, Vectors] = {}
        speeds: dict[str, list[float]] = {"gensim": [], "nlprec": []}
        timings: dict[str, dict] = {}
        repeats = args.speed_repeats if epochs == 1 else 1
        for _, tool in [(r, t) for r in range(repeats) for t in ("gensim", "nlprec")]:  # alternate the tools
            out = work / f"{tool}-{arch}-{objective}-{epochs}.bin"
            if tool == "gensim":
                vectors, timing = run_gensim(corpus, arch, objective, epochs, args.threads, args.seed)
            else:
                vectors, timing = run_nlprec(corpus, arch, objective, epochs, args.threads, args.seed, out)
            speeds[tool].append(tokens * epochs / timing["train_seconds"])
            trained[tool], timings[tool] = vectors, timing
        for tool in ("gensim", "nlprec"):
            vectors = trained[tool]
            out = work / f"{tool}-{arch}-{objective}-{epochs}.bin"
            row = {"tool": tool, "arch": arch, "objective": objective, "epochs": epochs, **timings[tool],
                   "words_per_s": float(np.median(speeds[tool])), "words_per_s_runs": speeds[tool],
                   **score(vectors, corpora / "wordeval")}
            if tool == "nlprec" and epochs == 1 and objective == "negative":
                row["gensim_neighbour_agreement"] = neighbour_agreement(out, vectors)
            runs.append(row)
            print({k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items()}, flush=True)
        shared = common_questions(corpora / "wordeval" / "questions-words.txt", list(trained.values()),
                                  work / "common-questions.txt")
        for row in runs[-2:]:
            result = analogy_accuracy(trained[row["tool"]], shared, restrict_vocab=30000)
            row["analogy_common"], row["analogy_common_used"] = result["accuracy"], result["used"]
    for row in runs:
        peer = next(r for r in runs if r["tool"] == "gensim" and r["arch"] == row["arch"]
                    and r["objective"] == row["objective"] and r["epochs"] == row["epochs"])
        row["speed_ratio_vs_gensim"] = row["words_per_s"] / peer["words_per_s"]
    write_json(args.out, {"benchmark": "word2vec", "corpus": "imdb train+test", "corpus_tokens": tokens,
                          "settings": {**SETTINGS, "threads": args.threads, "seed": args.seed}, "runs": runs})
    print(markdown(runs))


def _tiny_copy(corpus: Path, work: Path) -> Path:
    tiny = work / "tiny.txt"
    with open(corpus, encoding="utf-8") as source:
        tiny.write_text("".join(line for _, line in zip(range(200), source)))
    return tiny


def markdown(runs: list[dict]) -> str:
    lines = ["| model | epochs | tool | words/s (median) | runs | ratio vs gensim | train s | end-to-end s | analogy@30k "
             "| analogy, shared questions | WordSim-353 |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in runs:
        spread = " / ".join(f"{speed / 1e3:,.0f}k" for speed in r["words_per_s_runs"])
        lines.append(f"| {r['arch']}/{r['objective']} | {r['epochs']} | {r['tool']} | {r['words_per_s']:,.0f} | {spread} | "
                     f"{r['speed_ratio_vs_gensim']:.2f} | {r['train_seconds']:.1f} | {r['end_to_end_seconds']:.1f} | "
                     f"{r['analogy']:.3f} ({r['analogy_used']:,}) | {r['analogy_common']:.3f} "
                     f"({r['analogy_common_used']:,}) | {r['wordsim353']:.3f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
