"""`nlprec embed ...`: train word embeddings, query neighbours and analogies, evaluate.

Every command loads a vectors file (.npz, word2vec .bin, or word2vec/fastText .vec/.txt), calls
the loaded vectors' query methods or `nlprec.metrics` and prints an aligned table, or JSON with
`--json`. Subword models (an .npz written by `--arch fasttext`, or a Facebook fastText .bin, told
apart from a word2vec .bin by its magic number) also answer words outside their vocabulary, from
n-grams: their methods do that, so no command asks which kind it loaded.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Literal, Optional

import typer

from nlprec.errors import NlprecError

# The commands import nlprec's numpy/torch/FAISS modules when they run, so `--help` stays instant.

app = typer.Typer(help="Word embeddings: train, similar, analogy, evaluate.", no_args_is_help=True)

VectorsPath = Annotated[Path, typer.Argument(
    help="Vectors file: .npz (nlprec, with n-grams after --arch fasttext), .bin (word2vec binary or fastText "
         "model) or .vec/.txt (word2vec/fastText text).",
    show_default=False)]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
AnalogyMethod = Literal["3cosadd", "3cosmul"]  # nlprec.index.AnalogyMethod, spelled here to keep numpy out
Method = Annotated[AnalogyMethod, typer.Option(
    "--method", help="3cosadd: cos(x, b - a + c); 3cosmul: Levy & Goldberg 2014, eps 1e-3.")]


def _print_json(value: object) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False))


def _scored(rows: list[tuple[str, float]]) -> list[dict]:
    return [{"word": word, "score": score} for word, score in rows]


def _print_table(header: list[str], rows: list[list[str]], align: str, indent: str = "  ") -> None:
    """Columns padded to their widest cell; `align` has one "l" or "r" per column."""
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows)]
    for row in [header, *rows]:
        cells = [cell.ljust(w) if a == "l" else cell.rjust(w) for cell, w, a in zip(row, widths, align)]
        print(indent + "  ".join(cells).rstrip())


def _print_neighbours(rows: list[tuple[str, float]]) -> None:
    _print_table(["rank", "word", "score"],
                 [[str(rank), word, f"{score:.4f}"] for rank, (word, score) in enumerate(rows, 1)], "rlr")


@app.command()
def similar(
    vectors: VectorsPath,
    words: Annotated[list[str], typer.Argument(help="One or more query words.", show_default=False)],
    k: Annotated[int, typer.Option("--k", "-k", min=1, help="Neighbours per query word.")] = 10,
    as_json: AsJson = False,
) -> None:
    """Nearest words by cosine similarity, the query word itself left out.

    With a subword model (fastText) a word outside the vocabulary is composed from its n-grams.

    --json: for one query word, a list of {"word", "score"}, best first; for several, a list of
    {"query", "results": [{"word", "score"}, ...]} in the order the words were given.
    """
    from nlprec.subword_vectors import load_vectors

    results = load_vectors(vectors).most_similar(words, k)
    if as_json:
        _print_json(_scored(results[0]) if len(words) == 1
                    else [{"query": word, "results": _scored(rows)} for word, rows in zip(words, results)])
        return
    for position, (word, rows) in enumerate(zip(words, results)):
        if position:
            print()
        print(f"nearest to {word!r}:")
        _print_neighbours(rows)


@app.command()
def analogy(
    vectors: VectorsPath,
    a: Annotated[str, typer.Argument(help="A in 'A : B :: C : ?'.", show_default=False)],
    b: Annotated[str, typer.Argument(help="B in 'A : B :: C : ?'.", show_default=False)],
    c: Annotated[str, typer.Argument(help="C in 'A : B :: C : ?'.", show_default=False)],
    k: Annotated[int, typer.Option("--k", "-k", min=1, help="Answers to show.")] = 5,
    method: Method = "3cosadd",
    as_json: AsJson = False,
) -> None:
    """Solve the analogy 'A : B :: C : ?', as in man : king :: woman : queen.

    A, B and C themselves are never answers. A subword model composes unseen words from n-grams.

    --json: a list of {"word", "score"}, best first.
    """
    from nlprec.subword_vectors import load_vectors

    rows = load_vectors(vectors).analogy(a, b, c, k, method)
    if as_json:
        _print_json(_scored(rows))
        return
    print(f"{a} : {b} :: {c} : ?  ({method})")
    _print_neighbours(rows)


@app.command()
def evaluate(
    vectors: VectorsPath,
    analogies: Annotated[Optional[Path], typer.Option(
        "--analogies", help="Analogy questions in the questions-words.txt format.", show_default=False)] = None,
    pairs: Annotated[Optional[list[Path]], typer.Option(
        "--pairs", help="Word-pair file (word1 TAB word2 TAB score), e.g. wordsim353.tsv; repeatable.",
        show_default=False)] = None,
    restrict_vocab: Annotated[int, typer.Option(
        "--restrict-vocab", min=1, help="Analogies use only the first N (most frequent) words.")] = 30_000,
    method: Method = "3cosadd",
    vocab_only: Annotated[bool, typer.Option(
        "--vocab-only", help="Subword models: skip unseen pair words instead of composing them from n-grams.")] = False,
    as_json: AsJson = False,
) -> None:
    """Analogy accuracy and word-pair correlations, computed as gensim computes them.

    With a subword model, word pairs with an unseen word are scored on vectors composed from
    n-grams (as fastText's evaluation does) unless --vocab-only; analogies use the vocabulary.

    --json: {"analogy": {"file", "accuracy", "correct", "used", "skipped", "total", "sections",
    "method", "restrict_vocab"} or null, "pairs": {file name: {"spearman", "pearson", "pairs",
    "used", "skipped", "oov_ratio"}}}; a correlation is null when it is undefined.
    """
    if analogies is None and not pairs:
        raise NlprecError("nothing to evaluate: give --analogies FILE and/or --pairs FILE")
    from nlprec.metrics import analogy_accuracy, read_word_pairs, word_similarity
    from nlprec.subword_vectors import load_vectors

    loaded = load_vectors(vectors)
    report: dict = {"analogy": None, "pairs": {}}
    if analogies is not None:
        accuracy = analogy_accuracy(loaded, analogies, restrict_vocab, method=method)
        report["analogy"] = {"file": analogies.name, **accuracy}
    names = [path.name for path in pairs or []]
    for path in pairs or []:
        scored = loaded
        if not vocab_only:  # subword models compose the unseen pair words; plain vectors come back as they are
            words = [word for pair in read_word_pairs(path)[0] for word in pair]
            scored = loaded.with_words([form for word in words for form in (word.lower(), word)])
        report["pairs"][path.name if names.count(path.name) == 1 else str(path)] = word_similarity(scored, path)
    if as_json:
        _print_json(report)
        return
    if report["analogy"] is not None:
        _print_analogy_report(report["analogy"])
    if report["pairs"]:
        _print_pairs_report(report["pairs"])


def _ratio(correct: int, used: int) -> str:
    return f"{correct / used:.4f}" if used else "n/a"


def _print_analogy_report(result: dict) -> None:
    print(f"analogies: {result['file']} ({result['method']}, first {result['restrict_vocab']:,} words)")
    rows = [[name, f"{s['correct']:,}", f"{s['used']:,}", f"{s['skipped']:,}", _ratio(s["correct"], s["used"])]
            for name, s in result["sections"].items()]
    rows.append(["all", f"{result['correct']:,}", f"{result['used']:,}", f"{result['skipped']:,}",
                 _ratio(result["correct"], result["used"])])
    _print_table(["section", "correct", "used", "skipped", "accuracy"], rows, "lrrrr")
    if not result["used"]:
        print("  no question had all four words in the vocabulary: accuracy is reported as 0.0")


def _print_pairs_report(results: dict) -> None:
    def corr(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.4f}"

    print("word pairs:")
    _print_table(["file", "spearman", "pearson", "used", "skipped", "oov"],
                 [[name, corr(r["spearman"]), corr(r["pearson"]), f"{r['used']:,}", f"{r['skipped']:,}",
                   f"{r['oov_ratio']:.1%}"] for name, r in results.items()], "lrrrrr")


@app.command("map")
def word_map(
    vectors: VectorsPath,
    words: Annotated[Optional[list[str]], typer.Argument(
        help="Words to place (also after --words).", show_default=False)] = None,
    words_option: Annotated[Optional[list[str]], typer.Option(
        "--words", help="Words to place: --words king queen man woman (the rest follow as arguments).",
        show_default=False)] = None,
    top: Annotated[Optional[int], typer.Option(
        "--top", min=2, help="Also place the N most frequent words (the file's first N).", show_default=False)] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Picture to write: .png, .svg or .pdf.")] = Path("map.png"),
    method: Annotated[str, typer.Option(help="pca, or tsne (needs scikit-learn).")] = "pca",
    seed: Annotated[int, typer.Option(help="t-SNE seed.")] = 0,
) -> None:
    """A 2-D map of words (PCA of their vectors, or t-SNE), each point labelled, no labels overlapping.

    Words not in the vocabulary are left out with a notice; when none is in it, nothing is written.
    """
    if method not in ("pca", "tsne"):
        raise NlprecError(f"--method must be pca or tsne; got {method!r}")
    from nlprec import plot
    from nlprec.subword_vectors import load_vectors

    plot.check_output(out)
    asked = list(dict.fromkeys([*(words_option or []), *(words or [])]))
    if not asked and top is None:
        raise NlprecError("no words to map: give words (--words king queen man woman) or --top N")
    loaded = load_vectors(vectors)
    chosen = list(dict.fromkeys([*asked, *loaded.keys[:top or 0]]))
    known = [word for word in chosen if word in loaded]
    missing = [word for word in chosen if word not in loaded]
    if not known:
        raise NlprecError(f"none of the words {', '.join(missing[:10])} is in the vocabulary of {vectors} "
                          f"({len(loaded):,} words)")
    if missing:
        print(f"notice: not in the vocabulary, left out: {', '.join(missing)}", file=sys.stderr)
    matrix = loaded.matrix[[loaded.key_to_index[word] for word in known]]  # (W, dim)
    points = plot.project_2d(matrix, method, seed)  # type: ignore[arg-type]
    info = plot.describe(loaded.meta)
    name = "PCA" if method == "pca" else "t-SNE"
    title = f"{name} map of {len(known)} words: " + plot.run_title(info, vectors.name)
    axis = "principal component" if method == "pca" else "t-SNE dimension"
    plot.save(plot.word_map_figure(known, points, title, f"{axis} 1", f"{axis} 2"), out)
    print(f"wrote {out} ({len(known)} words)")


ARCHES = ("skipgram", "cbow", "fasttext", "fasttext-cbow", "glove")
_ONLY_FOR = {"min_n": ("--min-n", "fasttext"), "max_n": ("--max-n", "fasttext"), "buckets": ("--buckets", "fasttext"),
             "x_max": ("--x-max", "glove"), "eta": ("--eta", "glove"),
             "memory_gb": ("--memory-gb", "glove")}


@app.command()
def train(
    corpus: Annotated[Optional[Path], typer.Argument(
        help="Text file, one sentence per line (gzip ok). Omit to train on the built-in demo corpus.",
        show_default=False)] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help=(
        "Output: .bin, .vec/.txt or .npz. word2vec/GloVe: vectors (.bin = word2vec binary). fastText: .npz keeps "
        "the n-grams (nlprec subword format), .bin is a Facebook fastText model, .vec/.txt the vocabulary only."
    ))] = Path("vectors.bin"),
    arch: Annotated[str, typer.Option(help=(
        "skipgram or cbow (word2vec); fasttext (subword skip-gram) or fasttext-cbow; glove."))] = "skipgram",
    objective: Annotated[str, typer.Option(help="negative (sampling) or hierarchical (softmax; word2vec only).")
                         ] = "negative",
    dim: Annotated[int, typer.Option(help="Vector size.")] = 100,
    window: Annotated[Optional[int], typer.Option(
        help="Max context distance on each side (default 5; 10 for glove).", show_default=False)] = None,
    negative: Annotated[int, typer.Option(help="Negative samples per prediction.")] = 5,
    sample: Annotated[float, typer.Option(help="Subsampling threshold for frequent words (0: off).")] = 1e-3,
    min_count: Annotated[int, typer.Option(help="Ignore words seen fewer times.")] = 5,
    max_vocab: Annotated[Optional[int], typer.Option(help="Keep at most this many most frequent words.")] = None,
    epochs: Annotated[Optional[int], typer.Option(
        help="Passes over the corpus (default 5; 15 for glove).", show_default=False)] = None,
    alpha: Annotated[Optional[float], typer.Option(help=(
        "word2vec/fastText: starting learning rate, decayed linearly (default 0.025 skip-gram, 0.05 CBOW and "
        "fastText). glove: exponent of the weighting (x / x-max)^alpha (default 0.75), as glove.c's -alpha; its "
        "learning rate is --eta."))] = None,
    min_alpha: Annotated[float, typer.Option(help="Final learning rate.")] = 0.0001,
    min_n: Annotated[Optional[int], typer.Option(
        help="fasttext: shortest character n-gram (default 3).", show_default=False)] = None,
    max_n: Annotated[Optional[int], typer.Option(
        help="fasttext: longest character n-gram (default 6; 0: no n-grams).", show_default=False)] = None,
    buckets: Annotated[Optional[int], typer.Option(
        help="fasttext: hash buckets of the n-gram vectors (default 2000000).", show_default=False)] = None,
    x_max: Annotated[Optional[float], typer.Option(
        help="glove: counts at or above this get full weight (default 100).", show_default=False)] = None,
    eta: Annotated[Optional[float], typer.Option(
        help="glove: AdaGrad learning rate (default 0.05), as glove.c's -eta.", show_default=False)] = None,
    memory_gb: Annotated[Optional[float], typer.Option(
        help="glove: memory budget of the co-occurrence counter in GiB (default 80% of available).",
        show_default=False)] = None,
    threads: Annotated[int, typer.Option(help="CPU threads.")] = 2,
    seed: Annotated[int, typer.Option(help="Random seed; with --threads 1 runs repeat bit for bit.")] = 1,
    device: Annotated[str, typer.Option(help="auto (CUDA when present), cpu or cuda.")] = "auto",
    backend: Annotated[str, typer.Option(help="auto, numba (CPU kernel) or torch (batched, GPU).")] = "auto",
    chunk_words: Annotated[Optional[int], typer.Option(
        help="word2vec/fastText: corpus words per trainer step, >= 1000 (default 1,000,000 with the numba kernel, "
             "4,096 with the torch backend).", show_default=False)] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the run whose checkpoint is in OUT.run/.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress line.")] = False,
) -> None:
    """Train word vectors: word2vec (skip-gram or CBOW; negative sampling or hierarchical softmax),
    fastText (subword skip-gram or CBOW, negative sampling) or GloVe (co-occurrences, AdaGrad).

    Checkpoints and a JSONL metrics log go to OUT.run/; --resume continues from there. The
    vectors file gets a sidecar OUT.meta.json (inside an .npz: its meta) with the config, seed,
    data sha256 and version.
    """
    choices = {"arch": (arch, ARCHES), "objective": (objective, ("negative", "hierarchical")),
               "backend": (backend, ("auto", "numba", "torch"))}
    for name, (value, allowed) in choices.items():
        if value not in allowed:
            raise NlprecError(f"--{name} must be one of {', '.join(allowed)}; got {value!r}")
    family = "fasttext" if arch.startswith("fasttext") else "glove" if arch == "glove" else "word2vec"
    specific = {"min_n": min_n, "max_n": max_n, "buckets": buckets, "x_max": x_max, "eta": eta,
                "memory_gb": memory_gb}
    for name, value in specific.items():
        flag, owner = _ONLY_FOR[name]
        if value is not None and owner != family:
            raise NlprecError(f"{flag} applies to --arch {owner} only; drop it or use --arch {owner}")
    given = {name: value for name, value in specific.items() if value is not None}
    if family == "glove" and chunk_words is not None:
        raise NlprecError("--chunk-words applies to word2vec and fastText; GloVe batches co-occurrence entries")
    from nlprec.tasks.embeddings import EmbedOptions, FastTextOptions, GloveOptions, print_neighbours, train

    common = dict(dim=dim, min_count=min_count, max_vocab=max_vocab, threads=threads, seed=seed,
                  device=device, backend=backend, progress=not quiet)
    if alpha is not None:  # the rate of word2vec/fastText, the weighting exponent of GloVe
        common["alpha"] = alpha
    demo = corpus is None
    if demo:
        from nlprec_corpora.default_corpus import DEFAULT_PROBES, default_corpus_path

        corpus = default_corpus_path()
        print(f"no corpus given: training on the built-in demo corpus {corpus}")
    if family == "glove":
        options = GloveOptions(window=window or 10, epochs=epochs or 15, **common, **given)
        vectors = train(corpus, out, options, resume=resume)
    else:
        options_cls = FastTextOptions if family == "fasttext" else EmbedOptions
        options = options_cls(arch="cbow" if arch.endswith("cbow") else "skipgram", objective=objective,
                              window=window or 5, negative=negative, sample=sample, epochs=epochs or 5,
                              min_alpha=min_alpha, chunk_words=chunk_words, **common, **given)
        vectors = train(corpus, out, options, resume=resume)
    if demo:
        print("nearest neighbours:")
        print_neighbours(vectors, list(DEFAULT_PROBES)[:6])
