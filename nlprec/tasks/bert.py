"""Pretrain, load, probe and evaluate BERT models: the API behind `nlprec bert`.

`train(corpus, out, options)` reads a corpus (formats in nlprec.data.bert_data), holds out a
seeded share of its documents, trains sentencepiece on the rest, cuts BERT examples and trains
masked LM (+ next-sentence prediction) through the shared trainer: AdamW with weight decay off
for biases and LayerNorms, linear warmup then linear decay to zero over the run: its steps (the
data and the epochs, capped by --max-steps) or, where it comes first, its --max-minutes budget,
which the trainer plans against the time the run really takes, so the rate reaches zero when
the budget runs out (config.json's "plan" records what was planned and done); gradient
clipping; bf16 autocast on CPUs with bf16 units and on CUDA. After every epoch, and when the time or steps run out, the held-out
documents are scored (masked once with a fixed seed): MLM and NSP loss and accuracy, logged
apart; the best held-out loss is the checkpoint that becomes the model. The model folder:

    config.json    format, model config, options, trainer config, seed, data sha256, held-out
                   scores, nlprec version (written last: its presence marks a model)
    spm.model      the sentencepiece model ([PAD]=0, [CLS]=4, [SEP]=5, [MASK]=6)
    model.pt       the weights, a plain state dict of CPU tensors (read by nlprec.io.read_weights)
    metrics.json   per-epoch records, training tokens/s, held-out scores
    checkpoints/   the trainer's last.pt and best.pt (resume with `resume=True`)

`PretrainedBert.load(folder)` gives `fill` (top-k pieces for each [MASK]), `evaluate` (held-out
MLM accuracy and perplexity, NSP accuracy) and `embed` ([CLS] or mean-pooled sentence vectors).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Literal, Sequence

import numpy as np
import torch
from torch import nn

from nlprec.data.bert_data import (CLS_ID, FIRST_PIECE, MASK_ID, MASK_PIECE, SEP_ID, TOKENIZER_FILE, CorpusFormat,
                                   Documents, Masking, PretrainingData, check_tokenizer, create_examples,
                                   encode_documents, fixed_batches, read_documents, split_documents, train_tokenizer)
from nlprec.data.batching import inference_passes
from nlprec.data.tokenize import PAD_ID, UNK_ID, SentencePieceTokenizer
from nlprec.errors import NlprecError, require
from nlprec.io import config_errors, read_model_config, read_weights, write_model_folder
from nlprec.models.bert import Bert, BertConfig
from nlprec.registry import build_config
from nlprec.train import Trainer, TrainerConfig, load_checkpoint
from nlprec.train.trainer import resolve_device, resolve_precision

FORMAT = "nlprec-bert-v1"
WORDPIECE_FILE = "tokenizer.json"  # the tokenizers-library tokenizer of an imported folder
# Padded tokens per forward pass of `embed` on a CPU: a pass of about a thousand tokens keeps its
# activations in cache (MiniLM-L6 shape, 2-core EPYC: 197 sentences/s at 1,024 against 94 at
# 16,384; BENCHMARKS.md, "bert embed").
BATCH_TOKENS = 1024


@dataclass(frozen=True)
class PretrainOptions:
    """Everything `nlprec bert pretrain` sets besides the model config (see BertConfig)."""

    format: CorpusFormat = "auto"  # corpus layout (nlprec.data.bert_data)
    column: int | None = None  # read only this TAB-separated field of each line (0-based), None: whole lines
    encoding: str = "utf-8"  # corpus encoding ("latin-1" for single-byte files)
    vocab_size: int = 8000  # sentencepiece pieces, reserved ones included, >= 16
    max_len: int = 128  # pieces per example with [CLS] and [SEP]s, >= 8
    short_seq_prob: float = 0.1  # share of documents cut to a random shorter target, in [0, 1]
    objectives: Literal["mlm+nsp", "mlm"] = "mlm+nsp"  # masked LM plus next-sentence prediction, or MLM only
    masking: Literal["dynamic", "static"] = "dynamic"  # new masks every epoch (from the seed) or drawn once
    mask_prob: float = 0.15  # share of non-special positions predicted, in (0, 1)
    max_predictions: int = 20  # most predicted positions per example, >= 1
    batch_size: int = 32  # examples per step, >= 1
    lr: float = 5e-4  # peak learning rate, > 0
    warmup_fraction: float = 0.1  # linear warmup as a share of the run (its steps, or its --max-minutes), in [0, 1)
    weight_decay: float = 0.01  # AdamW decoupled decay on weight matrices, >= 0
    epochs: int = 40  # passes over the examples (BERT's 40); --max-minutes usually stops first, >= 1
    max_steps: int | None = None  # stop after this many steps
    max_minutes: float | None = None  # training time budget
    grad_clip: float = 1.0  # global gradient-norm clip, > 0
    heldout_fraction: float = 0.02  # share of documents held out (at least 2, at most a fifth), in [0, 0.5]
    heldout_examples: int = 512  # held-out examples scored after each epoch, >= 1
    masking_seed: int = 12345  # seed of the held-out examples and masks
    threads: int = 2  # CPU threads for torch, >= 1
    device: str = "auto"  # "auto", "cpu", "cuda"
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"  # auto: see _precision
    seed: int = 1  # seeds the split, sentencepiece, examples, masks and initialisation
    progress: bool = True  # progress line on stderr

    def __post_init__(self) -> None:
        require([
            (self.vocab_size >= 16, f"--vocab-size must be >= 16, got {self.vocab_size}"),
            (self.max_len >= 8, f"--max-len must be >= 8 ([CLS] A [SEP] B [SEP] needs room), got {self.max_len}"),
            (0 <= self.short_seq_prob <= 1, f"short_seq_prob must be in [0, 1], got {self.short_seq_prob}"),
            (0 < self.mask_prob < 1, f"--mask-prob must be in (0, 1), got {self.mask_prob}"),
            (self.max_predictions >= 1, f"--max-predictions must be >= 1, got {self.max_predictions}"),
            (self.batch_size >= 1, f"--batch-size must be >= 1, got {self.batch_size}"),
            (self.lr > 0, f"--lr must be > 0, got {self.lr}"),
            (0 <= self.warmup_fraction < 1, f"--warmup-fraction must be in [0, 1), got {self.warmup_fraction}"),
            (self.epochs >= 1, f"--epochs must be >= 1, got {self.epochs}"),
            (self.max_steps is None or self.max_steps >= 1, f"--max-steps must be >= 1, got {self.max_steps}"),
            (self.max_minutes is None or self.max_minutes > 0, f"--max-minutes must be > 0, got {self.max_minutes}"),
            (0 <= self.heldout_fraction <= 0.5, f"--heldout-fraction must be in [0, 0.5], got {self.heldout_fraction}"),
            (self.heldout_examples >= 1, f"heldout_examples must be >= 1, got {self.heldout_examples}"),
            (self.threads >= 1, f"--threads must be >= 1, got {self.threads}"),
            (self.precision in ("auto", "fp32", "bf16", "fp16"),
             f"--precision must be auto, fp32, bf16 or fp16, got {self.precision!r}"),
            (self.objectives in ("mlm+nsp", "mlm"), f"objectives must be 'mlm+nsp' or 'mlm', got {self.objectives!r}"),
            (self.masking in ("dynamic", "static"), f"masking must be 'dynamic' or 'static', got {self.masking!r}"),
        ])

    @property
    def next_sentence(self) -> bool:
        return self.objectives == "mlm+nsp"

    def masking_rule(self, vocab_size: int) -> Masking:
        return Masking(vocab_size, self.mask_prob, self.max_predictions)


# ----- scoring ---------------------------------------------------------------------------------
def evaluate_batches(model: Bert, batches: Sequence[dict[str, Any]], autocast: torch.dtype | None = None,
                     mask_id: int = MASK_ID) -> dict[str, float]:
    """MLM and NSP loss and accuracy of `model` over fixed batches (sums over positions/examples).

    mlm_perplexity = exp(mean MLM cross-entropy). The headline mlm_accuracy counts every
    predicted position, and BERT keeps 10% of them unchanged: the answer is in the input there,
    so they inflate it. mlm_accuracy_masked / _random / _kept split it by what the input held
    ([MASK], a random piece, the piece itself), and majority_accuracy_masked is the accuracy
    at the [MASK] positions of always answering the most frequent target piece (the
    unigram plateau a model must beat). NSP entries are None when the batches carry no
    nsp_labels or the model has no NSP head. `mask_id`: the model's [MASK] piece.
    """
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    sums = {"mlm_loss": 0.0, "mlm_correct": 0.0, "positions": 0, "nsp_loss": 0.0, "nsp_correct": 0.0, "pairs": 0}
    vocab = model.config.vocab_size
    by_kind = torch.zeros(2, 3, dtype=torch.float64)  # (correct/total, masked/random/kept)
    label_counts = torch.zeros(2, vocab, dtype=torch.float64)  # (all, masked) target counts per piece
    examples = 0
    context = torch.autocast(device.type, dtype=autocast) if autocast else contextlib.nullcontext()
    with torch.no_grad(), context:
        for batch in batches:
            hidden = model(batch["input_ids"].to(device), batch["segment_ids"].to(device))  # (B, T, d)
            states = hidden.reshape(-1, hidden.shape[-1])[batch["mlm_positions"].to(device)]  # (M, d)
            logits = model.mlm_logits(states).float()  # (M, V)
            labels = batch["mlm_labels"].to(device)  # (M,)
            correct = logits.argmax(-1) == labels  # (M,)
            sums["mlm_loss"] += float(nn.functional.cross_entropy(logits, labels, reduction="sum"))
            sums["mlm_correct"] += float(correct.sum())
            sums["positions"] += len(labels)
            examples += len(batch["input_ids"])
            shown = batch["input_ids"].reshape(-1)[batch["mlm_positions"]]  # (M,) what the input held there
            labels_cpu = labels.cpu()
            kind = torch.where(shown == mask_id, 0, torch.where(shown == labels_cpu, 2, 1))  # (M,)
            by_kind[0] += torch.bincount(kind[correct.cpu()], minlength=3)
            by_kind[1] += torch.bincount(kind, minlength=3)
            label_counts[0] += torch.bincount(labels_cpu, minlength=vocab)[:vocab]
            label_counts[1] += torch.bincount(labels_cpu[kind == 0], minlength=vocab)[:vocab]
            if model.nsp is not None and "nsp_labels" in batch:
                nsp_logits = model.nsp_logits(hidden).float()  # (B, 2)
                nsp_labels = batch["nsp_labels"].to(device)  # (B,)
                sums["nsp_loss"] += float(nn.functional.cross_entropy(nsp_logits, nsp_labels, reduction="sum"))
                sums["nsp_correct"] += float((nsp_logits.argmax(-1) == nsp_labels).sum())
                sums["pairs"] += len(nsp_labels)
    model.train(was_training)
    mlm_loss = sums["mlm_loss"] / max(sums["positions"], 1)
    has_nsp = sums["pairs"] > 0
    share = (by_kind[0] / by_kind[1].clamp(min=1)).tolist()
    majority = int(label_counts[0].argmax())
    return {"mlm_accuracy": sums["mlm_correct"] / max(sums["positions"], 1), "mlm_loss": mlm_loss,
            "mlm_perplexity": math.exp(min(mlm_loss, 50.0)),
            "mlm_accuracy_masked": share[0], "mlm_accuracy_random": share[1], "mlm_accuracy_kept": share[2],
            "masked_positions_by_kind": {"masked": int(by_kind[1, 0]), "random": int(by_kind[1, 1]),
                                         "kept": int(by_kind[1, 2])},
            "majority_piece_id": majority,
            "majority_accuracy_masked": float(label_counts[1, majority] / label_counts[1].sum().clamp(min=1)),
            "nsp_accuracy": sums["nsp_correct"] / sums["pairs"] if has_nsp else None,
            "nsp_loss": sums["nsp_loss"] / sums["pairs"] if has_nsp else None,
            "examples": examples, "masked_positions": sums["positions"]}


def heldout_batches(documents: Documents, tokenizer: SentencePieceTokenizer, max_len: int, masking: Masking,
                    masking_seed: int, next_sentence: bool, batch_size: int = 64,
                    max_examples: int | None = None) -> list[dict[str, Any]]:
    """Examples of `documents` cut and masked with `masking_seed` only: the same for every model
    with this tokenizer. NSP pairs need two documents; with one, MLM-only examples."""
    corpus = encode_documents(tokenizer, documents)
    next_sentence = next_sentence and corpus.n_docs >= 2
    examples = create_examples(corpus, max_len, np.random.default_rng(masking_seed), next_sentence)
    if max_examples is not None and len(examples) > max_examples:
        keep = np.sort(np.random.default_rng(masking_seed).permutation(len(examples))[:max_examples])
        examples = type(examples)(*(getattr(examples, f.name)[keep] for f in dataclasses.fields(examples)))
    return fixed_batches(corpus, examples, masking, masking_seed, batch_size, next_sentence)


# ----- the trained model -----------------------------------------------------------------------
@dataclass
class MaskGuess:
    """One candidate for one [MASK]."""

    piece: str  # the sentencepiece piece ("▁" marks a word start)
    token_id: int  # its id
    probability: float  # softmax probability at that position


class PretrainedBert:
    """A pretrained BERT with its tokenizer and provenance: nlprec's own (sentencepiece) or one
    imported from transformers / sentence-transformers (WordPiece, nlprec.tasks.bert_checkpoints).

    The sentence-embedding contract the CLI and the server share: `max_tokens`, `pooling`,
    `normalize`, `dimensions`, `tokenize` (ids with [CLS] ... [SEP]), `embed_ids` (one forward
    pass without padding) and `embed` (length-sorted batches under a token budget, input order restored).
    """

    def __init__(self, model: Bert, tokenizer: Any, config: dict[str, Any]):
        self.model = model.eval()
        self.tokenizer = tokenizer  # SentencePieceTokenizer or nlprec.data.wordpiece.WordPieceTokenizer
        self.config = config  # the folder's config.json
        self.cls_id, self.sep_id, self.mask_id = (getattr(tokenizer, "cls_id", CLS_ID), getattr(tokenizer, "sep_id", SEP_ID),
                                                  getattr(tokenizer, "mask_id", MASK_ID))
        self.pad_id = model.config.pad_id
        embedding = config.get("embedding") or {}  # sentence-transformers folders say theirs
        self._pooling: str = embedding.get("pooling", "mean")
        self._normalize: bool = bool(embedding.get("normalize", False))
        self._max_tokens = min(int(embedding.get("max_tokens") or model.config.max_positions),
                               model.config.max_positions)

    @classmethod
    def load(cls, folder: str | Path, device: str = "cpu") -> PretrainedBert:
        """Load a model folder written by `pretrain` or `nlprec bert import`; anything else is a
        one-line NlprecError."""
        folder = Path(folder)
        config = read_config(folder)
        with config_errors(folder / "config.json", "BERT model"):
            model = Bert(build_config(BertConfig, config["model_config"]))
            embedding = config.get("embedding") or {}
            if embedding.get("pooling", "mean") not in ("cls", "mean", "max"):
                raise NlprecError(f"embedding pooling must be cls, mean or max, got {embedding['pooling']!r}")
        read_weights(model, folder / "model.pt", "BERT weights")
        tokenizer = load_tokenizer(folder, config)
        return cls(model.to(resolve_device(device)), tokenizer, config)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    # ----- the sentence-embedding contract (CLI `bert embed`, POST /v1/embeddings) -----
    @property
    def max_tokens(self) -> int:
        """The most tokens one input may have, [CLS] and [SEP] included."""
        return self._max_tokens

    @property
    def pooling(self) -> str:
        """The model's own pooling: "cls", "mean" or "max" (nlprec's own folders: "mean")."""
        return self._pooling

    @property
    def normalize(self) -> bool:
        """Whether the model's own sentence vectors are L2-normalised."""
        return self._normalize

    @property
    def dimensions(self) -> int:
        """The width of a sentence vector."""
        return self.model.config.hidden

    def tokenize(self, texts: Sequence[str], truncate: bool = False) -> list[list[int]]:
        """[CLS] piece ids [SEP] of each text. An input over `max_tokens` is cut to it (the final
        [SEP] kept) with `truncate`, else refused with an NlprecError naming its index and length."""
        if isinstance(texts, str):
            raise TypeError("tokenize takes a list of texts; wrap a single text in a list")
        room = self.max_tokens - 2
        rows = self.tokenizer.encode(list(texts))
        if not truncate:
            for index, row in enumerate(rows):
                if len(row) > room:
                    raise NlprecError(f"input {index} has {len(row) + 2} tokens, over the model's limit of "
                                      f"{self.max_tokens}; shorten it or ask for truncation")
        return [[self.cls_id, *row[:room], self.sep_id] for row in rows]

    def embed_ids(self, ids: Sequence[Sequence[int]], pooling: str | None = None,
                  normalize: bool | None = None) -> np.ndarray:
        """float32 (N, dimensions): the model's own pooling and normalisation (or those given)
        over exactly these id lists, as one forward pass without padding (the caller batches)."""
        pooling = self.pooling if pooling is None else pooling
        normalize = self.normalize if normalize is None else normalize
        if pooling not in ("cls", "mean", "max"):
            raise NlprecError(f"pooling must be cls, mean or max, got {pooling!r}")
        if not len(ids):
            return np.zeros((0, self.dimensions), dtype=np.float32)
        lengths = torch.tensor([len(row) for row in ids])  # (B,)
        if int(lengths.min()) < 1 or int(lengths.max()) > self.model.config.max_positions:
            raise NlprecError(f"id lists must hold 1 to {self.model.config.max_positions} ids, got "
                              f"{int(lengths.min())} to {int(lengths.max())}")
        flat = torch.tensor([i for row in ids for i in row], dtype=torch.long, device=self.device)  # (N,)
        lengths = lengths.to(self.device)
        with torch.inference_mode():
            states = self.model.encoder.forward_packed(flat, lengths).float()  # (N, d)
            pooled = pool_packed(states, lengths, pooling)  # (B, d)
            if normalize:
                pooled = nn.functional.normalize(pooled, p=2.0, dim=1)  # (B, d)
        return pooled.cpu().numpy().astype(np.float32, copy=False)

    def embed(self, texts: Sequence[str], pooling: str | None = None, normalize: bool | None = None,
              batch_tokens: int = BATCH_TOKENS, truncate: bool = True) -> np.ndarray:
        """float32 (N, dimensions) sentence vectors: texts sorted by length, cut into forward passes of
        at most `batch_tokens` padded tokens (at least one text each) by the server's planner
        (nlprec.data.batching.inference_passes), vectors in the input order.
        pooling / normalize None: the model's own. Texts over `max_tokens` are cut (`truncate`)."""
        if batch_tokens < 1:
            raise NlprecError(f"batch_tokens must be >= 1, got {batch_tokens}")
        encoded = self.tokenize(texts, truncate)
        vectors = np.zeros((len(encoded), self.dimensions), dtype=np.float32)
        for rows in inference_passes([len(row) for row in encoded], batch_tokens):
            vectors[rows] = self.embed_ids([encoded[i] for i in rows], pooling, normalize)
        return vectors

    # ----- fill-mask and evaluation -----
    def encode(self, text: str) -> list[int]:
        """[CLS] pieces [SEP] of a text; each "[MASK]" becomes the mask piece alone, the text
        between masks is encoded as separate words (as a masked word looks in training)."""
        parts = text.split(MASK_PIECE)
        ids: list[int] = [self.cls_id]
        for index, piece_ids in enumerate(self.tokenizer.encode(parts)):
            ids.extend(piece_ids)
            if index < len(parts) - 1:
                ids.append(self.mask_id)
        limit = self.model.config.max_positions - 1
        if len(ids) > limit:
            raise NlprecError(f"text of {len(ids) + 1} pieces exceeds the model's {limit + 1}: {text[:60]!r}")
        return ids + [self.sep_id]

    def reserved_ids(self) -> list[int]:
        """Ids `fill` never proposes: the special pieces, and rows of the model's vocabulary the
        tokenizer lacks (checkpoints often pad the embedding table)."""
        special = getattr(self.tokenizer, "special_ids", None)
        reserved = list(range(FIRST_PIECE)) if special is None else list(special)
        return reserved + list(range(self.tokenizer.vocab_size, self.model.config.vocab_size))

    def fill(self, texts: Sequence[str], k: int = 5) -> list[list[list[MaskGuess]]]:
        """The k most probable learned pieces for every [MASK] of every text (text, mask, rank)."""
        if k < 1:
            raise NlprecError(f"--k must be >= 1, got {k}")
        reserved = torch.tensor(self.reserved_ids(), dtype=torch.long)
        results = []
        for text in texts:
            ids = self.encode(text)
            positions = [i for i, piece in enumerate(ids) if piece == self.mask_id]
            if not positions:
                raise NlprecError(f"no {MASK_PIECE} in {text[:80]!r}; write {MASK_PIECE} where a piece is to be guessed")
            with torch.no_grad():
                hidden = self.model(torch.tensor([ids], device=self.device))  # (1, T, d)
                logits = self.model.mlm_logits(hidden[0, positions]).float().cpu()  # (masks, V)
            logits[:, reserved] = float("-inf")  # never propose a reserved piece
            probabilities = torch.softmax(logits, dim=-1)
            top = probabilities.topk(min(k, probabilities.shape[1] - len(reserved)), dim=-1)
            results.append([[MaskGuess(self.tokenizer.id_to_piece(int(i)), int(i), float(p))
                             for p, i in zip(values.tolist(), indices.tolist())]
                            for values, indices in zip(top.values, top.indices)])
        return results

    def filled_text(self, text: str, guesses: list[list[MaskGuess]]) -> str:
        """The text with each [MASK] replaced by its best guess, decoded."""
        ids = self.encode(text)[1:-1]
        best = iter(g[0].token_id for g in guesses)
        return self.tokenizer.decode([[next(best) if i == self.mask_id else i for i in ids]])[0]

    def evaluate(self, path: str | Path, format: CorpusFormat = "auto", column: int | None = None,
                 encoding: str = "utf-8", masking_seed: int | None = None, batch_size: int = 64) -> dict[str, Any]:
        """Held-out scores on a corpus file: {"mlm_accuracy", "mlm_perplexity", "nsp_accuracy",
        "examples", "masking_seed", ...}; examples cut and masked with `masking_seed` (default:
        the model's), the masking rule and max length of pretraining. An imported (WordPiece)
        folder is cut and masked by the same rules (BERT's defaults, PretrainOptions) through
        `PieceLayout`; its random replacements are drawn from its non-special pieces."""
        options = {**dataclasses.asdict(PretrainOptions()), **self.config.get("options", {})}
        seed = options["masking_seed"] if masking_seed is None else masking_seed
        documents = read_documents(path, format, encoding, column)
        layout = None if isinstance(self.tokenizer, SentencePieceTokenizer) else PieceLayout(self.tokenizer)
        tokenizer = self.tokenizer if layout is None else layout
        masking = Masking(tokenizer.vocab_size, options["mask_prob"], options["max_predictions"])
        next_sentence = self.model.nsp is not None and self.model.config.segments >= 2
        batches = heldout_batches(documents, tokenizer, min(options["max_len"], self.model.config.max_positions),
                                  masking, seed, next_sentence, batch_size)
        if layout is not None:
            batches = [layout.to_model_ids(batch) for batch in batches]
        report = evaluate_batches(self.model, batches, mask_id=self.mask_id)
        return {**report, "majority_piece": self.tokenizer.id_to_piece(report["majority_piece_id"]),
                "masking_seed": seed, "corpus": str(path), "data_sha256": documents.sha256,
                "documents": len(documents)}


