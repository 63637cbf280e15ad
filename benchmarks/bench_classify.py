"""Text classification side by side: nlprec TextCNN (rand, static, non-static) and BiRNN against
scikit-learn TF-IDF + logistic regression and Facebook fastText supervised, same splits, one run.

Parts (issue 12, part 5):
- imdb: train on the 25,000 IMDb train reviews, test on the 25,000 test reviews.
- rt:   rt-polarity, stratified 10-fold cross-validation with seed 0 (`nlprec.metrics.stratified_kfold`,
        the folds `nlprec classify cv` uses); every system sees the same folds.

Pretrained vectors for static/non-static come from `nlprec embed train` (skip-gram, 100-d) on the
IMDb *train* texts only, built once into --cache. All systems see the same tokens: lower-cased
[a-z0-9']+ (nlprec's tokenizer; the peers get the texts pre-tokenized this way).

    python benchmarks/bench_classify.py --parts rt --out benchmarks/results/classify_rt.json
    python benchmarks/bench_classify.py --parts imdb --models tfidf-lr,fasttext,textcnn-non-static
    python benchmarks/bench_classify.py --parts rt,imdb --subset 2000 --folds 3 --epochs 1   # smoke test

Reported per system: accuracy (rt: mean and std over folds), training seconds, prediction texts/s.
"""

from __future__ import annotations

import argparse
import gzip
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, TOKEN, corpora_dir, write_json  # noqa: E402

MODELS = ("tfidf-lr", "fasttext", "textcnn-rand", "textcnn-static", "textcnn-non-static", "birnn")


def read_imdb(corpora: Path, split: str, subset: int | None):
    """LabelledTexts of an IMDb split (label<TAB>text, split on the first TAB), stratified subset if asked."""
    from nlprec.data.classification import read_table

    data = read_table(corpora / "imdb" / f"imdb_{split}.tsv.gz")
    return _subset(data, subset)


def read_rt(corpora: Path, subset: int | None):
    from nlprec.data.classification import read_class_files

    folder = corpora / "rt-polarity"
    data = read_class_files([("pos", folder / "rt-polarity.pos"), ("neg", folder / "rt-polarity.neg")], "latin-1")
    return _subset(data, subset)


def _subset(data, subset: int | None):
    if subset is None or subset >= len(data):
        return data
    rng = np.random.default_rng(0)
    return data.subset(np.sort(rng.permutation(len(data))[:subset]))


def tokens_of(texts: list[str]) -> list[str]:
    return [" ".join(TOKEN.findall(text.lower())) for text in texts]


def imdb_vectors(corpora: Path, cache: Path, threads: int) -> Path:
    """Skip-gram vectors from `nlprec embed train` on the IMDb train texts only (built once)."""
    out = cache / "imdb_train_sg100.bin"
    if out.is_file():
        return out
    texts = cache / "imdb_train_texts.txt"
    with gzip.open(corpora / "imdb" / "imdb_train.tsv.gz", "rt", encoding="utf-8", newline="\n") as lines, \
            open(texts, "w", encoding="utf-8") as handle:
        for line in lines:
            handle.write(line.rstrip("\n").split("\t", 1)[1] + "\n")
    command = ["nlprec", "embed", "train", str(texts), "--out", str(out), "--dim", "100", "--threads", str(threads),
               "--seed", "1", "-q"]
    print("+ " + " ".join(command), flush=True)
    started = time.perf_counter()
    subprocess.run(command, check=True)
    print(f"vectors in {time.perf_counter() - started:.0f} s", flush=True)
    return out


# ----- systems: each trains on (texts, labels) and returns (seconds, predict function) ---------


def run_tfidf_lr(train_texts, train_y):
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    started = time.perf_counter()
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2, token_pattern=r"[a-z0-9']+")
    features = vectorizer.fit_transform(train_texts)
    classifier = LogisticRegression(max_iter=1000).fit(features, train_y)
    seconds = time.perf_counter() - started
    return seconds, lambda texts: classifier.predict(vectorizer.transform(texts))


def run_fasttext(train_texts, train_y, threads: int, epochs: int):
    import fasttext

    started = time.perf_counter()
    texts = tokens_of(train_texts)
    order = np.random.default_rng(0).permutation(len(texts))  # fastText reads the file in order: shuffle
    with tempfile.NamedTemporaryFile("w", suffix=".txt", encoding="utf-8", delete=False) as handle:
        for i in order:  # the classes come sorted (class files, IMDb); SGD over sorted data fails
            handle.write(f"__label__{train_y[i]} {texts[i]}\n")
    model = fasttext.train_supervised(input=handle.name, wordNgrams=2, epoch=epochs, thread=threads, seed=0,
                                      verbose=0)
    Path(handle.name).unlink()
    seconds = time.perf_counter() - started

    def predict(texts):
        # the C++ multilinePredict directly: fastText's Python predict() needs numpy < 2
        labels, _ = model.f.multilinePredict(tokens_of(texts), 1, 0.0, "strict")
        majority = int(np.bincount(train_y).argmax())  # fastText answers nothing for a text without tokens
        return np.array([int(row[0].replace("__label__", "")) if row else majority for row in labels])

    return seconds, predict


