"""Train, load, run and evaluate text classifiers: the API behind `nlprec classify`.

`train(data, out, options)` holds out a seeded stratified validation split, fits an encoder on
the training texts, builds the model and trains it through the shared trainer with early
stopping on validation accuracy; the best epoch becomes the model. `Classifier.load(folder)`
gives batched `predict`/`predict_proba`; `evaluate` scores a labelled file; `cv` runs a
stratified k-fold cross-validation (each fold's early stopping uses a split of its own training
part, never its test fold). The model folder holds:

    config.json     format, model kind, registry name, model config, classes, encoder entry,
                    options, trainer config, seed, data sha256, embeddings coverage, nlprec
                    version (written last: its presence marks a finished model)
    encoder.json    the encoder's files (the word encoder: its vocabulary)
    model.pt        the weights, a plain state dict of CPU tensors (read by nlprec.io.read_weights)
    metrics.json    validation report of the best epoch, per-epoch records, timings
    checkpoints/    the trainer's last.pt and best.pt (`resume=True` continues from last.pt)

How another model kind plugs in (the BERT classifier, `--model bert --init DIR`): everything
model-specific sits behind two small interfaces, so `train`, `Classifier`, `evaluate` and `cv`
stay as they are.

1. An encoder class (see `nlprec.data.classification.WordEncoder`): `kind`, `vocab_size`,
   `pad_id`, `encode(texts) -> Encoded` (ragged ids, already cut to the model's length; a
   sentencepiece encoder adds [CLS]/[SEP] here), `save(folder) -> dict` (writes its files, e.g.
   a sentencepiece model, and returns the JSON entry kept in config.json, with "kind") and the
   classmethod `load(entry, folder)`. Register it in `ENCODERS[kind]`.
2. A `ModelKind` in `KINDS[name]`: `prepare(options, log)` loads what the kind needs once
   (vectors; a pretrained BERT folder from `options.init`), `fit_encoder(texts, options, context)`
   builds the encoder (a BERT kind loads the pretrained one instead of fitting), and
   `build_model(encoder, n_classes, options, overrides, context, log) -> (model, info)` returns a
   registered model (family "classification": `model(batch) -> logits (B, C)`, `loss(batch)`,
   `predict_proba(batch)`, constructible as `model_cls(config)` for loading) and a JSON dict
   recorded in config.json. Batches are {"tokens" (B, T), "lengths" (B,), "labels" (B,)}; a
   BERT model derives its attention mask from `lengths` (or `tokens != pad_id`).
   `default_lr`/`default_batch_size` let a kind pick its own defaults (fine-tuning wants 2e-5).
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Literal, Sequence

import numpy as np
import torch
from torch import nn

from nlprec import __version__
from nlprec.data.bert_data import TOKENIZER_FILE
from nlprec.data.classification import (ENCODERS, ClassificationData, LabelledTexts, PieceEncoder, WordEncoder,
                                        check_classes, embedding_init, label_ids, pad_rows, sorted_batches,
                                        stratified_split)
from nlprec.data.tokenize import RegexTokenizer
from nlprec.errors import NlprecError, require
from nlprec.io import (atomic_write, config_errors, read_json, read_model_config, read_weights, sha256_file,
                       write_model_folder)
from nlprec.metrics import classification_report, mean_std, stratified_kfold
from nlprec.registry import build_config, get_model
from nlprec.tasks.bert import PretrainedBert
from nlprec.train import Trainer, TrainerConfig, load_checkpoint
from nlprec.train.trainer import autocast, resolve_device, resolve_precision

FORMAT = "nlprec-classifier-v1"
EmbeddingModeName = Literal["rand", "static", "non-static", "multichannel"]


@dataclass(frozen=True)
class ClassifyOptions:
    """Everything `nlprec classify train` sets besides the model config (see the model's config)."""

    model: str = "textcnn"  # model kind, a key of KINDS: "textcnn", "birnn" or "bert"
    init: str | None = None  # --model bert: the pretrained folder (`nlprec bert pretrain`) to fine-tune
    embeddings: str | None = None  # pretrained vectors (.bin/.vec/.npz, fastText .bin); None: random
    embedding_mode: EmbeddingModeName | None = None  # Kim's modes; None: non-static with embeddings, else rand
    max_len: int | None = 400  # keep the first this many tokens of each text, >= 1 (None: all)
    min_count: int = 1  # vocabulary: words seen at least this often in the training texts, >= 1
    max_vocab: int | None = None  # vocabulary: at most this many most frequent words
    token_pattern: str | None = None  # tokenizer regex; None: the embeddings' (as `embed train`), else [a-z0-9']+
    lowercase: bool | None = None  # lower-case before tokenizing; None: as the embeddings, else True
    valid_fraction: float = 0.1  # stratified share held out for early stopping, in [0, 0.5]
    batch_size: int | None = None  # examples per batch, >= 1 (None: the kind's default: 50, BiRNN 64, BERT 32)
    lr: float | None = None  # Adam learning rate, > 0 (None: the kind's default: 1e-3, BiRNN 3e-3, BERT 5e-4)
    weight_decay: float = 0.0  # L2 on the weights, >= 0
    epochs: int = 10  # maximum passes over the training texts, >= 1
    patience: int = 2  # epochs without better validation accuracy before stopping, >= 1
    max_minutes: float | None = None  # stop training after this much time
    grad_clip: float | None = 5.0  # global gradient-norm clip, > 0 (None: off)
    threads: int = 2  # CPU threads for torch, >= 1
    device: str = "auto"  # "auto", "cpu", "cuda"
    precision: Literal["auto", "fp32", "bf16"] = "auto"  # autocast; auto: nlprec.train.trainer.resolve_precision
    seed: int = 0  # seeds the split, random vector rows, initial weights and batches
    progress: bool = True  # progress line on stderr

    def __post_init__(self) -> None:
        require([
            (self.max_len is None or self.max_len >= 1, f"--max-len must be >= 1, got {self.max_len}"),
            (self.min_count >= 1, f"--min-count must be >= 1, got {self.min_count}"),
            (0.0 <= self.valid_fraction <= 0.5, f"--valid-fraction must be in [0, 0.5], got {self.valid_fraction}"),
            (self.batch_size is None or self.batch_size >= 1, f"--batch-size must be >= 1, got {self.batch_size}"),
            (self.lr is None or self.lr > 0, f"--lr must be > 0, got {self.lr}"),
            (self.epochs >= 1, f"--epochs must be >= 1, got {self.epochs}"),
            (self.patience >= 1, f"--patience must be >= 1, got {self.patience}"),
            (self.threads >= 1, f"--threads must be >= 1, got {self.threads}"),
            (self.precision in ("auto", "fp32", "bf16"),
             f"--precision must be auto, fp32 or bf16, got {self.precision!r}"),
            (self.embedding_mode in (None, "rand", "static", "non-static", "multichannel"),
             f"--embedding-mode must be rand, static, non-static or multichannel, got {self.embedding_mode!r}"),
        ])


# ----- model kinds: the one place that knows which encoder and network a --model value means ---


@dataclass(frozen=True)
class ModelKind:
    """How one `--model` value is built (see the module docstring)."""

    registry_name: str  # the registered model class
    prepare: Callable[[ClassifyOptions, Callable], Any]  # -> context (e.g. loaded vectors)
    fit_encoder: Callable[[Sequence[str], ClassifyOptions, Any], Any]  # training texts -> encoder
    build_model: Callable[..., tuple[nn.Module, dict]]  # (encoder, n_classes, options, overrides, context, log)
    default_lr: float = 1e-3  # Adam rate when --lr is not given
    default_batch_size: int = 50  # examples per batch when --batch-size is not given (Kim: 50)


def _load_vectors(options: ClassifyOptions, log: Callable) -> Any:
    """The --embeddings vectors (None without), after checking the mode asks for them."""
    mode = embedding_mode(options)
    if options.embeddings is None:
        if mode != "rand":
            raise NlprecError(f"--embedding-mode {mode} uses pretrained vectors; pass --embeddings PATH "
                              "(e.g. from `nlprec embed train`)")
        return None
    if mode == "rand":
        raise NlprecError("--embedding-mode rand trains random vectors; drop --embeddings or choose static, "
                          "non-static or multichannel")
    from nlprec.subword_vectors import load_vectors

    return load_vectors(options.embeddings)


def embedding_mode(options: ClassifyOptions) -> str:
    """Kim's mode in effect: the option, else non-static with vectors and rand without."""
    return options.embedding_mode or ("non-static" if options.embeddings else "rand")


def _fit_word_encoder(texts: Sequence[str], options: ClassifyOptions, vectors: Any) -> WordEncoder:
    """The regex tokenizer of the vectors' `embed train` run (unless overridden) and a vocabulary."""
    trained_with = (getattr(vectors, "meta", None) or {}).get("options", {}) if vectors is not None else {}
    pattern = options.token_pattern or trained_with.get("token_pattern") or RegexTokenizer.pattern
    lowercase = options.lowercase if options.lowercase is not None else bool(trained_with.get("lowercase", True))
    return WordEncoder.fit(texts, RegexTokenizer(pattern, lowercase), options.max_len, options.min_count,
                           options.max_vocab)


def _build_word_model(name: str) -> Callable[..., tuple[nn.Module, dict]]:
    """A builder for a registered model over word vectors (TextCNN, BiRNN)."""

    def build(encoder: WordEncoder, n_classes: int, options: ClassifyOptions, overrides: dict[str, Any],
              vectors: Any, log: Callable) -> tuple[nn.Module, dict]:
        entry = get_model(name)
        settings = {"vocab_size": encoder.vocab_size, "n_classes": n_classes,
                    "embedding_mode": embedding_mode(options), **overrides}
        if name == "birnn" and settings["embedding_mode"] == "multichannel":
            raise NlprecError("--embedding-mode multichannel is a TextCNN mode; birnn takes rand, static or non-static")
        info: dict[str, Any] = {"embedding_mode": settings["embedding_mode"]}
        if vectors is not None:
            if "dim" in overrides and overrides["dim"] != vectors.dim:
                raise NlprecError(f"--set dim={overrides['dim']} disagrees with the embeddings' dimension "
                                  f"{vectors.dim} ({options.embeddings}); drop --set dim or use {overrides['dim']}-d "
                                  "vectors")
            settings["dim"] = vectors.dim
        config = build_config(entry.config_cls, settings)  # checks every option before any work
        pretrained = None
        if vectors is not None:
            matrix, coverage = embedding_init(encoder.words, vectors, options.seed)
            pretrained = torch.from_numpy(matrix)
            info.update({"embeddings": str(options.embeddings), "embeddings_sha256": sha256_file(options.embeddings),
                         "coverage": coverage})
            log(f"embeddings {options.embeddings}: {len(vectors):,} words, dim {vectors.dim}; "
                f"vocabulary {coverage['words']:,} words: {coverage['found']:,} in the embeddings, "
                f"{coverage['composed']:,} composed from n-grams, {coverage['random']:,} random")
        torch.manual_seed(options.seed)
        return entry.model_cls(config, pretrained), info

    return build


def _load_pretrained_bert(options: ClassifyOptions, log: Callable) -> PretrainedBert:
    """The pretrained folder named by --init (the bert kind's context)."""
    if not options.init:
        raise NlprecError("--model bert fine-tunes a pretrained BERT: pass --init DIR (a folder written by "
                          "`nlprec bert pretrain`)")
    bert = PretrainedBert.load(options.init)
    origin = (f"imported from {bert.config['imported']['source']}" if "imported" in bert.config else
              f"data sha256 {bert.config['data_sha256'][:12]}")
    log(f"pretrained BERT {options.init}: {bert.model.config.layers} layers x {bert.model.config.hidden}, "
        f"vocabulary {bert.tokenizer.vocab_size:,}, {origin}")
    return bert


def _piece_encoder(texts: Sequence[str], options: ClassifyOptions, bert: PretrainedBert) -> PieceEncoder:
    """The pretrained tokenizer (nothing is fitted), texts cut to the model's positions and --max-len."""
    limit = bert.model.config.max_positions
    max_len = min(limit, options.max_len) if options.max_len else limit
    if max_len < 3:
        raise NlprecError(f"--max-len {max_len} leaves no room for a piece between [CLS] and [SEP]; use >= 3")
    return PieceEncoder.from_file(Path(options.init) / bert.config.get("tokenizer", TOKENIZER_FILE), max_len)


def _build_bert_classifier(encoder: PieceEncoder, n_classes: int, options: ClassifyOptions,
                           overrides: dict[str, Any], bert: PretrainedBert, log: Callable) -> tuple[nn.Module, dict]:
    """A BertClassifier with the pretrained encoder's weights (a fresh head), and what to record."""
    from nlprec.models.bert_classifier import BertClassifier, BertClassifierConfig

    settable = {"classifier_dropout", "encoder_lr_scale", "pooling", "dropout", "attention_dropout"}
    unknown = set(overrides) - settable - {"n_classes"}
    if unknown:
        raise NlprecError(f"--set {sorted(unknown)[0]}: a fine-tuned BERT keeps the pretrained sizes; settable: "
                          f"{', '.join(sorted(settable))}")
    config = BertClassifierConfig.from_pretrained(bert.config["model_config"], n_classes=n_classes, **overrides)
    torch.manual_seed(options.seed)
    model = BertClassifier(config)
    model.load_pretrained(bert.model.state_dict())
    return model, {"init": str(options.init), "init_data_sha256": bert.config["data_sha256"],
                   "init_seed": bert.config["seed"], "init_heldout": bert.config.get("heldout"),
                   "init_imported": bert.config.get("imported")}


KINDS: dict[str, ModelKind] = {
    "textcnn": ModelKind("textcnn", _load_vectors, _fit_word_encoder, _build_word_model("textcnn")),
    # batches of 64 (d2l's) at 3e-3 reached the IMDb bar in 29 minutes where TextCNN's 1e-3 and 50 did not
    # (BENCHMARKS.md, "Text classification: TextCNN and BiRNN vs TF-IDF + logistic regression and fastText")
    "birnn": ModelKind("birnn", _load_vectors, _fit_word_encoder, _build_word_model("birnn"), default_lr=3e-3,
                       default_batch_size=64),
    # fine-tuning: the pretrained tokenizer, the encoder at a fifth of the head's rate
    "bert": ModelKind("bert-classifier", _load_pretrained_bert, _piece_encoder, _build_bert_classifier,
                      default_lr=5e-4, default_batch_size=32),
}


def model_kind(name: str) -> ModelKind:
    if name not in KINDS:
        raise NlprecError(f"--model must be one of {', '.join(KINDS)}; got {name!r}")
    return KINDS[name]


# ----- prediction --------------------------------------------------------------------------


def predict_proba(model: nn.Module, encoder: Any, texts: Sequence[str], batch_size: int = 256,
                  precision: str = "auto") -> np.ndarray:
    """(N, C) softmax probabilities, in length-sorted batches, returned in the input order.
    precision: "auto" (resolve_precision: bf16 where the hardware has bf16 units), "fp32", "bf16"."""
    if precision not in ("auto", "fp32", "bf16"):
        raise NlprecError(f"--precision must be auto, fp32 or bf16, got {precision!r}")
    encoded = encoder.encode(list(texts))
    device = next(model.parameters()).device
    n_classes = model.config.n_classes
    out = np.zeros((len(texts), n_classes), np.float32)  # (N, C)
    was_training = model.training
    model.eval()
    with torch.inference_mode(), autocast(precision, device):
        for rows in sorted_batches(encoded.lengths, batch_size):
            tokens, lengths = pad_rows(encoded, rows, encoder.pad_id)
            batch = {"tokens": tokens.to(device), "lengths": lengths.to(device)}
            out[rows] = model.predict_proba(batch).cpu().numpy()
    model.train(was_training)
    return out


def _check_texts(texts: Sequence[str]) -> None:
    for number, text in enumerate(texts, start=1):
        if not text.strip():
            raise NlprecError(f"text {number} is empty; expected one text per line")


class Classifier:
    """A trained model with its encoder, classes and provenance."""

    def __init__(self, model: nn.Module, encoder: Any, classes: list[str], config: dict[str, Any]):
        self.model = model.eval()
        self.encoder = encoder
        self.classes = classes
        self.config = config  # the folder's config.json

    @classmethod
    def load(cls, folder: str | Path, device: str = "cpu") -> Classifier:
        """Load a model folder written by `train` (JSON and checked weights: nlprec.io; no code runs)."""
        folder = Path(folder)
        config = _read_config(folder)
        with config_errors(folder / "config.json", "classifier"):
            encoder_cls = ENCODERS[config["encoder"]["kind"]]
            entry = get_model(config["registry_name"])
            model = entry.model_cls(build_config(entry.config_cls, config["model_config"]))
        try:  # the encoder's own files raise one-line errors naming themselves
            encoder = encoder_cls.load(config["encoder"], folder)
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            raise NlprecError(f"{folder / 'config.json'}: not a classifier config (encoder entry: "
                              f"{type(err).__name__}: {' '.join(str(err).split())[:160]})") from None
        read_weights(model, folder / "model.pt", "classifier weights")
        return cls(model.to(resolve_device(device)), encoder, list(config["classes"]), config)

    def predict_proba(self, texts: Sequence[str], batch_size: int = 256, precision: str = "auto") -> np.ndarray:
        """(N, C) class probabilities; columns in the order of `classes`. precision: see `predict_proba`."""
        _check_texts(texts)
        return predict_proba(self.model, self.encoder, texts, batch_size, precision)

    def predict(self, texts: Sequence[str], batch_size: int = 256, precision: str = "auto") -> list[tuple[str, float]]:
        """(label, probability) of the most probable class of each text."""
        proba = self.predict_proba(texts, batch_size, precision)  # (N, C)
        best = proba.argmax(1)
        return [(self.classes[c], float(proba[i, c])) for i, c in enumerate(best)]


def _read_config(folder: Path) -> dict[str, Any]:
    """The config.json of a classifier folder; a one-line error for anything else."""
    return read_model_config(folder, FORMAT, "classifier", "train one with `nlprec classify train`")


def score(model: nn.Module, encoder: Any, texts: Sequence[str], labels: np.ndarray, classes: list[str],
          batch_size: int = 256, precision: str = "auto") -> dict:
    """Classification report of `model` on texts with class ids `labels`, plus prediction speed."""
    started = time.perf_counter()
    proba = predict_proba(model, encoder, texts, batch_size, precision)
    seconds = time.perf_counter() - started
    report = classification_report(labels, proba.argmax(1), classes)
    return {**report, "predict_seconds": seconds, "texts_per_s": len(texts) / max(seconds, 1e-9)}


def evaluate(classifier: Classifier, data: LabelledTexts, batch_size: int = 256, precision: str = "auto") -> dict:
    """Accuracy, macro-F1, per-class precision/recall, confusion matrix and texts/s on labelled data."""
    _check_texts(data.texts)
    labels = label_ids(data.labels, classifier.classes, data.source)
    report = score(classifier.model, classifier.encoder, data.texts, labels, classifier.classes, batch_size,
                   precision)
    return {**report, "data": data.source, "data_sha256": data.sha256}


# ----- training ----------------------------------------------------------------------------


def _check_out(out: Path, resume: bool) -> None:
    checkpoint = out / "checkpoints" / "last.pt"
    if resume and not checkpoint.is_file():
        raise NlprecError(f"--resume: no checkpoint at {checkpoint}; start without --resume")
    if not resume and (out / "checkpoints").exists():
        raise NlprecError(f"{out} already holds a training run; pass --resume to continue it or choose another --out")
    if not resume and (out / "config.json").exists():
        raise NlprecError(f"{out} already holds a model; choose another --out")


def _accuracy_evaluator(data: ClassificationData, precision: str) -> Callable[[nn.Module], dict[str, float]]:
    """Validation accuracy over the data module's validation batches (the early-stopping metric),
    in the training precision."""

    def evaluate_model(model: nn.Module) -> dict[str, float]:
        device = next(model.parameters()).device
        correct, total = 0, 0
        with autocast(precision, device):
            for batch in data.val_dataloader() or []:
                logits = model({k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()})
                correct += int((logits.argmax(1).cpu() == batch["labels"]).sum())
                total += len(batch["labels"])
        return {"val_accuracy": correct / total} if total else {}

    return evaluate_model


def train(data: LabelledTexts, out: str | Path, options: ClassifyOptions = ClassifyOptions(),
          overrides: dict[str, Any] | None = None, *, resume: bool = False, log: Callable = print) -> Classifier:
    """Train `options.model` on labelled texts and write the model folder `out` (module docstring).

    Every input is checked before anything is written; a bad one raises a one-line `NlprecError`.
    """
    out = Path(out)
    _check_out(out, resume)
    started = time.perf_counter()
    torch.set_num_threads(options.threads)
    kind = model_kind(options.model)
    _check_texts(data.texts)
    classes = check_classes(data.labels, data.source)
    labels = label_ids(data.labels, classes, data.source)
    train_rows, valid_rows = stratified_split(labels, options.valid_fraction, options.seed)
    train_texts = [data.texts[i] for i in train_rows]
    context = kind.prepare(options, log)
    if resume:
        config_entry = read_json(out / "encoder_entry.json", dict)
        encoder = ENCODERS[config_entry["kind"]].load(config_entry, out)
    else:
        encoder = kind.fit_encoder(train_texts, options, context)
    model, info = kind.build_model(encoder, len(classes), options, dict(overrides or {}), context, log)
    train_encoded = encoder.encode(train_texts)
    valid_encoded = encoder.encode([data.texts[i] for i in valid_rows])
    batch_size = options.batch_size or kind.default_batch_size
    module = ClassificationData(train_encoded, labels[train_rows], batch_size, options.seed,
                                (valid_encoded, labels[valid_rows]), encoder.pad_id)
    log(f"{data.source}: {len(data):,} examples in {len(classes)} classes, {len(train_rows):,} for training, "
        f"{len(valid_rows):,} held out; vocabulary {encoder.vocab_size:,}; "
        f"mean length {train_encoded.lengths.mean():.1f} tokens (--max-len {options.max_len})")
    trainer_config = TrainerConfig(
        device=options.device, optimizer="adam", lr=options.lr or kind.default_lr,
        weight_decay=options.weight_decay, epochs=options.epochs, max_minutes=options.max_minutes,
        grad_clip=options.grad_clip, seed=options.seed, out_dir=str(out), progress=options.progress,
        precision=resolve_precision(options.precision, resolve_device(options.device)),
        early_stopping_metric="val_accuracy" if len(valid_rows) else None, early_stopping_mode="max",
        patience=options.patience, log_every_steps=50)
    out.mkdir(parents=True, exist_ok=True)
    if not resume:
        entry = encoder.save(out)
        with atomic_write(out / "encoder_entry.json", "w", encoding="utf-8") as handle:
            handle.write(json.dumps(entry))
    meta = {"model": options.model, "data_sha256": data.sha256, "classes": classes}
    trainer = Trainer(model, module, trainer_config, evaluator=_accuracy_evaluator(module, trainer_config.precision),
                      meta=meta)
    if resume:
        trainer.restore(out / "checkpoints" / "last.pt")
    history = trainer.fit()
    best = out / "checkpoints" / "best.pt"
    if best.is_file():
        model.load_state_dict(load_checkpoint(best)["model"])
    model.eval()
    valid_report = (score(model, encoder, [data.texts[i] for i in valid_rows], labels[valid_rows], classes,
                          precision=options.precision)
                    if len(valid_rows) else None)
    info = {**info, "plan": trainer.plan()}
    _write_folder(out, model, encoder, classes, options, kind, trainer_config, data, info, history,
                  valid_report, time.perf_counter() - started, len(train_rows), len(valid_rows))
    if valid_report:
        log(f"best validation accuracy {valid_report['accuracy']:.4f} (macro-F1 {valid_report['macro_f1']:.4f})")
    return Classifier(model, encoder, classes, read_json(out / "config.json", dict))


def _write_folder(out: Path, model: nn.Module, encoder: Any, classes: list[str], options: ClassifyOptions,
                  kind: ModelKind, trainer_config: TrainerConfig, data: LabelledTexts, info: dict,
                  history: list[dict], valid_report: dict | None, seconds: float, n_train: int,
                  n_valid: int) -> None:
    """The model folder (nlprec.io.write_model_folder); the encoder's files are already in place."""
    encoder_entry = read_json(out / "encoder_entry.json", dict)
    train_seconds = sum(record.get("seconds", 0.0) for record in history)
    metrics = {"validation": valid_report, "epochs": history, "train_seconds": train_seconds,
               "total_seconds": seconds}
    config = {"format": FORMAT, "model": options.model, "registry_name": kind.registry_name,
              "model_config": dataclasses.asdict(model.config), "classes": classes,
              "encoder": encoder_entry, "options": dataclasses.asdict(options),
              "trainer_config": dataclasses.asdict(trainer_config), **info, "precision": trainer_config.precision,
              "seed": options.seed, "data": data.source, "data_sha256": data.sha256, "train_examples": n_train,
              "valid_examples": n_valid}
    write_model_folder(out, config, model, metrics)


def cv(data: LabelledTexts, folds: int = 10, options: ClassifyOptions = ClassifyOptions(),
       overrides: dict[str, Any] | None = None, log: Callable = print) -> dict:
    """Stratified k-fold cross-validation (seeded by `options.seed`): per-fold accuracy and macro-F1,
    their mean and standard deviation. Each fold trains a fresh model in a temporary folder."""
    _check_texts(data.texts)
    classes = check_classes(data.labels, data.source)
    labels = label_ids(data.labels, classes, data.source)
    splits = stratified_kfold(labels, folds, options.seed)
    model_kind(options.model)
    per_fold = []
    for fold, (train_rows, test_rows) in enumerate(splits, start=1):
        with tempfile.TemporaryDirectory(prefix="nlprec-cv-") as scratch:
            started = time.perf_counter()
            classifier = train(data.subset(train_rows), Path(scratch) / "model", options, overrides=overrides, log=log)
            seconds = time.perf_counter() - started
        test = data.subset(test_rows)
        report = score(classifier.model, classifier.encoder, test.texts, label_ids(test.labels, classes, data.source),
                       classes, precision=options.precision)
        per_fold.append({"fold": fold, "accuracy": report["accuracy"], "macro_f1": report["macro_f1"],
                         "train_seconds": seconds, "texts_per_s": report["texts_per_s"], "test_examples": len(test)})
        log(f"fold {fold}/{folds}: accuracy {report['accuracy']:.4f}, macro-F1 {report['macro_f1']:.4f}")
    return {"folds": folds, "seed": options.seed, "model": options.model, "embedding_mode": embedding_mode(options),
            "accuracy": mean_std([f["accuracy"] for f in per_fold]),
            "macro_f1": mean_std([f["macro_f1"] for f in per_fold]), "per_fold": per_fold,
            "examples": len(data), "classes": classes, "data": data.source, "data_sha256": data.sha256,
            "options": dataclasses.asdict(options), "overrides": dict(overrides or {}), "nlprec_version": __version__}


__all__ = ["ClassifyOptions", "Classifier", "ModelKind", "KINDS", "ENCODERS", "train", "evaluate", "cv",
           "predict_proba", "score", "embedding_mode", "FORMAT"]
