"""Train word embeddings from a text file: the API behind `nlprec embed train`.

`train(corpus, out, options)` trains the model its options name: word2vec (`EmbedOptions`),
fastText (`FastTextOptions`: subword vectors; .npz keeps the n-grams, .bin is Facebook
fastText's model) or GloVe (`GloveOptions`: co-occurrence counts, then weighted least squares).
Each reads and encodes the corpus, builds its tables, prints a memory estimate, trains through
the shared trainer (checkpoints beside the output, resumable) and writes the vectors (format
from the suffix: .bin, .vec/.txt or .npz) with their provenance: config, seed, data checksum
and package version. The query object is the vectors store they return (`Vectors`, or
`SubwordVectors` for fastText), which `nlprec.subword_vectors.load_vectors(path)` reads back.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Literal

import numba
import torch

from nlprec import __version__
from nlprec.data.cooccurrence import MAX_WINDOW, CooccurrenceData, count_cooccurrences
from nlprec.data.word_corpus import EncodedCorpus, encode_corpus
from nlprec.data.embedding_data import EmbeddingData
from nlprec.data.subwords import SubwordSpec
from nlprec.data.tokenize import RegexTokenizer
from nlprec.data.vocab import Vocab
from nlprec.errors import NlprecError, require
from nlprec.io import atomic_write, sha256_file
from nlprec.models.fasttext import FastText, FastTextConfig
from nlprec.models.glove import GloVe, GloVeConfig
from nlprec.models.word2vec import Word2Vec, Word2VecConfig
from nlprec.subword_vectors import SubwordVectors, load_vectors
from nlprec.train import Trainer, TrainerConfig, load_checkpoint
from nlprec.train.trainer import resolve_device, seed_everything
from nlprec.vectors import Vectors, format_from_suffix, sidecar_path

# Words per trainer step with the numba kernel: each step is one parallel region whose threads
# meet at its end, so fewer, longer steps wait less (1M against 100k: 7% less CPU and 5% less
# wall for CBOW/hierarchical on IMDb, BENCHMARKS.md); a step still takes seconds, not minutes.
NUMBA_CHUNK_WORDS = 1_000_000


@dataclass(frozen=True)
class EmbedOptions:
    """Everything `nlprec embed train` sets for word2vec."""

    arch: Literal["skipgram", "cbow"] = "skipgram"  # see Word2VecConfig
    objective: Literal["negative", "hierarchical"] = "negative"  # see Word2VecConfig
    dim: int = 100  # vector size, >= 1
    window: int = 5  # max context distance, >= 1
    negative: int = 5  # negatives per prediction, >= 1
    sample: float = 1e-3  # subsampling threshold, >= 0 (0: off)
    min_count: int = 5  # drop words seen fewer times, >= 1
    max_vocab: int | None = None  # keep at most this many most frequent words
    epochs: int = 5  # passes over the corpus, >= 1
    alpha: float | None = None  # starting learning rate (None: 0.025 skip-gram, 0.05 CBOW; 0.01 torch)
    min_alpha: float = 0.0001  # final learning rate of the linear decay, >= 0
    threads: int = 2  # CPU threads, >= 1
    seed: int = 1  # same seed + same device + threads 1 -> identical vectors
    device: str = "auto"  # "auto", "cpu", "cuda"
    backend: Literal["auto", "numba", "torch"] = "auto"  # auto: numba on CPU, torch on CUDA
    chunk_words: int | None = None  # words per trainer step, >= 1000 (None: 1,000,000 numba, 4,096 torch)
    token_pattern: str = r"[a-z0-9']+"  # what a token is
    lowercase: bool = True  # lower-case before tokenizing
    progress: bool = True  # progress line on stderr

    def __post_init__(self) -> None:
        checks = [
            (self.dim >= 1, f"--dim must be >= 1, got {self.dim}"),
            (self.window >= 1, f"--window must be >= 1, got {self.window}"),
            (self.negative >= 1, f"--negative must be >= 1, got {self.negative}"),
            (self.sample >= 0, f"--sample must be >= 0, got {self.sample}"),
            (self.min_count >= 1, f"--min-count must be >= 1, got {self.min_count}"),
            (self.max_vocab is None or self.max_vocab >= 1, f"--max-vocab must be >= 1, got {self.max_vocab}"),
            (self.epochs >= 1, f"--epochs must be >= 1, got {self.epochs}"),
            (self.alpha is None or self.alpha > 0, f"--alpha must be > 0, got {self.alpha}"),
            (self.min_alpha >= 0, f"--min-alpha must be >= 0, got {self.min_alpha}"),
            (self.threads >= 1, f"--threads must be >= 1, got {self.threads}"),
            (self.chunk_words is None or self.chunk_words >= 1000,
             f"chunk_words must be >= 1000, got {self.chunk_words}"),
        ]
        require(checks)


@dataclass(frozen=True)
class FastTextOptions(EmbedOptions):
    """Everything `nlprec embed train --arch fasttext` sets: word2vec's options plus n-grams.

    `arch` is the fastText architecture (skip-gram or CBOW); `objective` must stay "negative"
    (fastText's hierarchical softmax is not implemented); `alpha` defaults to 0.05 (fastText's).
    """

    min_n: int = 3  # shortest character n-gram, >= 1
    max_n: int = 6  # longest character n-gram, >= min_n (0: no n-grams)
    buckets: int = 2_000_000  # hash buckets of the n-gram vectors, >= 1

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.objective != "negative":
            raise NlprecError(f"--objective {self.objective} is not available for fastText; use --objective negative")
        SubwordSpec(self.min_n, self.max_n, self.buckets)  # one-line errors for bad n-gram settings


@dataclass(frozen=True)
class GloveOptions:
    """Everything `nlprec embed train --arch glove` sets.

    Names follow the Stanford tools (glove.c) that GloVe users know: `alpha` is the weighting
    exponent (`-alpha`), `eta` the AdaGrad learning rate (`-eta`).
    """

    dim: int = 100  # vector size, >= 1
    window: int = 10  # co-occurrence window on each side, 1..15
    min_count: int = 5  # drop words seen fewer times, >= 1
    max_vocab: int | None = None  # keep at most this many most frequent words
    epochs: int = 15  # passes over the co-occurrence entries, >= 1
    x_max: float = 100.0  # weighting cut-off of f(x) = min(1, (x / x_max)^alpha), > 0
    alpha: float = 0.75  # weighting exponent, > 0
    eta: float = 0.05  # AdaGrad learning rate, > 0
    threads: int = 2  # CPU threads, >= 1
    seed: int = 1  # same seed + same device + threads 1 -> identical vectors
    device: str = "auto"  # "auto", "cpu", "cuda"
    backend: Literal["auto", "numba", "torch"] = "auto"  # auto: numba on CPU, torch on CUDA
    batch_size: int | None = None  # entries per trainer step, >= 1 (None: 1,000,000 numba, 262,144 torch)
    memory_gb: float | None = None  # co-occurrence counting budget in GiB (None: 80% of available memory)
    token_pattern: str = r"[a-z0-9']+"  # what a token is
    lowercase: bool = True  # lower-case before tokenizing
    progress: bool = True  # progress line on stderr

    def __post_init__(self) -> None:
        checks = [
            (self.dim >= 1, f"--dim must be >= 1, got {self.dim}"),
            (1 <= self.window <= MAX_WINDOW, f"--window must be in 1..{MAX_WINDOW} for GloVe, got {self.window}"),
            (self.min_count >= 1, f"--min-count must be >= 1, got {self.min_count}"),
            (self.max_vocab is None or self.max_vocab >= 1, f"--max-vocab must be >= 1, got {self.max_vocab}"),
            (self.epochs >= 1, f"--epochs must be >= 1, got {self.epochs}"),
            (self.x_max > 0, f"--x-max must be > 0, got {self.x_max}"),
            (self.alpha > 0, f"--alpha (GloVe's weighting exponent) must be > 0, got {self.alpha}"),
            (self.eta > 0, f"--eta (GloVe's learning rate) must be > 0, got {self.eta}"),
            (self.threads >= 1, f"--threads must be >= 1, got {self.threads}"),
            (self.batch_size is None or self.batch_size >= 1, f"batch_size must be >= 1, got {self.batch_size}"),
            (self.memory_gb is None or self.memory_gb > 0, f"--memory-gb must be > 0, got {self.memory_gb}"),
        ]
        require(checks)


def train(corpus: str | Path, out: str | Path, options: EmbedOptions | GloveOptions = EmbedOptions(), *,
          resume: bool = False, log: Callable = print) -> Vectors:
    """Train the embeddings `options` names on a text file (one sentence per line) and write them
    to `out`: word2vec for EmbedOptions, fastText for FastTextOptions, GloVe for GloveOptions."""
    finished = _finished_result(corpus, out, options) if resume else None
    if finished is not None:
        log(f"nothing to resume: {out} already holds the vectors of this run, finished")
        return finished
    if isinstance(options, FastTextOptions):
        return _train_fasttext(corpus, out, options, resume, log)
    if isinstance(options, GloveOptions):
        return _train_glove(corpus, out, options, resume, log)
    return _train_word2vec(corpus, out, options, resume, log)


def checkpoint_dir_for(out: str | Path) -> Path:
    """Where checkpoints and metrics of a run that writes `out` go: `<out>.run/`."""
    out = Path(out)
    return out.with_name(out.name + ".run")


def _train_word2vec(corpus_path: str | Path, out: str | Path, options: EmbedOptions, resume: bool,
                    log: Callable) -> Vectors:
    """Train word2vec on a text file (one sentence per line) and save the vectors to `out`."""
    out, run_dir, checkpoint, device, backend, corpus = _prepare_run(corpus_path, out, options, resume, log)
    log(_memory_estimate(len(corpus.vocab), options))
    seed_everything(options.seed)
    chunk_words = options.chunk_words or (NUMBA_CHUNK_WORDS if backend == "numba" else 4096)
    data = EmbeddingData(corpus, options.sample, chunk_words, options.seed,
                         with_negative=options.objective == "negative",
                         with_huffman=options.objective == "hierarchical")
    model = Word2Vec(_model_config(options, len(corpus.vocab), backend), data.tables)
    _set_threads(backend, options.threads)
    trainer = Trainer(model, data, _trainer_config(options, backend, run_dir), meta=_provenance(options, corpus))
    if checkpoint is not None:
        trainer.restore(checkpoint)
        log(f"resuming from {run_dir / 'checkpoints' / 'last.pt'} at step {trainer.state.step}")
    history = trainer.fit()
    meta = {**_provenance(options, corpus), "backend": backend, "device": str(device),
            "loss_per_epoch": [record.get("loss") for record in history]}
    vectors = model.to_vectors(corpus.vocab.words, meta)
    _write_result(trainer, out, lambda: vectors.save(out))
    log(f"wrote {len(vectors):,} vectors of dim {vectors.dim} to {out}")
    return vectors


def _train_fasttext(corpus_path: str | Path, out: str | Path, options: FastTextOptions, resume: bool,
                    log: Callable) -> SubwordVectors:
    """Train fastText on a text file and save to `out`: .npz keeps the n-grams (unseen words
    answerable), .bin is Facebook fastText's model format, .vec/.txt the vocabulary's vectors only."""
    out, run_dir, checkpoint, device, backend, corpus = _prepare_run(corpus_path, out, options, resume, log)
    config = FastTextConfig(vocab_size=len(corpus.vocab), arch=options.arch, dim=options.dim, window=options.window,
                            negative=options.negative, min_n=options.min_n, max_n=options.max_n,
                            buckets=options.buckets, backend=backend, threads=options.threads)
    log(f"memory: input rows ({len(corpus.vocab):,} words + {config.input_rows - len(corpus.vocab):,} n-gram buckets)"
        f" x {options.dim} float32 = {config.input_rows * options.dim * 4 / 2**20:,.1f} MiB, output "
        f"{len(corpus.vocab) * options.dim * 4 / 2**20:,.1f} MiB")
    seed_everything(options.seed)
    chunk_words = options.chunk_words or (NUMBA_CHUNK_WORDS if backend == "numba" else 4096)
    data = EmbeddingData(corpus, options.sample, chunk_words, options.seed, with_negative=True, with_huffman=False)
    model = FastText(config, data.tables, corpus.vocab.words)
    _set_threads(backend, options.threads)
    meta = _provenance(options, corpus, "fasttext")
    trainer = Trainer(model, data, _trainer_config(options, backend, run_dir), meta=meta)
    if checkpoint is not None:
        trainer.restore(checkpoint)
        log(f"resuming from {run_dir / 'checkpoints' / 'last.pt'} at step {trainer.state.step}")
    history = trainer.fit()
    meta = {**meta, "backend": backend, "device": str(device), "loss_per_epoch": [r.get("loss") for r in history]}
    vectors = model.to_vectors(corpus.vocab.words, meta)
    if out.suffix.lower() == ".bin":
        _write_result(trainer, out, lambda: _save_fasttext_model(out, model, corpus, options, meta))
    else:
        _write_result(trainer, out, lambda: vectors.save(out))
    log(f"wrote {len(vectors):,} vectors of dim {vectors.dim}" + (" with n-grams" if out.suffix.lower() in (
        ".npz", ".bin") else " (vocabulary only: save as .npz or .bin to answer unseen words)") + f" to {out}")
    return vectors


def _train_glove(corpus_path: str | Path, out: str | Path, options: GloveOptions, resume: bool,
                 log: Callable) -> Vectors:
    """Count co-occurrences of a text file, fit GloVe and save w + c vectors to `out`."""
    out, run_dir, checkpoint, device, backend, corpus = _prepare_run(corpus_path, out, options, resume, log)
    started = time.perf_counter()
    budget = None if options.memory_gb is None else int(options.memory_gb * 2**30)
    counts = count_cooccurrences(corpus.ids, corpus.sentence_ends, len(corpus.vocab), options.window, budget, log)
    counting_seconds = time.perf_counter() - started
    log(f"co-occurrences: {len(counts):,} non-zero entries (window {options.window}) in {counting_seconds:.1f} s")
    seed_everything(options.seed)
    batch_size = options.batch_size or (1_000_000 if backend == "numba" else 262_144)
    data = CooccurrenceData(counts, batch_size, options.seed,
                            {"vocab": corpus.vocab.state_dict(), "checksum": corpus.checksum})
    model = GloVe(GloVeConfig(vocab_size=len(corpus.vocab), dim=options.dim, x_max=options.x_max,
                              alpha=options.alpha, backend=backend, threads=options.threads))
    _set_threads(backend, options.threads)
    meta = {**_provenance(options, corpus, "glove"), "cooccurrence_entries": len(counts),
            "cooccurrence_seconds": round(counting_seconds, 3)}
    trainer_config = TrainerConfig(device=options.device, optimizer="sgd" if backend == "numba" else "adagrad",
                                   lr=options.eta, epochs=options.epochs, seed=options.seed,
                                   out_dir=str(run_dir), progress=options.progress, throughput_unit="entries",
                                   log_every_steps=20, checkpoint_on_finish=False)
    trainer = Trainer(model, data, trainer_config, meta=meta)
    if checkpoint is not None:
        trainer.restore(checkpoint)
        log(f"resuming from {run_dir / 'checkpoints' / 'last.pt'} at step {trainer.state.step}")
    history = trainer.fit()
    meta = {**meta, "backend": backend, "device": str(device), "loss_per_epoch": [r.get("loss") for r in history]}
    vectors = model.to_vectors(corpus.vocab.words, meta)
    _write_result(trainer, out, lambda: vectors.save(out))
    log(f"wrote {len(vectors):,} vectors of dim {vectors.dim} (word + context) to {out}")
    return vectors


def _write_result(trainer: Trainer, out: Path, write: Callable[[], None]) -> None:
    """Write the trained vectors to `out`. A finished run leaves no checkpoint behind (the
    vectors are the result; fastText's would be another ~800 MB), so if the write fails, the
    training is saved to last.pt first and the error says how to write it without training again."""
    try:
        write()
    except NlprecError as err:
        saved = trainer.save("last.pt")
        raise NlprecError(f"{err}; the trained model is kept in {saved}: rerun with --resume to write it") from None
    trainer.drop_checkpoint("last.pt")  # an earlier epoch's, which no longer matches the result


def _save_fasttext_model(out: Path, model: FastText, corpus: EncodedCorpus, options: FastTextOptions,
                         meta: dict[str, Any]) -> None:
    """Facebook fastText's .bin, with the provenance in the `<out>.meta.json` sidecar."""
    from nlprec.fasttext_io import FastTextArgs, save_fasttext_bin

    args = FastTextArgs(dim=options.dim, window=options.window, epochs=options.epochs, min_count=options.min_count,
                        negative=options.negative, model=options.arch, buckets=options.buckets if options.max_n else 0,
                        min_n=options.min_n, max_n=options.max_n, sample=options.sample)
    save_fasttext_bin(out, args, corpus.vocab.words, corpus.vocab.counts,
                      model.input_vectors.weight.detach().float().cpu().numpy(),
                      model.output_vectors.weight.detach().float().cpu().numpy(), corpus.raw_tokens)
    with atomic_write(sidecar_path(out), "w", encoding="utf-8") as handle:
        handle.write(json.dumps(meta, indent=2, sort_keys=True))


def _set_threads(backend: str, threads: int) -> None:
    if backend == "numba":
        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    else:
        torch.set_num_threads(threads)


def _default_alpha(options: Any) -> float:
    """The peers' starting rates: word2vec.c 0.025 skip-gram / 0.05 CBOW, fastText 0.05."""
    if isinstance(options, FastTextOptions):
        return 0.05
    return 0.025 if options.arch == "skipgram" else 0.05


def _prepare_run(corpus_path: str | Path, out: str | Path, options: Any, resume: bool, log):
    """What every trainer does first: check `out`, find the checkpoint to resume, pick the
    device and backend, encode the corpus and report it. Returns
    (out, run_dir, checkpoint or None, device, backend, corpus)."""
    out = Path(out)
    format_from_suffix(out)  # fail on a bad --out before hours of training, not after
    run_dir = checkpoint_dir_for(out)
    checkpoint = _resume_checkpoint(run_dir, options) if resume else None
    device = resolve_device(options.device)
    backend = _resolve_backend(options.backend, device)
    trained_with = (checkpoint or {}).get("model_config", {}).get("backend")
    if trained_with not in (None, backend):  # its chunks and optimizer state are the other backend's
        raise NlprecError(f"--resume: the run in {run_dir} trained with the {trained_with} backend, this one would "
                          f"use {backend}; resume with --backend {trained_with}"
                          + (" --device cpu" if trained_with == "numba" else ""))
    corpus = _encode(corpus_path, options, checkpoint)
    log(f"corpus {corpus.path}: {corpus.raw_tokens:,} tokens, {corpus.n_sentences:,} sentences, "
        f"vocabulary {len(corpus.vocab):,} words (min-count {options.min_count})")
    return out, run_dir, checkpoint, device, backend, corpus


def _resolve_backend(backend: str, device: torch.device) -> str:
    if backend == "auto":
        return "torch" if device.type == "cuda" else "numba"
    if backend == "numba" and device.type != "cpu":
        raise NlprecError("--backend numba runs on the CPU only; use --backend torch with --device cuda")
    return backend


def _encode(corpus_path: str | Path, options: Any, checkpoint: dict | None) -> EncodedCorpus:
    tokenizer = RegexTokenizer(options.token_pattern, options.lowercase)
    vocab = Vocab.from_state_dict(checkpoint["data_state"]["vocab"]) if checkpoint else None
    corpus = encode_corpus(corpus_path, tokenizer, options.min_count, options.max_vocab, vocab=vocab)
    if checkpoint and checkpoint["data_state"]["checksum"] != corpus.checksum:
        raise NlprecError(f"{corpus_path} is not the corpus the checkpoint was trained on (sha256 differs); "
                          "train from scratch without --resume")
    return corpus


def _finished_result(corpus_path: str | Path, out: str | Path, options: Any) -> Vectors | None:
    """The vectors in `out` when they are this run's finished result (a finished run keeps no
    checkpoint): same options and same corpus checksum, no last.pt left. Else None."""
    out = Path(out)
    if (checkpoint_dir_for(out) / "checkpoints" / "last.pt").is_file() or not out.is_file():
        return None
    vectors = load_vectors(out)
    if _changed_options(vectors.meta.get("options", {}), options):
        return None
    return vectors if vectors.meta.get("data_sha256") == sha256_file(corpus_path) else None


def _changed_options(saved: dict[str, Any], options: Any) -> list[str]:
    """The options (other than progress, threads and device) whose value differs from `saved`."""
    return [key for key, value in dataclasses.asdict(options).items()
            if key not in ("progress", "threads", "device") and saved.get(key) != value]


def _resume_checkpoint(run_dir: Path, options: Any) -> dict[str, Any]:
    path = run_dir / "checkpoints" / "last.pt"
    if not path.is_file():
        raise NlprecError(f"--resume: no checkpoint at {path}; start without --resume")
    checkpoint = load_checkpoint(path)
    changed = _changed_options(checkpoint["meta"].get("options", {}), options)
    if changed:
        raise NlprecError(f"--resume: options differ from the checkpoint's ({', '.join(changed)}); "
                          "resume with the same options")
    return checkpoint


def _model_config(options: EmbedOptions, vocab_size: int, backend: str) -> Word2VecConfig:
    return Word2VecConfig(vocab_size=vocab_size, arch=options.arch, objective=options.objective, dim=options.dim,
                          window=options.window, negative=options.negative, backend=backend,
                          threads=options.threads)


def _trainer_config(options: EmbedOptions, backend: str, run_dir: Path) -> TrainerConfig:
    if backend == "numba":  # word2vec's plain SGD with linear decay
        alpha = options.alpha or _default_alpha(options)
        optimizer = "sgd"
    else:
        alpha = options.alpha or 0.01  # SparseAdam on mean losses of ~4k-word chunks
        optimizer = "sparse_adam"
    return TrainerConfig(device=options.device, optimizer=optimizer, lr=alpha, schedule="linear",
                         min_lr_ratio=min(options.min_alpha / alpha, 1.0), epochs=options.epochs, seed=options.seed,
                         out_dir=str(run_dir), progress=options.progress, throughput_unit="words",
                         log_every_steps=20, checkpoint_on_finish=False)


def _provenance(options: Any, corpus: EncodedCorpus, model: str = "word2vec") -> dict[str, Any]:
    return {"model": model, "options": dataclasses.asdict(options), "seed": options.seed,
            "data_sha256": corpus.checksum, "corpus": corpus.path, "corpus_tokens": corpus.raw_tokens,
            "nlprec_version": __version__}


def _memory_estimate(vocab_size: int, options: EmbedOptions) -> str:
    weights = 2 * vocab_size * options.dim * 4
    table = 4 * min(100_000_000, max(1_000_000, 100 * vocab_size)) if options.objective == "negative" else 0
    return (f"memory: weights 2 x {vocab_size:,} x {options.dim} float32 = {weights / 2**20:,.1f} MiB"
            + (f", negative table {table / 2**20:,.1f} MiB" if table else ""))


def print_neighbours(vectors: Vectors, words: list[str], k: int = 5, stream=None) -> None:
    """A few nearest neighbours per word, so a newcomer sees the vectors work."""
    known = [word for word in words if word in vectors]
    for word, neighbours in zip(known, vectors.most_similar(known, k=k)):
        print(f"  {word:>10} -> " + ", ".join(f"{other} {score:.2f}" for other, score in neighbours),
              file=stream or sys.stdout)