def nlprec_options(name: str, vectors: Path | None, args: argparse.Namespace, part: str, max_len: int):
    from nlprec.tasks.classify import ClassifyOptions

    model, _, mode = name.partition("-")
    mode = mode or ("non-static" if vectors else "rand")
    return ClassifyOptions(model=model, embeddings=str(vectors) if mode != "rand" else None, embedding_mode=mode,
                           max_len=max_len or None, min_count=args.min_count, epochs=args.epochs,
                           threads=args.threads, seed=0, lr=args.lr, batch_size=args.batch_size,
                           max_minutes=args.max_minutes.get(model) if part == "imdb" else None,
                           progress=not args.quiet)


def run_nlprec(name: str, train_data, vectors: Path | None, args, part: str, folder: Path, max_len: int):
    from nlprec.tasks.classify import train

    options = nlprec_options(name, vectors, args, part, max_len)
    started = time.perf_counter()
    classifier = train(train_data, folder, options, log=lambda line: print("  " + line, flush=True))
    seconds = time.perf_counter() - started
    return seconds, classifier


def evaluate_system(name, train_data, test_data, classes, vectors, args, part, scratch,
                    max_len: int | None = None) -> dict[str, Any]:
    """Train one system on train_data, score it on test_data (nlprec models: keeping `max_len` tokens,
    default the first of --max-len)."""
    from nlprec.data.classification import label_ids

    train_y = label_ids(train_data.labels, classes, "train")
    test_y = label_ids(test_data.labels, classes, "test")
    if name.startswith(("textcnn", "birnn")):
        max_len = args.max_len[0] if max_len is None else max_len
        seconds, classifier = run_nlprec(name, train_data, vectors, args, part, scratch / f"{name}-{max_len}", max_len)
        started = time.perf_counter()
        predicted = classifier.predict_proba(test_data.texts).argmax(1)
        predict_seconds = time.perf_counter() - started
        fp32 = {}
        if part == "imdb":  # the speed on CPUs without bf16 units too
            started = time.perf_counter()
            classifier.predict_proba(test_data.texts, precision="fp32")
            fp32 = {"predict_texts_per_s_fp32": len(test_data) / (time.perf_counter() - started)}
        history = json.loads((scratch / f"{name}-{max_len}" / "metrics.json").read_text())["epochs"]
        extra = {**fp32, "max_len": max_len, "coverage": classifier.config.get("coverage"),
                 "model_config": classifier.config["model_config"],
                 "epochs_run": len(history), "val_accuracy": [record.get("val_accuracy") for record in history]}
    else:
        if name == "tfidf-lr":
            seconds, predict = run_tfidf_lr(tokens_of(train_data.texts), train_y)
        else:
            seconds, predict = run_fasttext(train_data.texts, train_y, args.threads, args.fasttext_epochs)
        started = time.perf_counter()
        predicted = predict(test_data.texts if name == "fasttext" else tokens_of(test_data.texts))
        predict_seconds = time.perf_counter() - started
        extra = {}
    accuracy = float((np.asarray(predicted) == test_y).mean())
    result = {"accuracy": accuracy, "train_seconds": seconds, "predict_texts_per_s": len(test_y) / predict_seconds,
              **extra}
    print(f"  {name}: accuracy {accuracy:.4f}, train {seconds:.0f} s, predict {result['predict_texts_per_s']:,.0f} "
          "texts/s", flush=True)
    return result


def part_imdb(args, corpora: Path, vectors: Path | None, scratch: Path) -> dict[str, Any]:
    from nlprec.data.classification import check_classes

    train_data, test_data = read_imdb(corpora, "train", args.subset), read_imdb(corpora, "test", args.subset)
    classes = check_classes(train_data.labels, "imdb")
    results = {}
    for name in args.models:
        sweep = args.max_len if name.startswith(("textcnn", "birnn")) else [None]
        for max_len in sweep:  # one row per --max-len value: the speed/accuracy trade-off
            row = name if len(sweep) == 1 else f"{name}, max-len {max_len or 'all'}"
            print(f"imdb {row}", flush=True)
            results[row] = evaluate_system(name, train_data, test_data, classes, vectors, args, "imdb", scratch,
                                           max_len)
    return {"train": len(train_data), "test": len(test_data), "systems": results}


def part_rt(args, corpora: Path, vectors: Path | None, scratch: Path) -> dict[str, Any]:
    from nlprec.data.classification import check_classes, label_ids
    from nlprec.metrics import mean_std, stratified_kfold

    data = read_rt(corpora, args.subset)
    classes = check_classes(data.labels, "rt-polarity")
    folds = stratified_kfold(label_ids(data.labels, classes, "rt"), args.folds, seed=0)
    results = {}
    for name in args.models:
        print(f"rt {name}", flush=True)
        per_fold = [evaluate_system(name, data.subset(tr), data.subset(te), classes, vectors, args, "rt",
                                    scratch / f"fold{k}") for k, (tr, te) in enumerate(folds)]
        results[name] = {"accuracy": mean_std([f["accuracy"] for f in per_fold]),
                         "train_seconds": mean_std([f["train_seconds"] for f in per_fold]),
                         "predict_texts_per_s": mean_std([f["predict_texts_per_s"] for f in per_fold]),
                         "per_fold": per_fold}
        print(f"rt {name}: {args.folds}-fold accuracy {results[name]['accuracy']['mean']:.4f} "
              f"+- {results[name]['accuracy']['std']:.4f}", flush=True)
    return {"examples": len(data), "folds": args.folds, "seed": 0, "systems": results}


