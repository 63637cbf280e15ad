"""fastText: skip-gram and CBOW over words and their character n-grams, negative sampling.

Bojanowski, Grave, Joulin, Mikolov, "Enriching Word Vectors with Subword Information"
(TACL 2017). A word's vector is the mean of its own row and the rows of its hashed character
n-grams (nlprec.data.subwords, bit-compatible with Facebook's fastText), so a word never seen in
training still gets a vector from its n-grams.

Two ways to train the same objective, as word2vec:
- backend "numba" (CPU): `train_step` runs nlprec.nn.subword_kernels, plain SGD with a linearly
  decaying rate, Hogwild threads;
- backend "torch" (GPU): `loss` expands a chunk into predictions with vectorised tensor ops
  (word vectors as `embedding_bag` means) and the shared trainer optimises it (SparseAdam).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from nlprec.data.embedding_data import skipgram_pairs
from nlprec.data.embedding_tables import EmbeddingTables
from nlprec.data.subwords import SubwordSpec, subword_rows
from nlprec.errors import NlprecError
from nlprec.nn import subword_kernels
from nlprec.registry import register
from nlprec.subword_vectors import SubwordVectors


@dataclass(frozen=True)
class FastTextConfig:
    """The model; data options (min-count, sample) live with the data module."""

    vocab_size: int  # words in the vocabulary, >= 1 (set from the data)
    arch: Literal["skipgram", "cbow"] = "skipgram"  # centre predicts each context, or the contexts' mean the centre
    dim: int = 100  # vector size, >= 1
    window: int = 5  # max context distance on each side, >= 1 (reduced at random per word)
    negative: int = 5  # negative samples per prediction, >= 1
    min_n: int = 3  # shortest character n-gram, >= 1
    max_n: int = 6  # longest character n-gram, >= min_n (0: no n-grams, word vectors only)
    buckets: int = 2_000_000  # hash buckets (rows) for n-grams, >= 1
    backend: Literal["numba", "torch"] = "numba"  # compiled CPU kernel, or batched tensors (GPU)
    threads: int = 2  # CPU threads of the numba kernel, >= 1

    def __post_init__(self) -> None:
        for name, value, low in (("vocab_size", self.vocab_size, 1), ("dim", self.dim, 1),
                                 ("window", self.window, 1), ("negative", self.negative, 1),
                                 ("threads", self.threads, 1), ("max_n", self.max_n, 0)):
            if not isinstance(value, int) or value < low:
                raise NlprecError(f"--{name.replace('_', '-')} must be an integer >= {low}, got {value!r}")
        self.spec  # validates min_n, max_n, buckets

    @property
    def spec(self) -> SubwordSpec:
        return SubwordSpec(self.min_n, self.max_n, self.buckets)

    @property
    def input_rows(self) -> int:
        """Rows of the input matrix: the words, then the n-gram buckets (none without n-grams)."""
        return self.vocab_size + (self.buckets if self.spec.enabled else 0)


@register("fasttext", config=FastTextConfig, family="embeddings",
          description="subword skip-gram / CBOW with negative sampling (Bojanowski et al. 2017)")
class FastText(nn.Module):
    """Input rows (words + n-gram buckets) composed into word vectors, and output word vectors."""

    supports_amp = False  # sparse embedding updates stay in float32

    def __init__(self, config: FastTextConfig, tables: EmbeddingTables, words: list[str]):
        super().__init__()
        if len(words) != config.vocab_size:
            raise ValueError(f"{len(words)} words for vocab_size {config.vocab_size}")
        self.config = config
        self.manual_optimization = config.backend == "numba"
        dim = config.dim
        # fastText's initialisation, drawn once (nn.Embedding's own normal_ fill of ~800 MB would be overwritten)
        inputs = torch.empty(config.input_rows, dim).uniform_(-1.0 / dim, 1.0 / dim)  # (V + buckets, d)
        self.input_vectors = nn.Embedding(config.input_rows, dim, sparse=True, _weight=inputs)
        self.output_vectors = nn.Embedding(config.vocab_size, dim, sparse=True,
                                           _weight=torch.zeros(config.vocab_size, dim))  # (V, d)
        offsets, rows = subword_rows(words, config.spec, np.arange(len(words)), config.vocab_size)
        self.register_buffer("row_offsets", torch.from_numpy(offsets), persistent=False)  # (V+1,) CSR of rows
        self.register_buffer("rows", torch.from_numpy(rows), persistent=False)  # (R,) input rows of each word
        for name in ("keep_prob", "negative_table", "negative_alias"):
            self.register_buffer(name, torch.from_numpy(np.ascontiguousarray(getattr(tables, name))), persistent=False)

    # ----- CPU: the compiled kernel -------------------------------------------------------------
    def train_step(self, batch: dict[str, Any], lr: float, lr_end: float | None = None) -> dict[str, float]:
        """Update the weights in place on one chunk; returns the mean loss per prediction."""
        config = self.config
        loss, terms, kept = subword_kernels.train_chunk(
            self.input_vectors.weight.data.numpy(), self.output_vectors.weight.data.numpy(),
            self.row_offsets.numpy(), self.rows.numpy(), batch["ids"].numpy(), batch["sentence_ends"].numpy(),
            self.keep_prob.numpy(), self.negative_alias.numpy(), config.arch == "skipgram", config.window,
            config.negative, lr, lr if lr_end is None else lr_end, int(batch["seed"]), config.threads)
        return {"loss": loss / max(terms, 1), "words_kept": float(kept)}

    # ----- any device: the same objective as tensors ------------------------------------------
    def loss(self, batch: dict[str, Any]) -> torch.Tensor:
        """Mean -log p over the chunk's predictions (subsampling, windows and negatives drawn here)."""
        ids, ends = batch["ids"].long(), batch["sentence_ends"].long()
        positions = torch.arange(len(ids), device=ids.device)
        sentence = torch.bucketize(positions, ends, right=True)  # (N,) sentence of each word
        keep = torch.rand(len(ids), device=ids.device) < self.keep_prob[ids]
        ids, sentence = ids[keep], sentence[keep]  # (n,) after subsampling
        reach = self.config.window - torch.randint(0, self.config.window, ids.shape, device=ids.device)  # (n,)
        if self.config.arch == "skipgram":
            hidden, targets = self._skipgram_pairs(ids, sentence, reach)
        else:
            hidden, targets = self._cbow_means(ids, sentence, reach)
        if targets.numel() == 0:
            return self.input_vectors.weight.sum() * 0.0
        return self._negative_sampling_loss(hidden, targets)

    def _row_bags(self, words: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Flattened input rows of `words` (W,) and each word's bag offset, for embedding_bag."""
        starts, stops = self.row_offsets[words], self.row_offsets[words + 1]  # (W,)
        lengths = stops - starts
        bag_offsets = torch.cumsum(lengths, 0) - lengths  # (W,)
        within = torch.arange(int(lengths.sum()), device=words.device) - torch.repeat_interleave(bag_offsets, lengths)
        return self.rows[torch.repeat_interleave(starts, lengths) + within].long(), bag_offsets

    def word_vectors(self, words: torch.Tensor, mode: str = "mean") -> torch.Tensor:
        """(W, d) mean (or sum) of each word's input rows."""
        flat, bag_offsets = self._row_bags(words)
        return F.embedding_bag(flat, self.input_vectors.weight, bag_offsets, mode=mode, sparse=True)

    def _skipgram_pairs(self, ids, sentence, reach) -> tuple[torch.Tensor, torch.Tensor]:
        centres, contexts = skipgram_pairs(ids, sentence, reach, self.config.window)
        unique, inverse = torch.unique(centres, return_inverse=True)  # (U,), (P,)
        return self.word_vectors(unique)[inverse], contexts  # (P, d), (P,)

    def _cbow_means(self, ids, sentence, reach) -> tuple[torch.Tensor, torch.Tensor]:
        window = self.config.window
        offsets = torch.cat([torch.arange(-window, 0), torch.arange(1, window + 1)]).to(ids.device)  # (2W,)
        where = torch.arange(len(ids), device=ids.device)[:, None] + offsets  # (n, 2W)
        inside = (where >= 0) & (where < len(ids))
        where = where.clamp(0, max(len(ids) - 1, 0))
        valid = inside & (sentence[where] == sentence[:, None]) & (offsets.abs() <= reach[:, None])  # (n, 2W)
        unique, inverse = torch.unique(ids, return_inverse=True)  # (U,), (n,)
        sums = self.word_vectors(unique, mode="sum")  # (U, d) sum of each word's rows
        lengths = (self.row_offsets[unique + 1] - self.row_offsets[unique]).float()  # (U,)
        context = inverse[where]  # (n, 2W) unique index of each context word
        weight = valid.float()  # (n, 2W)
        hidden = torch.einsum("nc,ncd->nd", weight, sums[context])  # (n, d) sum over all context rows
        rows = (weight * lengths[context]).sum(1)  # (n,) rows in each context
        has_context = rows > 0
        return hidden[has_context] / rows[has_context, None], ids[has_context]

    def _negative_sampling_loss(self, hidden, targets) -> torch.Tensor:
        draws = torch.randint(0, len(self.negative_table), (len(targets), self.config.negative), device=targets.device)
        negatives = self.negative_table[draws].long()  # (P, K)
        positive_logit = (hidden * self.output_vectors(targets)).sum(-1)  # (P,)
        negative_logit = torch.bmm(self.output_vectors(negatives), hidden[:, :, None]).squeeze(-1)  # (P, K)
        distinct = negatives != targets[:, None]  # fastText also skips a negative equal to the target
        total = -F.logsigmoid(positive_logit).sum() - (F.logsigmoid(-negative_logit) * distinct).sum()
        return total / (len(targets) + distinct.sum())

    # ----- export -----------------------------------------------------------------------------
    def to_vectors(self, words: list[str], meta: dict[str, Any] | None = None) -> SubwordVectors:
        """Word vectors (mean of word + n-gram rows) with the n-gram rows kept for unseen words."""
        weight = self.input_vectors.weight.detach().float().cpu().numpy()  # (V + buckets, d)
        with torch.no_grad():
            composed = self.word_vectors(torch.arange(len(words), device=self.rows.device)).float().cpu().numpy()
        return SubwordVectors(words, composed, weight[len(words):], self.config.spec, meta)