class PieceLayout:
    """An imported WordPiece vocabulary renumbered into nlprec's pretraining layout, so that
    nlprec.data.bert_data cuts and masks its text unchanged: [PAD], [UNK], [CLS], [SEP] and [MASK]
    at nlprec's reserved ids, the other special pieces read as [UNK], the non-special pieces from
    FIRST_PIECE on (so random replacements are drawn among them). `to_model_ids` maps a batch back
    to the checkpoint's ids."""

    def __init__(self, tokenizer: Any):
        self.tokenizer = tokenizer
        special = set(tokenizer.special_ids)
        pieces = np.array([i for i in range(tokenizer.vocab_size) if i not in special], dtype=np.int64)  # (P,)
        self.vocab_size = FIRST_PIECE + len(pieces)
        to_model = np.full(self.vocab_size, tokenizer.unk_id, dtype=np.int64)  # (V',) layout id -> checkpoint id
        to_model[[PAD_ID, CLS_ID, SEP_ID, MASK_ID]] = [tokenizer.pad_id, tokenizer.cls_id, tokenizer.sep_id,
                                                        tokenizer.mask_id]
        to_model[FIRST_PIECE:] = pieces
        self.to_model = torch.from_numpy(to_model)  # (V',)
        self.from_model = np.full(tokenizer.vocab_size, UNK_ID, dtype=np.int64)  # (V,) checkpoint id -> layout id
        self.from_model[pieces] = np.arange(FIRST_PIECE, self.vocab_size)

    def encode(self, texts: Sequence[str]) -> list[np.ndarray]:
        """Layout ids of each text's pieces (no [CLS]/[SEP])."""
        return [self.from_model[np.asarray(row, dtype=np.int64)] for row in self.tokenizer.encode(list(texts))]

    def to_model_ids(self, batch: dict[str, Any]) -> dict[str, Any]:
        """A held-out batch with its input ids (B, T) and labels (M,) in the checkpoint's ids."""
        return {**batch, "input_ids": self.to_model[batch["input_ids"]], "mlm_labels": self.to_model[batch["mlm_labels"]]}