def markdown(results: dict[str, Any]) -> str:
    """The BENCHMARKS.md tables of whatever parts `results` holds."""
    lines = []
    if "imdb" in results:
        lines += ["| IMDb (train 25k -> test 25k) | accuracy | training s | prediction texts/s | same, fp32 | epochs |",
                  "| --- | ---: | ---: | ---: | ---: | ---: |"]
        for name, row in results["imdb"]["systems"].items():
            fp32 = f"{row['predict_texts_per_s_fp32']:,.0f}" if "predict_texts_per_s_fp32" in row else ""
            lines.append(f"| {name} | {row['accuracy']:.4f} | {row['train_seconds']:.0f} | "
                         f"{row['predict_texts_per_s']:,.0f} | {fp32} | {row.get('epochs_run', '')} |")
        lines.append("")
    if "rt" in results:
        folds = results["rt"]["folds"]
        lines += [f"| rt-polarity ({folds}-fold CV, seed 0) | mean accuracy | std | training s per fold | "
                  "prediction texts/s |", "| --- | ---: | ---: | ---: | ---: |"]
        for name, row in results["rt"]["systems"].items():
            lines.append(f"| {name} | {row['accuracy']['mean']:.4f} | {row['accuracy']['std']:.4f} | "
                         f"{row['train_seconds']['mean']:.1f} | {row['predict_texts_per_s']['mean']:,.0f} |")
    return "\n".join(lines) + "\n"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", default="imdb,rt", help="comma-separated: imdb, rt")
    parser.add_argument("--models", default=",".join(MODELS), help=f"comma-separated of {', '.join(MODELS)}")
    parser.add_argument("--corpora", default=None)
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "nlprec-bench")
    parser.add_argument("--vectors", type=Path, default=None, help="use these vectors instead of training them")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=10, help="nlprec models: maximum epochs (early stopping)")
    parser.add_argument("--max-len", default="400",
                        help="tokens kept per text (0: all); comma-separated for a sweep (imdb: one row each)")
    parser.add_argument("--min-count", type=int, default=1, help="nlprec models: vocabulary min-count")
    parser.add_argument("--max-minutes-textcnn", type=float, default=None, help="imdb: TextCNN time limit")
    parser.add_argument("--lr", type=float, default=None, help="nlprec models: Adam rate (default: the kind's, 1e-3)")
    parser.add_argument("--batch-size", type=int, default=None, help="nlprec models: examples per batch (default 50)")
    parser.add_argument("--max-minutes-birnn", type=float, default=None, help="imdb: BiRNN time limit")
    parser.add_argument("--fasttext-epochs", type=int, default=20)
    parser.add_argument("--folds", type=int, default=10)
    parser.add_argument("--subset", type=int, default=None, help="smoke test: this many examples per split")
    parser.add_argument("--shared", action="store_true", help="note in the JSON that the machine was shared")
    parser.add_argument("--quiet", action="store_true")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "classify.json")
    args = parser.parse_args()
    args.parts = [p for p in args.parts.split(",") if p]
    args.models = [m for m in args.models.split(",") if m]
    args.max_len = [int(value) for value in args.max_len.split(",") if value]
    for model in args.models:
        if model not in MODELS:
            parser.error(f"unknown model {model!r}; choose from {', '.join(MODELS)}")
    args.max_minutes = {"textcnn": args.max_minutes_textcnn, "birnn": args.max_minutes_birnn}
    return args


def main() -> None:
    import torch

    args = parse_args()
    torch.set_num_threads(args.threads)
    corpora = corpora_dir(args.corpora)
    args.cache.mkdir(parents=True, exist_ok=True)
    needs_vectors = any(m in ("textcnn-static", "textcnn-non-static", "birnn") for m in args.models)
    vectors = args.vectors or (imdb_vectors(corpora, args.cache, args.threads) if needs_vectors else None)
    results: dict[str, Any] = {"command": " ".join(sys.argv), "vectors": str(vectors) if vectors else None,
                               "shared_machine": args.shared, "threads": args.threads, "max_len": args.max_len,
                               "subset": args.subset}
    with tempfile.TemporaryDirectory(prefix="bench-classify-") as scratch:
        for part in args.parts:
            runner = {"imdb": part_imdb, "rt": part_rt}[part]
            started = time.perf_counter()
            results[part] = runner(args, corpora, vectors, Path(scratch) / part)
            results[part]["seconds"] = time.perf_counter() - started
            write_json(args.out, results)  # after each part: a long run keeps what it finished
    print(markdown(results))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
