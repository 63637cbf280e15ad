"""Whole-process timings of the `nlprec` command, as a user meets them, and a whole-process race with gensim.

    python benchmarks/bench_startup.py --out benchmarks/results/startup.json
    python benchmarks/bench_startup.py --baseline-site /tmp/before-site   # also time an older checkout

Every number is the wall time of a fresh process (interpreter start, imports, work, exit), the
median of --repeats runs, the commands alternating so that a noisy (shared) machine hurts each
alike. Commands: `nlprec --help`, `nlprec embed --help`, `nlprec embed similar` on the 42,593-word
IMDb vectors, `nlprec bleu` on two small files, `nlprec embed train` on the built-in demo corpus
(warm numba cache, and once with an empty NUMBA_CACHE_DIR: the compile cost a first run pays),
and with --rec-model DIR `nlprec rec recommend DIR` for the folder's first user.

Race (--race-repeats, 0 skips it): 1 epoch of CBOW/hierarchical softmax and of skip-gram/negative
sampling on the IMDb benchmark corpus of bench_word2vec.py (train + test, 11.75M tokens), same
settings, 2 threads; nlprec is `nlprec embed train` and gensim is a `python` process running
gensim's `corpus_file` mode, its vocabulary scan and a word2vec binary save, both start to exit.
words/s = corpus tokens / wall seconds.

--baseline-site DIR: a folder holding an older checkout's `nlprec`, `nlprec_cli` and
`nlprec_corpora` packages (e.g. symlinks into `git archive` output); each command is also run
with PYTHONPATH=DIR, alternating with the current install, and reported as "baseline".
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import corpora_dir, count_tokens, imdb_token_file, write_json

SCRIPT = Path(sys.executable).with_name("nlprec")  # the console script itself, without any shim
GENSIM = """
import sys
from gensim.models import Word2Vec
corpus, out, arch, objective = sys.argv[1:5]
model = Word2Vec(corpus_file=corpus, vector_size=100, window=5, sample=1e-3, min_count=5,
                 sg=int(arch == "skipgram"), hs=int(objective == "hierarchical"),
                 negative=5 if objective == "negative" else 0, workers=2, epochs=1, seed=1)
model.wv.save_word2vec_format(out, binary=True)
"""


def timed(command: list[str], env: dict[str, str]) -> dict[str, float]:
    """Wall, user and system seconds of one process; its output is discarded, a failure stops the run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    return {"wall": wall, "user": after.ru_utime - before.ru_utime, "sys": after.ru_stime - before.ru_stime}