def pool_packed(states: torch.Tensor, lengths: torch.Tensor, pooling: str) -> torch.Tensor:
    """Sentence vectors (B, d) from the final states of packed rows (N, d) of `lengths` (B,): the
    [CLS] state, the mean, or the per-dimension max (as sentence-transformers' Pooling)."""
    if pooling == "cls":
        return states[torch.cumsum(lengths, 0) - lengths]  # (B, d): each row's first token
    rows = torch.repeat_interleave(torch.arange(len(lengths), device=states.device), lengths)  # (N,) row of each token
    pooled = states.new_zeros(len(lengths), states.shape[1])  # (B, d)
    if pooling == "mean":
        return pooled.index_add_(0, rows, states) / lengths[:, None]  # (B, d)
    return pooled.scatter_reduce_(0, rows[:, None].expand_as(states), states, "amax", include_self=False)  # (B, d)


def load_tokenizer(folder: Path, config: dict[str, Any]) -> Any:
    """The folder's tokenizer: sentencepiece (nlprec's own pretraining) or a tokenizers-library
    tokenizer.json (imported checkpoints)."""
    name = config.get("tokenizer", TOKENIZER_FILE)
    if not isinstance(name, str) or "/" in name or name not in (TOKENIZER_FILE, WORDPIECE_FILE):
        raise NlprecError(f"{folder / 'config.json'}: tokenizer must be {TOKENIZER_FILE!r} or {WORDPIECE_FILE!r}, "
                          f"got {name!r}")
    if name == WORDPIECE_FILE:
        from nlprec.data.wordpiece import WordPieceTokenizer

        return WordPieceTokenizer.load(folder / WORDPIECE_FILE)
    tokenizer = SentencePieceTokenizer.load(folder / TOKENIZER_FILE)
    check_tokenizer(tokenizer, str(folder / TOKENIZER_FILE))
    return tokenizer


