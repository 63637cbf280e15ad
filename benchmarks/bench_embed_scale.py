"""Whole-process word2vec and fastText runs against gensim 4.4 at 1x, 4x, 16x the IMDb corpus.

    python benchmarks/bench_embed_scale.py --scales 1 --repeats 3 --score \
        --out benchmarks/results/embed_speed.json                       # the speed table
    python benchmarks/bench_embed_scale.py --scales 1,4,16 --variants sg-neg,cbow-hs \
        --out benchmarks/results/embed_scale.json                       # cost as the corpus grows

Corpus: the IMDb token file of bench_word2vec.py (train + test reviews, lower-cased, tokens
[a-z0-9']+, one review per line, 11.75M tokens), and for scale k that file written k times in a
row into --cache (outside the repository). Settings for both tools: 1 epoch, dim 100, window 5,
negative 5 (or hierarchical softmax), sample 1e-3, 2 threads, seed 1; fastText adds n-grams
3..6 in 2M buckets; each tool's default learning rate. min-count is 5 times the scale, so every
scale keeps the same 42,593-word vocabulary (a copied corpus multiplies every count) and the
memory figures compare like with like.

Each run is one fresh process timed from start to exit (import, read, vocabulary, train, write):
nlprec is `nlprec embed train`; gensim is a `python` process running `Word2Vec` / `FastText`
with `corpus_file` (its fast path) and `save_word2vec_format`. The tools alternate run by run.
Reported per run: wall seconds, CPU seconds (user + sys), peak resident memory (the child's
ru_maxrss from wait4); words/s = corpus tokens / wall seconds; seconds per million tokens.
--score also scores the 1x vectors with the same code for both tools (analogy accuracy on
questions-words over the 30,000 most frequent words, as bench_word2vec.py).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import corpora_dir, count_tokens, imdb_token_file, write_json

SCRIPT = Path(sys.executable).with_name("nlprec")  # the console script itself
VARIANTS = {  # name -> (nlprec --arch, --objective, gensim class, sg, hs)
    "sg-neg": ("skipgram", "negative", "Word2Vec", 1, 0),
    "sg-hs": ("skipgram", "hierarchical", "Word2Vec", 1, 1),
    "cbow-neg": ("cbow", "negative", "Word2Vec", 0, 0),
    "cbow-hs": ("cbow", "hierarchical", "Word2Vec", 0, 1),
    "ft-sg-neg": ("fasttext", "negative", "FastText", 1, 0),
}
GENSIM = """
import sys
from gensim.models import FastText, Word2Vec
corpus, out, kind, sg, hs, min_count = sys.argv[1], sys.argv[2], sys.argv[3], *map(int, sys.argv[4:7])
common = dict(corpus_file=corpus, vector_size=100, window=5, sample=1e-3, min_count=min_count, sg=sg, hs=hs,
              negative=0 if hs else 5, workers=2, epochs=1, seed=1)
if kind == "FastText":
    model = FastText(min_n=3, max_n=6, bucket=2_000_000, **common)
else:
    model = Word2Vec(**common)
