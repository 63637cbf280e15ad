"""Train, load, run and evaluate translation models: the API behind `nlprec translate`.

`train(pairs, out, options)` reads source<TAB>target pairs, holds out a seeded
validation split, trains sentencepiece on the training pairs, encodes and length-filters them,
and trains the chosen architecture through the shared trainer with token-budget batches. After
every epoch (and when --max-minutes/--max-steps stop it) the trainer scores validation BLEU with
the same code as `evaluate` (greedy by default) and keeps the best checkpoint, which becomes the
model. The model folder holds:

    config.json         format, arch, model config, options, trainer config, seed, data sha256,
                        tokenizer files, nlprec version (written last: its presence marks a model)
    spm.model           joint sentencepiece model (or src.model + tgt.model per side)
    model.pt            the weights, a plain state dict of CPU tensors (read by nlprec.io.read_weights)
    metrics.json        best validation BLEU, per-epoch records, training tokens/s
    checkpoints/        the trainer's last.pt and best.pt (resume with `resume=True`)
    metrics.jsonl       the trainer's log

`Translator.load(folder)` gives `translate(sentences, beam, nbest)`; `evaluate` scores a pairs
file with sacrebleu (BLEU and chrF, signatures) and reports decoding speed.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Literal, Sequence

import numpy as np
import torch
from torch import nn

from nlprec.data.pairs import (PairsData, PairsTokenizer, encode_pairs, read_pairs, split_indices,
                               target_piece_counts)
from nlprec.data.tokenize import BOS_ID, PAD_ID
from nlprec.decoding import decode, greedy
from nlprec.errors import NlprecError, require
from nlprec.io import config_errors, read_model_config, read_weights, write_model_folder
from nlprec.metrics import translation_scores
from nlprec.registry import build_config, get_model
from nlprec.train import Trainer, TrainerConfig, load_checkpoint
from nlprec.train.trainer import resolve_device, resolve_precision

FORMAT = "nlprec-translation-v1"
Arch = Literal["transformer", "gru-attention"]


@dataclass(frozen=True)
class TranslateOptions:
    """Everything `nlprec translate train` sets besides the model config (see the model's config)."""

    arch: Arch = "transformer"  # the registered model to train
    vocab_size: int = 8000  # sentencepiece pieces per model, >= 16
    joint_vocab: bool = True  # one sentencepiece model for both sides (shares embeddings), else one per side
    max_len: int = 100  # drop training pairs with a side longer than this many pieces, >= 1
    valid_size: int = 2000  # held-out validation pairs (at most a tenth of the file), >= 0
    val_bleu_sentences: int = 500  # validation sentences decoded for val BLEU each epoch, >= 1
    val_beam: int = 1  # beam of the validation decoding (1: greedy), >= 1
    max_tokens: int | None = None  # padded source + target tokens per batch (None: 4000 Transformer, 6000 GRU)
    lr: float | None = None  # peak learning rate (None: 1e-3 for both architectures)
    warmup_steps: int | None = None  # linear warmup (None: 400 Transformer, 200 GRU), >= 0
    epochs: int = 100  # passes over the pairs; usually --max-minutes/--max-steps stop first, >= 1
    max_steps: int | None = None  # stop after this many optimizer steps
    max_minutes: float | None = None  # stop after this much training time
    grad_clip: float = 1.0  # global gradient-norm clip, > 0
    patience: int = 5  # epochs without a better validation BLEU before stopping, >= 1
    reverse: bool = False  # swap the columns: translate the second column into the first
    target_lang: str | None = None  # target language code, picks sacrebleu's tokenizer (None: 13a)
    threads: int = 2  # CPU threads for torch, >= 1
    device: str = "auto"  # "auto", "cpu", "cuda"
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"  # autocast; auto: see _precision
    seed: int = 1  # seeds the split, sentencepiece, batching and initialisation
    progress: bool = True  # progress line on stderr

    def __post_init__(self) -> None:
        checks = [
            (self.vocab_size >= 16, f"--vocab-size must be >= 16, got {self.vocab_size}"),
            (self.max_len >= 1, f"--max-len must be >= 1, got {self.max_len}"),
            (self.valid_size >= 0, f"--valid-size must be >= 0, got {self.valid_size}"),
            (self.val_bleu_sentences >= 1, f"val_bleu_sentences must be >= 1, got {self.val_bleu_sentences}"),
            (self.val_beam >= 1, f"val_beam must be >= 1, got {self.val_beam}"),
            (self.max_tokens is None or self.max_tokens >= 64, f"--max-tokens must be >= 64, got {self.max_tokens}"),
            (self.lr is None or self.lr > 0, f"--lr must be > 0, got {self.lr}"),
            (self.threads >= 1, f"--threads must be >= 1, got {self.threads}"),
            (self.precision in ("auto", "fp32", "bf16", "fp16"),
             f"--precision must be auto, fp32, bf16 or fp16, got {self.precision!r}"),
        ]
        require(checks)


@dataclass
class Translation:
    """One hypothesis as text."""

    text: str  # detokenised output
    score: float  # length-normalised log-probability (see nlprec.decoding)
    tokens: list[int]  # target piece ids


def translate_sentences(model: nn.Module, tokenizer: PairsTokenizer, sentences: Sequence[str], beam: int = 5,
                        nbest: int = 1, alpha: float = 0.6, batch_size: int = 64) -> list[list[Translation]]:
    """Translate raw sentences in length-sorted batches; n-best lists in the input order.

    Sources longer than the model's `max_positions` are cut to it; an empty line translates to "".
    """
    device = next(model.parameters()).device
    limit = getattr(model.config, "max_positions", None)
    encoded = [ids[:limit] if limit else ids for ids in tokenizer.source.encode(list(sentences))]
    order = np.argsort([len(ids) for ids in encoded], kind="stable")
    results: list[list[Translation]] = [[Translation("", 0.0, [])] for _ in sentences]
    order = [i for i in order if encoded[i]]
    was_training = model.training
    model.eval()
    for start in range(0, len(order), batch_size):
        rows = order[start:start + batch_size]
        src = _pad([encoded[i] for i in rows]).to(device)  # (B, S)
        nbests = decode(model, src, beam=beam, nbest=nbest, alpha=alpha)
        for row, hypotheses in zip(rows, nbests):
            texts = tokenizer.target.decode([h.tokens for h in hypotheses])
            results[row] = [Translation(text, h.score, h.tokens) for text, h in zip(texts, hypotheses)]
    model.train(was_training)
    return results


def _pad(rows: list[list[int]]) -> torch.Tensor:
    out = torch.full((len(rows), max(len(row) for row in rows)), PAD_ID, dtype=torch.long)  # (B, S)
    for i, row in enumerate(rows):
        out[i, :len(row)] = torch.tensor(row, dtype=torch.long)
    return out


def score_model(model: nn.Module, tokenizer: PairsTokenizer, sources: Sequence[str], references: Sequence[str],
                beam: int = 5, alpha: float = 0.6, target_lang: str | None = None, batch_size: int = 64) -> dict:
    """Translate `sources` and score them against `references`: sacrebleu BLEU/chrF plus speed.

    Validation during training and `evaluate` both go through this function.
    """
    if len(sources) != len(references):
        raise NlprecError(f"{len(sources)} sources but {len(references)} references")
    started = time.perf_counter()
    outputs = translate_sentences(model, tokenizer, sources, beam=beam, alpha=alpha, batch_size=batch_size)
    seconds = time.perf_counter() - started
    hypotheses = [nbest[0].text for nbest in outputs]
    scores = translation_scores(hypotheses, list(references), target_lang)
    return {**scores, "beam": beam, "alpha": alpha, "decode_seconds": seconds,
            "sentences_per_s": len(sources) / max(seconds, 1e-9), "hypotheses": hypotheses}


class Translator:
    """A trained model with its tokenizer and provenance, ready to translate."""

    def __init__(self, model: nn.Module, tokenizer: PairsTokenizer, config: dict[str, Any]):
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.config = config  # the folder's config.json

    @classmethod
    def load(cls, folder: str | Path, device: str = "cpu") -> Translator:
        """Load a model folder written by `train`; anything damaged is a one-line NlprecError."""
        folder = Path(folder)
        config = _read_config(folder)
        with config_errors(folder / "config.json", "translation model"):
            entry = get_model(config["arch"])
            model = entry.model_cls(build_config(entry.config_cls, config["model_config"]))
            if not isinstance(config["options"], dict):
                raise TypeError("options is not an object")
        read_weights(model, folder / "model.pt", "translation weights file")
        order = getattr(model, "piece_order", None)  # the adaptive softmax's ranking of the target pieces
        if order is not None and not torch.equal(order.sort().values, torch.arange(len(order))):
            raise NlprecError(f"{folder / 'model.pt'}: piece_order is not a permutation of the {len(order):,} target "
                              "pieces: the file is damaged")
        tokenizer = PairsTokenizer.load(folder)
        sizes = (tokenizer.source.vocab_size, tokenizer.target.vocab_size)
        expected = (config["model_config"].get("src_vocab"), config["model_config"].get("tgt_vocab"))
        if sizes != expected:
            raise NlprecError(f"{folder}: the sentencepiece vocabularies have {sizes[0]:,}/{sizes[1]:,} pieces but the "
                              f"model was built for {expected[0]}/{expected[1]}: the folder is damaged")
        return cls(model.to(resolve_device(device)), tokenizer, config)

    @property
    def reverse(self) -> bool:
        return bool(self.config["options"].get("reverse", False))

    @property
    def target_lang(self) -> str | None:
        return self.config["options"].get("target_lang")

    def translate(self, sentences: Sequence[str], beam: int = 5, nbest: int = 1, alpha: float = 0.6,
                  batch_size: int = 64) -> list[list[Translation]]:
        """n-best translations (best first) of each sentence."""
        if not 1 <= nbest <= beam:
            raise NlprecError(f"--nbest must be between 1 and --beam ({beam}), got {nbest}")
        return translate_sentences(self.model, self.tokenizer, sentences, beam, nbest, alpha, batch_size)

    def attention(self, sentence: str, layer: int | None = -1, head: int | None = None
                  ) -> tuple[list[str], list[str], np.ndarray]:
        """Greedy translation of one sentence with its attention: (source pieces, output pieces
        with "</s>", weights (len(output), len(source))).

        gru-attention: its additive (Bahdanau) weights; `layer` and `head` are ignored. Transformer:
        the decoder's cross-attention, computed only for this call; `layer` picks a decoder layer
        (0-based, negative from the end; None: the mean over layers), `head` a head (None: the
        mean over heads). `attention_heads` gives every layer and head at once.
        """
        source, output, weights = self._greedy_attention(sentence)
        return source, output, _pick(weights, layer, head)

    def attention_of(self, sentence: str, tokens: Sequence[int], layer: int | None = -1, head: int | None = None
                     ) -> tuple[list[str], list[str], np.ndarray]:
        """The attention of a given output (e.g. one hypothesis of a beam search, its
        `Translation.tokens`), by feeding it to the decoder: (source pieces, output pieces with
        "</s>", weights (len(tokens) + 1, len(source))); `layer` and `head` as in `attention`."""
        return self.attention_of_many([sentence], [tokens], layer, head)[0]

    def attention_of_many(self, sentences: Sequence[str], outputs: Sequence[Sequence[int]], layer: int | None = -1,
                          head: int | None = None) -> list[tuple[list[str], list[str], np.ndarray]]:
        """`attention_of` for many (sentence, output) pairs in one batch: the sources are encoded
        together and the outputs fed to the decoder together, one step per output position."""
        limit = getattr(self.model.config, "max_positions", None)
        encoded = [ids[:limit] if limit else ids for ids in self.tokenizer.source.encode(list(sentences))]
        if not all(encoded):
            raise NlprecError("cannot show attention for an empty sentence: give a sentence with at least one word")
        device = next(self.model.parameters()).device
        width = max(len(tokens) for tokens in outputs) + 1  # each output and its end
        fed = torch.full((len(outputs), width), PAD_ID, dtype=torch.long)  # (N, T): bos, then the output
        fed[:, 0] = BOS_ID
        for row, tokens in enumerate(outputs):
            fed[row, 1:len(tokens) + 1] = torch.tensor(list(tokens), dtype=torch.long)
        steps = []
        with torch.no_grad():
            state = {**self.model.encode(_pad(encoded).to(device)), "return_attention": True}
            for step in range(width):  # decoding is sequential: one step per output position
                _, state = self.model.decode_step(fed[:, step].to(device), state, step)
                steps.append(state["attention"].float().cpu())  # (N, S) GRU, (N, layers, heads, S) Transformer
        weights = torch.stack(steps, dim=1).numpy()  # (N, T, S) or (N, T, layers, heads, S)
        answers = []
        for row, (ids, tokens) in enumerate(zip(encoded, outputs)):
            source = [self.tokenizer.source.id_to_piece(i) for i in ids]
            output = [self.tokenizer.target.id_to_piece(i) for i in tokens] + ["</s>"]
            mine = weights[row, :len(tokens) + 1, ..., :len(ids)]  # this row's steps and source pieces
            answers.append((source, output, _pick(np.ascontiguousarray(mine), layer, head)))  # (T, S)
        return answers

    def attention_heads(self, sentence: str) -> tuple[list[str], list[str], np.ndarray]:
        """Transformer only: every decoder layer's and head's cross-attention, (layers, heads, T, S)."""
        source, output, weights = self._greedy_attention(sentence)
        if weights.ndim == 2:
            raise NlprecError("per-head attention needs a transformer model; gru-attention has one attention")
        return source, output, np.ascontiguousarray(weights.transpose(1, 2, 0, 3))  # (layers, heads, T, S)

    def _greedy_attention(self, sentence: str) -> tuple[list[str], list[str], np.ndarray]:
        ids = self.tokenizer.source.encode([sentence])[0] if sentence.strip() else []
        if not ids:
            raise NlprecError("cannot show attention for an empty sentence: give a sentence with at least one word")
        with torch.no_grad():
            device = next(self.model.parameters()).device
            hypothesis = greedy(self.model, torch.tensor([ids], device=device), return_attention=True)[0]
        source = [self.tokenizer.source.id_to_piece(i) for i in ids]
        output = [self.tokenizer.target.id_to_piece(i) for i in hypothesis.tokens] + ["</s>"]
        return source, output, hypothesis.attention.numpy()  # (T, S) or (T, layers, heads, S)


def _pick(weights: np.ndarray, layer: int | None, head: int | None) -> np.ndarray:
    """(T, S) attention out of (T, S) (one additive attention) or (T, layers, heads, S): decoder
    layer `layer` (None: mean over layers), head `head` (None: mean over heads)."""
    if weights.ndim == 2:  # (T, S): one additive attention
        return weights
    layers, heads = weights.shape[1:3]
    for name, value, count in (("layer", layer, layers), ("head", head, heads)):
        if value is not None and not -count <= value < count:
            raise NlprecError(f"--{name} {value}: this model has {count} decoder {name}s (0..{count - 1})")
    picked = weights.mean(axis=1) if layer is None else weights[:, layer]  # (T, heads, S)
    return picked.mean(axis=1) if head is None else picked[:, head]  # (T, S)


def _read_config(folder: Path) -> dict[str, Any]:
    """The config.json of a translation model folder; a one-line error for anything else."""
    return read_model_config(folder, FORMAT, "translation model", "train one with `nlprec translate train`")


def evaluate(translator: Translator, pairs_path: str | Path, beam: int = 5, alpha: float = 0.6,
             batch_size: int = 64) -> dict:
    """BLEU, chrF, signatures and sentences/s of the translator on a pairs file (read in the
    model's direction: a model trained with `reverse` reads the file reversed too)."""
    pairs = read_pairs(pairs_path, reverse=translator.reverse)
    report = score_model(translator.model, translator.tokenizer, pairs.sources, pairs.targets, beam, alpha,
                         translator.target_lang, batch_size)
    report.pop("hypotheses")
    return {**report, "pairs": str(pairs_path), "data_sha256": pairs.sha256}


def train(pairs_path: str | Path, out: str | Path, options: TranslateOptions = TranslateOptions(),
          overrides: dict[str, Any] | None = None, *, resume: bool = False, log: Callable = print) -> Translator:
    """Train `options.arch` on a pairs file and write the model folder `out` (see the module docstring)."""
    out = Path(out)
    checkpoints = out / "checkpoints"
    if resume and not (checkpoints / "last.pt").is_file():
        raise NlprecError(f"--resume: no checkpoint at {checkpoints / 'last.pt'}; start without --resume")
    if not resume and checkpoints.exists():
        raise NlprecError(f"{out} already holds a training run; pass --resume to continue it or choose another --out")
    torch.set_num_threads(options.threads)
    pairs = read_pairs(pairs_path, reverse=options.reverse)
    train_idx, valid_idx = split_indices(len(pairs.sources), options.valid_size, options.seed)
    train_src = [pairs.sources[i] for i in train_idx]
    train_tgt = [pairs.targets[i] for i in train_idx]
    valid_src = [pairs.sources[i] for i in valid_idx]
    valid_tgt = [pairs.targets[i] for i in valid_idx]
    out.mkdir(parents=True, exist_ok=True)
    if resume:
        tokenizer = PairsTokenizer.load(out)
    else:
        tokenizer = PairsTokenizer.train(out, train_src, train_tgt, options.vocab_size, options.joint_vocab,
                                         options.seed)
    train = encode_pairs(tokenizer, train_src, train_tgt, options.max_len)
    valid = encode_pairs(tokenizer, valid_src, valid_tgt, options.max_len) if valid_src else None
    log(f"pairs {pairs.path}: {len(pairs.sources):,} read, {len(train):,} for training "
        f"({len(train_src) - len(train):,} dropped: empty or over {options.max_len} pieces), "
        f"{len(valid_src):,} held out; vocabulary {tokenizer.source.vocab_size:,}"
        + ("" if tokenizer.joint else f" + {tokenizer.target.vocab_size:,}"))
    if len(train) == 0:
        raise NlprecError(f"{pairs_path}: no training pairs left after length filtering (--max-len {options.max_len})")
    entry = get_model(options.arch)
    precision = resolve_precision(options.precision, resolve_device(options.device))
    model_config = build_config(entry.config_cls, {"src_vocab": tokenizer.source.vocab_size,
                                                   "tgt_vocab": tokenizer.target.vocab_size,
                                                   "share_embeddings": tokenizer.joint,
                                                   **precision_defaults(options.arch, precision,
                                                                         tokenizer.target.vocab_size),
                                                   **(overrides or {})})
    torch.manual_seed(options.seed)
    model = entry.model_cls(model_config)
    if hasattr(model, "order_output_pieces"):  # a resumed run restores the order with the weights
        model.order_output_pieces(target_piece_counts(train, tokenizer.target.vocab_size))
    data = PairsData(train, valid, _max_tokens(options), options.seed)
    n_val = min(options.val_bleu_sentences, len(valid_src))
    trainer_config = _trainer_config(options, out, precision, validate=n_val > 0)

    def evaluator(current: nn.Module) -> dict[str, float]:
        if n_val == 0:
            return {}
        report = score_model(current, tokenizer, valid_src[:n_val], valid_tgt[:n_val], options.val_beam,
                             target_lang=options.target_lang)
        return {"val_bleu": report["bleu"], "val_chrf": report["chrf"]}

    meta = {"arch": options.arch, "data_sha256": pairs.sha256, "options": dataclasses.asdict(options),
            "model_config": dataclasses.asdict(model_config)}
    trainer = Trainer(model, data, trainer_config, evaluator=evaluator, meta=meta)
    if resume:
        checkpoint = load_checkpoint(checkpoints / "last.pt")
        if checkpoint["meta"].get("data_sha256") != pairs.sha256 or checkpoint["meta"].get("arch") != options.arch:
            raise NlprecError(f"--resume: {pairs_path} or --arch differs from the run in {out}; start a new --out")
        _require_same_model(checkpoint["meta"].get("model_config"), dataclasses.asdict(model_config), out)
        trainer.restore(checkpoint)
        log(f"resuming from {checkpoints / 'last.pt'} at step {trainer.state.step}")
    started = time.perf_counter()
    history = trainer.fit()
    seconds = time.perf_counter() - started
    best = checkpoints / "best.pt"
    if best.is_file():
        model.load_state_dict(load_checkpoint(best)["model"])
    model = model.cpu()
    _write_folder(out, model, tokenizer, options, trainer_config, pairs.sha256, str(pairs_path), history,
                  trainer.state.best_metric, seconds, len(train), len(valid_src), trainer.plan())
    log(f"wrote {out} (best val BLEU {trainer.state.best_metric if trainer.state.best_metric is not None else 'n/a'})")
    return Translator.load(out)


def precision_defaults(arch: str, precision: str, tgt_vocab: int = 8000) -> dict[str, Any]:
    """Model sizes that differ from the config's defaults at this (resolved) precision.

    In fp32 the tied output layer dominates a step, so both models use an adaptive softmax whose
    head holds the 2,000 most frequent target pieces (vocabularies of at least 4,000), and the
    GRU's decoder, whose matrix products bound its step, is 256 wide instead of 512. Measured in
    BENCHMARKS.md ("Transformer in fp32 with an adaptive softmax", "GRU in fp32 with the adaptive
    softmax", "Translation in fp32 on an AVX2-only CPU"). --set overrides these."""
    if precision != "fp32":
        return {}
    defaults = {"adaptive_head": 2000} if tgt_vocab >= 4000 and arch in ("transformer", "gru-attention") else {}
    if arch == "gru-attention":
        defaults["decoder_hidden"] = 256
    return defaults


def _require_same_model(saved: dict[str, Any] | None, wanted: dict[str, Any], out: Path) -> None:
    """A resumed run keeps its model: the precision defaults or --set may not change it."""
    if saved is None or saved == wanted:
        return
    changed = ", ".join(f"{key}={saved.get(key)!r} (now {wanted.get(key)!r})"
                        for key in sorted(set(saved) | set(wanted)) if saved.get(key) != wanted.get(key))
    raise NlprecError(f"--resume: the run in {out} was started with {changed}; resume with the same "
                      "--precision and --set, or start a new --out")


def _trainer_config(options: TranslateOptions, out: Path, precision: str, validate: bool) -> TrainerConfig:
    is_transformer = options.arch == "transformer"
    warmup = options.warmup_steps if options.warmup_steps is not None else (400 if is_transformer else 200)
    return TrainerConfig(device=options.device, optimizer="adamw", lr=options.lr or 1e-3, betas=(0.9, 0.98),
                         schedule="inverse_sqrt" if is_transformer else "constant", warmup_steps=warmup,
                         epochs=options.epochs, max_steps=options.max_steps, max_minutes=options.max_minutes,
                         grad_clip=options.grad_clip, seed=options.seed, out_dir=str(out),
                         precision=precision,
                         progress=options.progress, early_stopping_metric="val_bleu" if validate else None,
                         early_stopping_mode="max",
                         patience=options.patience, throughput_unit="tokens", log_every_steps=50)


def _max_tokens(options: TranslateOptions) -> int:
    """Batch size in padded tokens. The Transformer's default is smaller: in a 30-minute CPU budget
    more, smaller updates reached a higher validation BLEU; the GRU keeps the 6,000 it was
    measured with (BENCHMARKS.md)."""
    if options.max_tokens is not None:
        return options.max_tokens
    return 4000 if options.arch == "transformer" else 6000



def _write_folder(out: Path, model: nn.Module, tokenizer: PairsTokenizer, options: TranslateOptions,
                  trainer_config: TrainerConfig, sha256: str, pairs_path: str, history: list[dict[str, Any]],
                  best: float | None, seconds: float, n_train: int, n_valid: int, plan: dict[str, Any]) -> None:
    """The model folder (nlprec.io.write_model_folder); the sentencepiece models are already in place."""
    tokens = sum(record.get("tokens_per_s", 0.0) * record.get("seconds", 0.0) for record in history)
    train_seconds = sum(record.get("seconds", 0.0) for record in history)
    metrics = {"best_val_bleu": best, "epochs": history, "train_seconds": seconds,
               "train_tokens_per_s": tokens / train_seconds if train_seconds else None}
    config = {"format": FORMAT, "arch": options.arch, "model_config": dataclasses.asdict(model.config),
              "options": dataclasses.asdict(options), "trainer_config": dataclasses.asdict(trainer_config),
              "precision": trainer_config.precision, "seed": options.seed, "data_sha256": sha256,
              "pairs": pairs_path, "train_pairs": n_train, "valid_pairs": n_valid, "tokenizer": tokenizer.files(),
              "plan": plan}
    write_model_folder(out, config, model, metrics)


__all__ = ["TranslateOptions", "Translation", "Translator", "train", "translate_sentences",
           "score_model", "evaluate", "precision_defaults", "FORMAT"]