def read_config(folder: Path) -> dict[str, Any]:
    """The config.json of a BERT model folder; a one-line error for anything else."""
    return read_model_config(folder, FORMAT, "BERT model", "pretrain one with `nlprec bert pretrain`")


# ----- pretraining -----------------------------------------------------------------------------
def train(corpus: str | Path, out: str | Path, options: PretrainOptions = PretrainOptions(),
          overrides: dict[str, Any] | None = None, *, resume: bool = False, log: Callable = print) -> PretrainedBert:
    """Pretrain BERT on a corpus and write the model folder `out` (see the module docstring).

    Every input check runs before anything is written.
    """
    out = Path(out)
    checkpoints = out / "checkpoints"
    if resume and not (checkpoints / "last.pt").is_file():
        raise NlprecError(f"--resume: no checkpoint at {checkpoints / 'last.pt'}; start without --resume")
    if not resume and (checkpoints.exists() or (out / "config.json").exists()):
        raise NlprecError(f"{out} already holds a model or a training run; pass --resume to continue it or choose "
                          "another --out")
    torch.set_num_threads(options.threads)
    documents = read_documents(corpus, options.format, options.encoding, options.column)
    if options.next_sentence and len(documents) < 2:
        raise NlprecError(f"{corpus}: one document ({documents.format} format); next-sentence prediction needs at "
                          "least two: separate documents (see --format) or pass --no-nsp for masked LM only")
    model_config = build_config(BertConfig, {"max_positions": options.max_len, "objectives": options.objectives,
                                             **(overrides or {})})
    train_docs, held_docs = split_documents(len(documents), options.heldout_fraction,
                                            2 if options.next_sentence else 1, options.seed)
    train_documents, held_documents = documents.select(train_docs), documents.select(held_docs)
    out.mkdir(parents=True, exist_ok=True)
    if resume:
        tokenizer = SentencePieceTokenizer.load(out / TOKENIZER_FILE)
    else:
        tokenizer = train_tokenizer(out / TOKENIZER_FILE, train_documents, options.vocab_size, options.seed)
    model_config = dataclasses.replace(model_config, vocab_size=tokenizer.vocab_size)
    encoded = encode_documents(tokenizer, train_documents)
    examples = create_examples(encoded, options.max_len, np.random.default_rng(options.seed), options.next_sentence,
                               options.short_seq_prob)
    masking = options.masking_rule(tokenizer.vocab_size)
    data = PretrainingData(encoded, examples, masking, options.batch_size, options.seed, options.next_sentence,
                           options.masking == "static")
    held = heldout_batches(held_documents, tokenizer, options.max_len, masking, options.masking_seed,
                           options.next_sentence, max_examples=options.heldout_examples) if len(held_docs) else []
    log(f"corpus {corpus} ({documents.format}): {len(documents):,} documents, {len(documents.sentences):,} sentences; "
        f"{len(train_docs):,} for training -> {len(examples):,} examples of <= {options.max_len} pieces "
        f"({int(encoded.tokens.size):,} pieces), {len(held_docs):,} held out; vocabulary {tokenizer.vocab_size:,}")
    total = total_steps(options, data, out, resume)
    config = trainer_config(options, out, total, validate=bool(held))
    torch.manual_seed(options.seed)
    model = Bert(model_config)
    trainer = Trainer(model, data, config, evaluator=evaluator(held),
                      meta={"data_sha256": documents.sha256, "options": dataclasses.asdict(options)})
    if resume:
        checkpoint = load_checkpoint(checkpoints / "last.pt")
        if checkpoint["meta"].get("data_sha256") != documents.sha256:
            raise NlprecError(f"--resume: {corpus} differs from the corpus of the run in {out}; start a new --out")
        trainer.restore(checkpoint)
        log(f"resuming from {checkpoints / 'last.pt'} at step {trainer.state.step}")
    started = time.perf_counter()
    history = trainer.fit()
    seconds = time.perf_counter() - started
    if (checkpoints / "best.pt").is_file():
        model.load_state_dict(load_checkpoint(checkpoints / "best.pt")["model"])
    model = model.cpu()
    heldout = evaluate_batches(model, held) if held else None
    _write_folder(out, model, options, config, documents, history, heldout, seconds, len(examples), trainer.plan())
    log(f"wrote {out}" + (f" (held-out MLM accuracy {heldout['mlm_accuracy']:.3f}: at [MASK] "
                          f"{heldout['mlm_accuracy_masked']:.3f} (always the most frequent piece: "
                          f"{heldout['majority_accuracy_masked']:.3f}), random {heldout['mlm_accuracy_random']:.3f}, "
                          f"kept {heldout['mlm_accuracy_kept']:.3f}" +
                          (f", NSP accuracy {heldout['nsp_accuracy']:.3f})" if heldout["nsp_accuracy"] is not None
                           else ")") if heldout else " (no held-out documents)"))
    return PretrainedBert.load(out)