def variants(baseline: Path | None) -> dict[str, dict[str, str]]:
    """Environment of each variant: this install, and the baseline checkout first on PYTHONPATH."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    env.pop("PYTHONPATH", None)
    out = {"current": env}
    if baseline is not None:
        out["baseline"] = {**env, "PYTHONPATH": str(baseline)}
    return out


def quick_commands(vectors: Path, work: Path, rec_model: Path | None) -> dict[str, object]:
    """Name -> argv, or a callable giving a fresh argv per run (training writes a new folder)."""
    hyp, ref = work / "hyp.txt", work / "ref.txt"
    hyp.write_text("the cat sat on the mat\na dog runs in the park\n", encoding="utf-8")
    ref.write_text("the cat sat on a mat\nthe dog runs in the park\n", encoding="utf-8")
    counter = iter(range(10**6))
    rec = {}
    if rec_model is not None:  # a user of the model: the first of its users.json
        import json

        user = json.loads((rec_model / "users.json").read_text(encoding="utf-8"))[0]
        rec["nlprec rec recommend (--rec-model)"] = [str(SCRIPT), "rec", "recommend", str(rec_model),
                                                     "--user", str(user), "--k", "10"]
    return {**rec,
        "nlprec --help": [str(SCRIPT), "--help"],
        "nlprec embed --help": [str(SCRIPT), "embed", "--help"],
        "nlprec embed similar (42,593 words)": [str(SCRIPT), "embed", "similar", str(vectors), "good", "-k", "10"],
        "nlprec bleu (2 lines)": [str(SCRIPT), "bleu", str(hyp), str(ref)],
        "nlprec embed train (demo corpus, 5 epochs)": lambda: [
            str(SCRIPT), "embed", "train", "--out", str(work / f"demo-{next(counter)}" / "v.bin"), "-q"],
    }


def run_quick(commands: dict[str, object], envs: dict[str, dict[str, str]], repeats: int) -> list[dict]:
    """Each command `repeats` times per variant, variants alternating run by run."""
    rows = []
    for name, command in commands.items():
        runs: dict[str, list[dict]] = {variant: [] for variant in envs}
        for _ in range(repeats):
            for variant, env in envs.items():
                argv = command() if callable(command) else command
                runs[variant].append(timed(argv, env))
        for variant, timings in runs.items():
            rows.append(_summary(name, variant, timings))
            print(_line(rows[-1]), flush=True)
    return rows


def run_cold_numba(envs: dict[str, dict[str, str]], work: Path, repeats: int) -> list[dict]:
    """`embed train` on the demo corpus with an empty NUMBA_CACHE_DIR (compiles), then the same
    cache folder again (loads what the first run wrote): what the on-disk cache saves."""
    rows = []
    for variant, env in envs.items():
        cold, warm = [], []
        for run in range(repeats):
            cache = work / f"numba-{variant}-{run}"
            cache_env = {**env, "NUMBA_CACHE_DIR": str(cache)}
            for timings in (cold, warm):
                timings.append(timed([str(SCRIPT), "embed", "train", "--out",
                                      str(work / f"cold-{variant}-{run}-{len(timings)}" / "v.bin"), "-q"], cache_env))
        rows.append(_summary("embed train (demo), empty NUMBA_CACHE_DIR: compiles", variant, cold))
        rows.append(_summary("embed train (demo), that NUMBA_CACHE_DIR again: loads", variant, warm))
        print(_line(rows[-2]), _line(rows[-1]), sep="\n", flush=True)
    return rows


def run_race(corpus: Path, tokens: int, envs: dict[str, dict[str, str]], work: Path, repeats: int) -> list[dict]:
    """1 epoch per model and tool, whole processes, the tools alternating."""
    rows = []
    for arch, objective in (("cbow", "hierarchical"), ("skipgram", "negative")):
        tools = {f"nlprec ({variant})": (variant, env) for variant, env in envs.items()}
        tools["gensim 4.4 corpus_file"] = ("gensim", envs["current"])
        runs: dict[str, list[dict]] = {tool: [] for tool in tools}
        for run in range(repeats):
            for tool, (variant, env) in tools.items():
                out = work / f"race-{arch}-{variant}-{run}" / "v.bin"
                out.parent.mkdir(parents=True, exist_ok=True)
                if variant == "gensim":
                    argv = [sys.executable, "-c", GENSIM, str(corpus), str(out), arch, objective]
                else:
                    argv = [str(SCRIPT), "embed", "train", str(corpus), "--out", str(out), "--arch", arch,
                            "--objective", objective, "--epochs", "1", "--threads", "2", "-q"]
                runs[tool].append(timed(argv, env))
                shutil.rmtree(out.parent, ignore_errors=True)
        gensim_speed = tokens / statistics.median(t["wall"] for t in runs["gensim 4.4 corpus_file"])
        for tool, timings in runs.items():
            row = _summary(f"{arch}/{objective} 1 epoch, IMDb", tool, timings)
            row["words_per_s"] = tokens / row["wall_median"]
            row["ratio_vs_gensim"] = row["words_per_s"] / gensim_speed
            rows.append(row)
            print(_line(row), flush=True)
    return rows


def _summary(name: str, variant: str, timings: list[dict]) -> dict:
    return {"command": name, "variant": variant, "runs": len(timings),
            "wall_median": statistics.median(t["wall"] for t in timings),
            "wall_runs": [round(t["wall"], 3) for t in timings],
            "user_median": statistics.median(t["user"] for t in timings),
            "sys_median": statistics.median(t["sys"] for t in timings)}


def _line(row: dict) -> str:
    extra = f"  {row['words_per_s']:,.0f} words/s  {row['ratio_vs_gensim']:.2f}x gensim" if "words_per_s" in row else ""
    return f"{row['command']:<58} {row['variant']:<24} {row['wall_median']:7.3f} s  {row['wall_runs']}{extra}"


def markdown(rows: list[dict]) -> str:
    lines = ["| command | variant | wall s (median) | runs (s) | user s | words/s | vs gensim |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        runs = " / ".join(f"{t:.2f}" for t in r["wall_runs"])
        speed = f"{r['words_per_s']:,.0f}" if "words_per_s" in r else ""
        ratio = f"{r['ratio_vs_gensim']:.2f}x" if "ratio_vs_gensim" in r else ""
        lines.append(f"| {r['command']} | {r['variant']} | {r['wall_median']:.2f} | {runs} | {r['user_median']:.2f} "
                     f"| {speed} | {ratio} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpora", help="folder of the public corpora (default: $NLPREC_CORPORA or ../shared/corpora)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/startup.json"))
    parser.add_argument("--repeats", type=int, default=5, help="runs per quick command and variant (median)")
    parser.add_argument("--cold-repeats", type=int, default=2, help="cold/warm numba cache pairs (0: skip)")
    parser.add_argument("--race-repeats", type=int, default=3, help="1-epoch runs per tool and model (0: skip)")
    parser.add_argument("--baseline-site", type=Path, help="older checkout's packages, timed as 'baseline'")
    parser.add_argument("--rec-model", type=Path, help="a `nlprec rec train` folder: also time `rec recommend`")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "nlprec-bench")
    args = parser.parse_args()
    corpora = corpora_dir(args.corpora)
    corpus = imdb_token_file(corpora, args.cache)
    tokens = count_tokens(corpus)
    vectors = args.cache / "imdb-cbow-hs-1epoch.bin"
    if not vectors.is_file():  # the 42,593-word vectors `embed similar` loads
        subprocess.run([str(SCRIPT), "embed", "train", str(corpus), "--out", str(vectors), "--arch", "cbow",
                        "--objective", "hierarchical", "--epochs", "1", "-q"], check=True)
    envs = variants(args.baseline_site)
    work = Path(tempfile.mkdtemp(prefix="bench-startup-"))
    try:
        for env in envs.values():  # warm each checkout's numba cache (a baseline copy starts without one)
            timed([str(SCRIPT), "embed", "train", "--out", str(work / "warm" / "v.bin"), "-q"], env)
        rows = run_quick(quick_commands(vectors, work, args.rec_model), envs, args.repeats)
        if args.cold_repeats:
            rows += run_cold_numba(envs, work, args.cold_repeats)
        if args.race_repeats:
            rows += run_race(corpus, tokens, envs, work, args.race_repeats)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    write_json(args.out, {"benchmark": "startup", "script": str(SCRIPT), "corpus_tokens": tokens,
                          "load_average": os.getloadavg(), "rows": rows})
    print(markdown(rows))


if __name__ == "__main__":
    main()
