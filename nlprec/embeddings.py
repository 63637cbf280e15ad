"""Train word embeddings from a text file: the API behind `nlprec embed train`.

`train_word2vec(corpus, options)` reads and encodes the corpus, builds the tables, prints a
memory estimate, trains through the shared trainer (checkpoints beside the output, resumable),
and writes the vectors (format from the suffix: .bin, .vec/.txt or .npz) with their
provenance: config, seed, data checksum and package version.
"""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numba
import torch

from nlprec import __version__
from nlprec.data.corpus import EncodedCorpus, encode_corpus
from nlprec.data.embedding_data import EmbeddingData
from nlprec.data.tokenize import RegexTokenizer
from nlprec.data.vocab import Vocab
from nlprec.errors import NlprecError
from nlprec.models.word2vec import Word2Vec, Word2VecConfig
from nlprec.train import Trainer, TrainerConfig, load_checkpoint
from nlprec.train.trainer import resolve_device, seed_everything
from nlprec.vectors import Vectors, format_from_suffix


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
    chunk_words: int | None = None  # words per trainer step, >= 1000 (None: 100,000 numba, 4,096 torch)
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
        for ok, message in checks:
            if not ok:
                raise NlprecError(message)


def checkpoint_dir_for(out: str | Path) -> Path:
    """Where checkpoints and metrics of a run that writes `out` go: `<out>.run/`."""
    out = Path(out)
    return out.with_name(out.name + ".run")


def train_word2vec(corpus_path: str | Path, out: str | Path, options: EmbedOptions = EmbedOptions(),
                   resume: bool = False, log=print) -> Vectors:
    """Train word2vec on a text file (one sentence per line) and save the vectors to `out`."""
    out = Path(out)
    format_from_suffix(out)  # fail on a bad --out before hours of training, not after
    run_dir = checkpoint_dir_for(out)
    checkpoint = _resume_checkpoint(run_dir, options) if resume else None
    device = resolve_device(options.device)
    backend = _resolve_backend(options.backend, device)
    corpus = _encode(corpus_path, options, checkpoint)
    log(f"corpus {corpus.path}: {corpus.raw_tokens:,} tokens, {len(corpus.sentence_ends):,} sentences, "
        f"vocabulary {len(corpus.vocab):,} words (min-count {options.min_count})")
    log(_memory_estimate(len(corpus.vocab), options))
    seed_everything(options.seed)
    chunk_words = options.chunk_words or (100_000 if backend == "numba" else 4096)
    data = EmbeddingData(corpus, options.sample, chunk_words, options.seed,
                         with_negative=options.objective == "negative",
                         with_huffman=options.objective == "hierarchical")
    model = Word2Vec(_model_config(options, len(corpus.vocab), backend), data.tables)
    if backend == "numba":
        numba.set_num_threads(min(options.threads, numba.config.NUMBA_NUM_THREADS))
    else:
        torch.set_num_threads(options.threads)
    trainer = Trainer(model, data, _trainer_config(options, backend, run_dir), meta=_provenance(options, corpus))
    if checkpoint is not None:
        trainer.restore(checkpoint)
        log(f"resuming from {run_dir / 'checkpoints' / 'last.pt'} at step {trainer.state.step}")
    history = trainer.fit()
    meta = {**_provenance(options, corpus), "backend": backend, "device": str(device),
            "loss_per_epoch": [record.get("loss") for record in history]}
    vectors = model.to_vectors(corpus.vocab.words, meta)
    vectors.save(out)
    log(f"wrote {len(vectors):,} vectors of dim {vectors.dim} to {out}")
    return vectors


def _resolve_backend(backend: str, device: torch.device) -> str:
    if backend == "auto":
        return "torch" if device.type == "cuda" else "numba"
    if backend == "numba" and device.type != "cpu":
        raise NlprecError("--backend numba runs on the CPU only; use --backend torch with --device cuda")
    return backend


def _encode(corpus_path: str | Path, options: EmbedOptions, checkpoint: dict | None) -> EncodedCorpus:
    tokenizer = RegexTokenizer(options.token_pattern, options.lowercase)
    vocab = Vocab.from_state_dict(checkpoint["data_state"]["vocab"]) if checkpoint else None
    corpus = encode_corpus(corpus_path, tokenizer, options.min_count, options.max_vocab, vocab=vocab)
    if checkpoint and checkpoint["data_state"]["checksum"] != corpus.checksum:
        raise NlprecError(f"{corpus_path} is not the corpus the checkpoint was trained on (sha256 differs); "
                          "train from scratch without --resume")
    return corpus


def _resume_checkpoint(run_dir: Path, options: EmbedOptions) -> dict[str, Any]:
    path = run_dir / "checkpoints" / "last.pt"
    if not path.is_file():
        raise NlprecError(f"--resume: no checkpoint at {path}; start without --resume")
    checkpoint = load_checkpoint(path)
    saved = checkpoint["meta"].get("options", {})
    changed = [key for key, value in dataclasses.asdict(options).items()
               if key not in ("progress", "threads", "device") and saved.get(key) != value]
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
        alpha = options.alpha or (0.025 if options.arch == "skipgram" else 0.05)
        optimizer = "sgd"
    else:
        alpha = options.alpha or 0.01  # SparseAdam on mean losses of ~4k-word chunks
        optimizer = "sparse_adam"
    return TrainerConfig(device=options.device, optimizer=optimizer, lr=alpha, schedule="linear",
                         min_lr_ratio=min(options.min_alpha / alpha, 1.0), epochs=options.epochs, seed=options.seed,
                         out_dir=str(run_dir), progress=options.progress, throughput_unit="words",
                         log_every_steps=20)


def _provenance(options: EmbedOptions, corpus: EncodedCorpus) -> dict[str, Any]:
    return {"model": "word2vec", "options": dataclasses.asdict(options), "seed": options.seed,
            "data_sha256": corpus.checksum, "corpus": corpus.path, "corpus_tokens": corpus.raw_tokens,
            "nlprec_version": __version__}


def _memory_estimate(vocab_size: int, options: EmbedOptions) -> str:
    weights = 2 * vocab_size * options.dim * 4
    table = 4 * min(100_000_000, max(1_000_000, 100 * vocab_size)) if options.objective == "negative" else 0
    return (f"memory: weights 2 x {vocab_size:,} x {options.dim} float32 = {weights / 2**20:,.1f} MiB"
            + (f", negative table {table / 2**20:,.1f} MiB" if table else ""))


def print_neighbours(vectors: Vectors, words: list[str], k: int = 5, stream=sys.stdout) -> None:
    """A few nearest neighbours per word, so a newcomer sees the vectors work."""
    from nlprec.index import most_similar

    known = [word for word in words if word in vectors]
    for word, neighbours in zip(known, most_similar(vectors, known, k=k)):
        print(f"  {word:>10} -> " + ", ".join(f"{other} {score:.2f}" for other, score in neighbours), file=stream)