model.wv.save_word2vec_format(out, binary=True)
"""


def scaled_corpus(base: Path, scale: int, cache: Path) -> Path:
    """`base` written `scale` times in a row (built once into `cache`)."""
    if scale == 1:
        return base
    out = cache / f"imdb_tokens_x{scale}.txt"
    if not out.is_file():
        partial = out.with_suffix(".partial")
        with open(partial, "wb") as handle:
            for _ in range(scale):
                with open(base, "rb") as source:
                    shutil.copyfileobj(source, handle, 16 << 20)
        partial.rename(out)
    return out


def command(tool: str, variant: str, corpus: Path, out: Path, scale: int) -> list[str]:
    arch, objective, kind, sg, hs = VARIANTS[variant]
    min_count = 5 * scale
    if tool == "gensim":
        return [sys.executable, "-c", GENSIM, str(corpus), str(out), kind, str(sg), str(hs), str(min_count)]
    return [str(SCRIPT), "embed", "train", str(corpus), "--out", str(out), "--arch", arch, "--objective", objective,
            "--epochs", "1", "--threads", "2", "--seed", "1", "--min-count", str(min_count), "-q"]


def timed(argv: list[str]) -> dict[str, float]:
    """Wall, CPU seconds and peak RSS (MiB) of one child process; a failure stops the benchmark."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    start = time.perf_counter()
    child = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)
    error = child.stderr.read().decode(errors="replace")
    child.stderr.close()
    if child.returncode != 0:
        raise SystemExit(f"{' '.join(argv[:6])} ... failed ({child.returncode}): {error.strip()[-800:]}")
    return {"wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "peak_rss_mib": usage.ru_maxrss / 1024}


def score(path: Path, wordeval: Path) -> dict[str, float]:
    from nlprec.metrics import analogy_accuracy
    from nlprec.vectors import Vectors

    analogies = analogy_accuracy(Vectors.load(path), wordeval / "questions-words.txt", restrict_vocab=30000)
    return {"analogy": analogies["accuracy"], "analogy_used": analogies["used"]}


def run(variants: list[str], scales: list[int], repeats: int, base: Path, cache: Path, wordeval: Path | None,
        tools: list[str]) -> list[dict]:
    rows = []
    base_tokens = count_tokens(base)
    work = Path(tempfile.mkdtemp(prefix="bench-embed-scale-", dir=cache))
    try:
        for scale in scales:
            corpus = scaled_corpus(base, scale, cache)
            tokens = base_tokens * scale
            for variant in variants:
                runs: dict[str, list[dict]] = {tool: [] for tool in tools}
                scores: dict[str, dict] = {}
                for repeat in range(repeats):
                    for tool in tools:
                        out = work / f"{tool}-{variant}-{scale}-{repeat}" / ("v.vec" if variant.startswith("ft")
                                                                             and tool == "nlprec" else "v.bin")
                        out.parent.mkdir(parents=True)
                        runs[tool].append(timed(command(tool, variant, corpus, out, scale)))
                        print(f"x{scale} {variant} {tool}: {runs[tool][-1]}", flush=True)
                        if wordeval is not None and scale == 1 and repeat == 0:
                            scores[tool] = score(out, wordeval)
                        shutil.rmtree(out.parent)
                for tool, timings in runs.items():
                    wall = statistics.median(t["wall"] for t in timings)
                    rows.append({"variant": variant, "tool": tool, "scale": scale, "tokens": tokens,
                                 "runs": timings, "wall_median": wall, "words_per_s": tokens / wall,
                                 "seconds_per_mtoken": wall / (tokens / 1e6),
                                 "cpu_median": statistics.median(t["cpu"] for t in timings),
                                 "peak_rss_mib": max(t["peak_rss_mib"] for t in timings), **scores.get(tool, {})})
                _ratios(rows)
                for row in rows[-len(tools):]:
                    print(_line(row), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return rows


def _ratios(rows: list[dict]) -> None:
    """words/s of each row against gensim's in the same variant and scale; pair-by-pair ratios too."""
    for row in rows:
        peer = next((r for r in rows if r["tool"] == "gensim" and r["variant"] == row["variant"]
                     and r["scale"] == row["scale"]), None)
        if peer is not None:
            row["ratio_vs_gensim"] = row["words_per_s"] / peer["words_per_s"]
            row["pair_ratios"] = [p["wall"] / t["wall"] for t, p in zip(row["runs"], peer["runs"])]


def _line(row: dict) -> str:
    ratio = f" {row['ratio_vs_gensim']:.2f}x gensim" if "ratio_vs_gensim" in row else ""
    quality = f" analogy {row['analogy']:.3f}" if "analogy" in row else ""
    return (f"x{row['scale']:<3} {row['variant']:<10} {row['tool']:<7} {row['wall_median']:8.2f} s "
            f"{row['words_per_s']:>12,.0f} words/s {row['seconds_per_mtoken']:6.3f} s/Mtok "
            f"{row['peak_rss_mib']:8.0f} MiB{ratio}{quality}")


def markdown(rows: list[dict]) -> str:
    lines = ["| scale | tokens | variant | tool | wall s (runs) | words/s | s per Mtoken | CPU s | peak RSS MiB "
             "| vs gensim | analogy@30k |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        runs = " / ".join(f"{t['wall']:.1f}" for t in r["runs"])
        ratio = f"{r['ratio_vs_gensim']:.2f}x" if "ratio_vs_gensim" in r else ""
        quality = f"{r['analogy']:.3f}" if "analogy" in r else ""
        lines.append(f"| {r['scale']}x | {r['tokens'] / 1e6:.1f}M | {r['variant']} | {r['tool']} | "
                     f"{r['wall_median']:.1f} ({runs}) | {r['words_per_s']:,.0f} | {r['seconds_per_mtoken']:.3f} | "
                     f"{r['cpu_median']:.1f} | {r['peak_rss_mib']:,.0f} | {ratio} | {quality} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpora", help="folder of the public corpora (default: $NLPREC_CORPORA or ../shared/corpora)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/embed_scale.json"))
    parser.add_argument("--scales", default="1,4,16", help="copies of the IMDb corpus, comma-separated")
    parser.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated subset of {list(VARIANTS)}")
    parser.add_argument("--tools", default="nlprec,gensim", help="nlprec, gensim or both (alternating)")
    parser.add_argument("--repeats", type=int, default=1, help="runs per tool, variant and scale (median)")
    parser.add_argument("--score", action="store_true", help="score the 1x vectors (analogy@30k)")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "nlprec-bench")
    args = parser.parse_args()
    corpora = corpora_dir(args.corpora)
    args.cache.mkdir(parents=True, exist_ok=True)
    base = imdb_token_file(corpora, args.cache)
    variants = args.variants.split(",")
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        raise SystemExit(f"unknown variants {unknown}; expected some of {list(VARIANTS)}")
    rows = run(variants, [int(s) for s in args.scales.split(",")], args.repeats, base, args.cache,
               corpora / "wordeval" if args.score else None, args.tools.split(","))
    write_json(args.out, {"benchmark": "embed_scale", "cpu": _cpu_model(), "load_average": os.getloadavg(),
                          "rows": rows})
    print(markdown(rows))


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


if __name__ == "__main__":
    main()