def total_steps(options: PretrainOptions, data: PretrainingData, out: Path | None = None,
                resume: bool = False) -> int:
    """The run's step cap: epochs x steps per epoch, capped by --max-steps; a resumed run keeps
    its first run's, so its schedule continues where it stopped. A --max-minutes budget is
    planned by the trainer against the time the run really takes (Trainer.lr_at)."""
    if resume and out is not None:
        return int(load_checkpoint(out / "checkpoints" / "last.pt")["trainer_config"]["max_steps"])
    total = data.steps_per_epoch() * options.epochs
    return min(total, options.max_steps) if options.max_steps else total


def trainer_config(options: PretrainOptions, out: Path | None, total: int, validate: bool) -> TrainerConfig:
    """AdamW (torch's fused kernel: one pass over each weight instead of a per-weight loop), linear
    warmup over a share of the run and linear decay to zero at its end: the end of `total` steps,
    or of the --max-minutes budget where that comes first."""
    precision = resolve_precision(options.precision, resolve_device(options.device))
    return TrainerConfig(device=options.device, precision=precision, optimizer="adamw",
                         fused_optimizer=True, lr=options.lr,
                         weight_decay=options.weight_decay, betas=(0.9, 0.999), schedule="linear",
                         warmup_fraction=options.warmup_fraction, epochs=options.epochs, max_steps=total,
                         max_minutes=options.max_minutes, grad_clip=options.grad_clip, seed=options.seed,
                         out_dir=str(out) if out is not None else None, progress=options.progress,
                         early_stopping_metric="val_loss" if validate else None, early_stopping_mode="min",
                         patience=max(options.epochs, 1), throughput_unit="tokens", log_every_steps=50)


