"""`nlprec classify train|predict|evaluate|cv`: thin wrappers over nlprec.tasks.classify.

Nothing heavy is imported at module level (torch, numpy and nlprec.tasks.classify load inside the
commands), so `nlprec --help` stays fast.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from nlprec_cli.options import parse_overrides

app = typer.Typer(help="Text classification: TextCNN and BiRNN on pretrained vectors.", no_args_is_help=True)

ModelDir = Annotated[Path, typer.Argument(help="Model folder written by `nlprec classify train`.",
                                          show_default=False)]
DataFile = Annotated[Optional[Path], typer.Argument(
    help="TSV (label<TAB>text per line) or .csv file; omit when giving --class-file.", show_default=False)]
ClassFiles = Annotated[Optional[list[str]], typer.Option(
    "--class-file", help="LABEL=PATH: one text per line, all of class LABEL; repeat per class.")]
LabelCol = Annotated[str, typer.Option("--label-col", help="Label column: 0-based position or header name.")]
TextCol = Annotated[str, typer.Option("--text-col", help="Text column: 0-based position or header name.")]
Header = Annotated[Optional[bool], typer.Option(
    "--header/--no-header", help="First line names the columns (default: yes when a column is given by name).",
    show_default=False)]
Delimiter = Annotated[Optional[str], typer.Option(
    "--delimiter", help="Field separator (default: ',' for .csv, TAB otherwise).", show_default=False)]
Encoding = Annotated[str, typer.Option("--encoding", help="Text encoding of the files, e.g. utf-8 or latin-1.")]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]
Threads = Annotated[int, typer.Option("--threads", help="CPU threads.")]


def _read(data: Optional[Path], class_files: Optional[list[str]], label_col: str, text_col: str,
          header: Optional[bool], delimiter: Optional[str], encoding: str):
    from nlprec.data.classification import read_labelled

    return read_labelled(data, class_files or (), label_col, text_col, header, delimiter, encoding)


def _options(**values: Any):
    from nlprec.tasks.classify import ClassifyOptions

    return ClassifyOptions(**values)


def _training_options(model: str, embeddings: Optional[Path], embedding_mode: Optional[str], max_len: int,
                      min_count: int, valid_fraction: float, batch_size: Optional[int], lr: Optional[float],
                      epochs: int, patience: int, max_minutes: Optional[float], threads: int, device: str,
                      precision: str, seed: int, quiet: bool, init: Optional[Path] = None):
    return _options(model=model, embeddings=str(embeddings) if embeddings else None, embedding_mode=embedding_mode,
                    max_len=max_len if max_len > 0 else None, min_count=min_count, valid_fraction=valid_fraction,
                    batch_size=batch_size, lr=lr, epochs=epochs, patience=patience, max_minutes=max_minutes,
                    threads=threads, device=device, precision=precision, seed=seed, progress=not quiet,
                    init=str(init) if init else None)


ModelName = Annotated[str, typer.Option("--model", help="textcnn, birnn or bert (fine-tunes --init).")]
Init = Annotated[Optional[Path], typer.Option(
    "--init", help="--model bert: the BERT folder to fine-tune (from `nlprec bert pretrain` or `nlprec bert import`).",
    show_default=False)]
Embeddings = Annotated[Optional[Path], typer.Option(
    "--embeddings", help="Pretrained vectors: .bin/.vec/.npz (e.g. from `nlprec embed train`) or a fastText .bin.",
    show_default=False)]
EmbeddingMode = Annotated[Optional[str], typer.Option(
    "--embedding-mode", help="rand, static, non-static or multichannel (Kim 2014); default non-static with "
    "--embeddings, rand without.", show_default=False)]
MaxLen = Annotated[int, typer.Option("--max-len", help="Keep the first N tokens of each text (0: all).")]
MinCount = Annotated[int, typer.Option("--min-count", help="Vocabulary: words seen at least this often.")]
ValidFraction = Annotated[float, typer.Option("--valid-fraction", help="Stratified share held out for early "
                                                                      "stopping.")]
BatchSize = Annotated[Optional[int], typer.Option("--batch-size", show_default=False,
                                                  help="Examples per batch (default 50; birnn 64, bert 32).")]
Lr = Annotated[Optional[float], typer.Option("--lr", show_default=False,
                                             help="Adam learning rate (default 1e-3; birnn 3e-3, bert 5e-4).")]
Epochs = Annotated[int, typer.Option("--epochs", help="Maximum passes over the training texts.")]
Patience = Annotated[int, typer.Option("--patience", help="Epochs without better validation accuracy before "
                                                          "stopping.")]
MaxMinutes = Annotated[Optional[float], typer.Option("--max-minutes", help="Stop training after this many minutes.",
                                                     show_default=False)]
Sets = Annotated[Optional[list[str]], typer.Option(
    "--set", help="Model config override key=value, repeatable (e.g. --set maps=50 --set cell=gru).")]
Device = Annotated[str, typer.Option("--device", help="auto, cpu or cuda.")]
Precision = Annotated[str, typer.Option(
    "--precision", help="auto (bf16 autocast on CUDA and on CPUs with bf16 units, else fp32), fp32 or bf16.")]
Seed = Annotated[int, typer.Option("--seed", help="Random seed (split, random vectors, weights, batches).")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress line.")]


@app.command()
def train(
    data: DataFile = None,
    class_file: ClassFiles = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Model folder to write.")] = Path("classifier"),
    model: ModelName = "textcnn",
    init: Init = None,
    embeddings: Embeddings = None,
    embedding_mode: EmbeddingMode = None,
    max_len: MaxLen = 400,
    min_count: MinCount = 1,
    valid_fraction: ValidFraction = 0.1,
    batch_size: BatchSize = None,
    lr: Lr = None,
    epochs: Epochs = 10,
    patience: Patience = 2,
    max_minutes: MaxMinutes = None,
    set_: Sets = None,
    label_col: LabelCol = "0",
    text_col: TextCol = "1",
    header: Header = None,
    delimiter: Delimiter = None,
    encoding: Encoding = "utf-8",
    threads: Threads = 2,
    device: Device = "auto",
    precision: Precision = "auto",
    seed: Seed = 0,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the run in OUT/checkpoints.")] = False,
    quiet: Quiet = False,
) -> None:
    """Train a classifier; validation accuracy picks the best epoch. Writes OUT/ (config.json last)."""
    from nlprec.tasks.classify import train as train_classifier

    options = _training_options(model, embeddings, embedding_mode, max_len, min_count, valid_fraction, batch_size, lr,
                                epochs, patience, max_minutes, threads, device, precision, seed, quiet, init)
    overrides = parse_overrides(set_ or [])
    labelled = _read(data, class_file, label_col, text_col, header, delimiter, encoding)
    train_classifier(labelled, out, options, overrides=overrides, resume=resume, log=lambda line: print(line, file=sys.stderr))
    print(f"model written to {out}")


@app.command()
def predict(
    model: ModelDir,
    texts: Annotated[Optional[list[str]], typer.Argument(
        help="Texts to classify; none: read one per line from stdin.", show_default=False)] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Texts per batch.")] = 256,
    threads: Threads = 2,
    device: Annotated[str, typer.Option("--device", help="cpu, cuda or auto.")] = "cpu",
    precision: Precision = "auto",
    as_json: AsJson = False,
) -> None:
    """One row per text: label<TAB>probability. --json: {"classes", "predictions": [{"label",
    "probability", "probabilities": {class: p}}]}."""
    import torch

    from nlprec.tasks.classify import Classifier

    torch.set_num_threads(threads)
    classifier = Classifier.load(model, device)
    if texts:
        lines = list(texts)
    else:
        lines = sys.stdin.read().split("\n")  # "\n" only: texts may hold U+0085
        if lines and lines[-1] == "":
            lines.pop()
    proba = classifier.predict_proba(lines, batch_size, precision)  # (N, C)
    best = proba.argmax(1)
    classes = classifier.classes
    if as_json:
        rows = [{"label": classes[c], "probability": float(p[c]),
                 "probabilities": {name: float(v) for name, v in zip(classes, p)}} for p, c in zip(proba, best)]
        print(json.dumps({"classes": classes, "predictions": rows}, indent=2))
        return
    sys.stdout.write("".join(f"{classes[c]}\t{p[c]:.6f}\n" for p, c in zip(proba, best)))
    sys.stdout.flush()


@app.command()
def evaluate(
    model: ModelDir,
    data: DataFile = None,
    class_file: ClassFiles = None,
    label_col: LabelCol = "0",
    text_col: TextCol = "1",
    header: Header = None,
    delimiter: Delimiter = None,
    encoding: Encoding = "utf-8",
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Texts per batch.")] = 256,
    threads: Threads = 2,
    device: Annotated[str, typer.Option("--device", help="cpu, cuda or auto.")] = "cpu",
    precision: Precision = "auto",
    as_json: AsJson = False,
    plot: Annotated[Optional[Path], typer.Option(
        "--plot", help="Also draw the confusion matrix (.png, .svg or .pdf).", show_default=False)] = None,
) -> None:
    """Accuracy, macro-F1, per-class precision/recall and the confusion matrix on a labelled file.

    --json: {"accuracy", "macro_f1", "examples", "classes", "per_class": {class: {"precision",
    "recall", "f1", "support"}}, "confusion_matrix" (rows true, columns predicted), "predict_seconds",
    "texts_per_s", "data", "data_sha256"}.
    """
    import torch

    from nlprec.tasks.classify import Classifier, evaluate as evaluate_classifier

    if plot is not None:
        from nlprec.plot import check_output

        check_output(plot)  # a bad suffix costs nothing
    torch.set_num_threads(threads)
    classifier = Classifier.load(model, device)
    labelled = _read(data, class_file, label_col, text_col, header, delimiter, encoding)
    report = evaluate_classifier(classifier, labelled, batch_size, precision)
    if plot is not None:
        _plot_confusion(classifier, report, plot)
    if as_json:
        print(json.dumps(report, indent=2))
        return
    print(f"accuracy {report['accuracy']:.4f}  macro-F1 {report['macro_f1']:.4f}  "
          f"({report['examples']:,} texts, {report['texts_per_s']:,.0f} texts/s)")
    width = max(len(name) for name in report["classes"])
    print(f"{'class':<{width}}  precision  recall  f1      support")
    for name, row in report["per_class"].items():
        print(f"{name:<{width}}  {row['precision']:.4f}     {row['recall']:.4f}  {row['f1']:.4f}  {row['support']}")
    print("confusion matrix (rows: true, columns: predicted):")
    for name, row in zip(report["classes"], report["confusion_matrix"]):
        print(f"{name:<{width}}  " + " ".join(f"{v:>7}" for v in row))


def _plot_confusion(classifier: Any, report: dict[str, Any], out: Path) -> None:
    """The confusion matrix of `report`, titled with the model's provenance and the data file."""
    from nlprec import plot

    info = plot.describe(classifier.config)
    title = (f"Confusion matrix: {plot.run_title(info, 'classifier')}\n"
             f"{Path(str(report['data'])).name}, accuracy {report['accuracy']:.3f}")
    plot.save(plot.confusion_figure(report["classes"], report["confusion_matrix"], title=title), out)
    print(f"wrote {out}", file=sys.stderr)