def evaluator(held: list[dict[str, Any]]) -> Callable[[nn.Module], dict[str, float]]:
    """The trainer's per-epoch held-out scoring: val_loss (mlm + nsp) and the parts apart."""
    def evaluate_held(model: nn.Module) -> dict[str, float]:
        if not held:
            return {}
        report = evaluate_batches(model, held)
        metrics = {"val_loss": report["mlm_loss"] + (report["nsp_loss"] or 0.0), "val_mlm": report["mlm_loss"],
                   "val_mlm_accuracy": report["mlm_accuracy"], "val_mlm_perplexity": report["mlm_perplexity"],
                   "val_mlm_accuracy_masked": report["mlm_accuracy_masked"],
                   "val_mlm_accuracy_random": report["mlm_accuracy_random"],
                   "val_mlm_accuracy_kept": report["mlm_accuracy_kept"],
                   "val_majority_accuracy_masked": report["majority_accuracy_masked"]}
        if report["nsp_accuracy"] is not None:
            metrics.update(val_nsp=report["nsp_loss"], val_nsp_accuracy=report["nsp_accuracy"])
        return metrics
    return evaluate_held


def _write_folder(out: Path, model: Bert, options: PretrainOptions, training: TrainerConfig,
                  documents: Documents, history: list[dict[str, Any]], heldout: dict[str, Any] | None,
                  seconds: float, n_examples: int, plan: dict[str, Any]) -> None:
    """The model folder (nlprec.io.write_model_folder); spm.model is already in place."""
    tokens = sum(record.get("tokens_per_s", 0.0) * record.get("seconds", 0.0) for record in history)
    train_seconds = sum(record.get("seconds", 0.0) for record in history)
    metrics = {"heldout": heldout, "epochs": history, "train_seconds": seconds,
               "train_tokens_per_s": tokens / train_seconds if train_seconds else None}
    config = {"format": FORMAT, "model_config": dataclasses.asdict(model.config), "options": dataclasses.asdict(options),
              "trainer_config": dataclasses.asdict(training), "precision": training.precision, "seed": options.seed,
              "data_sha256": documents.sha256, "corpus": documents.path, "corpus_format": documents.format,
              "documents": len(documents), "train_examples": n_examples, "heldout": heldout,
              "tokenizer": TOKENIZER_FILE, "plan": plan}
    write_model_folder(out, config, model, metrics)


__all__ = ["PretrainOptions", "PretrainedBert", "MaskGuess", "PieceLayout", "train", "evaluate_batches",
           "heldout_batches", "total_steps", "trainer_config", "evaluator", "read_config", "FORMAT",
           "TOKENIZER_FILE"]