@app.command()
def cv(
    data: DataFile = None,
    class_file: ClassFiles = None,
    folds: Annotated[int, typer.Option("--folds", help="Number of stratified folds.")] = 10,
    model: ModelName = "textcnn",
    init: Init = None,
    embeddings: Embeddings = None,
    embedding_mode: EmbeddingMode = None,
    max_len: MaxLen = 400,
    min_count: MinCount = 1,
    valid_fraction: ValidFraction = 0.1,
    batch_size: BatchSize = None,
    lr: Lr = None,
    epochs: Epochs = 10,
    patience: Patience = 2,
    max_minutes: MaxMinutes = None,
    set_: Sets = None,
    label_col: LabelCol = "0",
    text_col: TextCol = "1",
    header: Header = None,
    delimiter: Delimiter = None,
    encoding: Encoding = "utf-8",
    threads: Threads = 2,
    device: Device = "auto",
    precision: Precision = "auto",
    seed: Seed = 0,
    quiet: Quiet = False,
    as_json: AsJson = False,
) -> None:
    """Stratified k-fold cross-validation: accuracy and macro-F1 per fold, mean and std (as Kim 2014
    reports). Early stopping in each fold uses a split of that fold's training part only."""
    from nlprec.tasks.classify import cv as cross_validate

    options = _training_options(model, embeddings, embedding_mode, max_len, min_count, valid_fraction, batch_size, lr,
                                epochs, patience, max_minutes, threads, device, precision, seed, quiet, init)
    overrides = parse_overrides(set_ or [])
    labelled = _read(data, class_file, label_col, text_col, header, delimiter, encoding)
    report = cross_validate(labelled, folds, options, overrides, log=lambda line: print(line, file=sys.stderr))
    if as_json:
        print(json.dumps(report, indent=2))
        return
    accuracy, f1 = report["accuracy"], report["macro_f1"]
    print(f"{folds}-fold accuracy {accuracy['mean']:.4f} +- {accuracy['std']:.4f}, "
          f"macro-F1 {f1['mean']:.4f} +- {f1['std']:.4f} ({report['examples']:,} texts, seed {seed})")
