"""word2vec: skip-gram and CBOW with negative sampling or hierarchical softmax.

Mikolov, Chen, Corrado, Dean, "Efficient Estimation of Word Representations in Vector Space"
(2013) and Mikolov, Sutskever, Chen, Corrado, Dean, "Distributed Representations of Words and
Phrases and their Compositionality" (NeurIPS 2013).

Two ways to train the same objective:
- backend "numba" (CPU): `train_step` runs the compiled kernel of nlprec.nn.embedding_kernels,
  plain SGD with word2vec's linearly decaying rate, Hogwild threads; for skip-gram all
  contexts of a centre word are one small mini-batch sharing its targets (pWord2Vec).
- backend "torch" (GPU): `loss` expands a chunk into predictions with vectorised tensor ops
  and the shared trainer optimises it (sparse gradients, SparseAdam).
`loss` is defined for both, so the CPU model can be scored the same way.
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
from nlprec.errors import NlprecError
from nlprec.nn import embedding_kernels
from nlprec.registry import register
from nlprec.vectors import Vectors


@dataclass(frozen=True)
class Word2VecConfig:
    """The model; data options (min-count, sample) live with the data module."""

    vocab_size: int  # words in the vocabulary, >= 1 (set from the data)
    arch: Literal["skipgram", "cbow"] = "skipgram"  # predict the centre from each context word, or from their mean
    objective: Literal["negative", "hierarchical"] = "negative"  # negative sampling or Huffman-tree softmax
    dim: int = 100  # vector size, >= 1
    window: int = 5  # max context distance on each side, >= 1 (reduced at random per word)
    negative: int = 5  # negative samples per prediction, >= 1 (objective "negative")
    cbow_mean: bool = True  # CBOW hidden = mean of the context vectors (False: their sum)
    backend: Literal["numba", "torch"] = "numba"  # compiled CPU kernel, or batched tensors (GPU)
    threads: int = 2  # CPU threads of the numba kernel, >= 1

    def __post_init__(self) -> None:
        for name, value, low in (("vocab_size", self.vocab_size, 1), ("dim", self.dim, 1),
                                 ("window", self.window, 1), ("negative", self.negative, 1),
                                 ("threads", self.threads, 1)):
            if not isinstance(value, int) or value < low:
                raise NlprecError(f"--{name.replace('_', '-')} must be an integer >= {low}, got {value!r}")


@register("word2vec", config=Word2VecConfig, family="embeddings",
          description="skip-gram / CBOW with negative sampling or hierarchical softmax (Mikolov et al. 2013)")
class Word2Vec(nn.Module):
    """Input vectors (the word vectors) and output vectors (words or Huffman inner nodes)."""

    supports_amp = False  # sparse embedding updates stay in float32

    def __init__(self, config: Word2VecConfig, tables: EmbeddingTables):
        super().__init__()
        self.config = config
        self.manual_optimization = config.backend == "numba"
        vocab, dim = config.vocab_size, config.dim
        outputs = vocab if config.objective == "negative" else max(vocab - 1, 1)
        self.input_vectors = nn.Embedding(vocab, dim, sparse=True)  # (V, d)
        self.output_vectors = nn.Embedding(outputs, dim, sparse=True)  # (V, d) or (V-1, d)
        with torch.no_grad():  # word2vec.c's initialisation
            self.input_vectors.weight.uniform_(-0.5 / dim, 0.5 / dim)
            self.output_vectors.weight.zero_()
        for name in ("keep_prob", "negative_table", "negative_alias", "points", "codes", "code_lengths"):
            self.register_buffer(name, torch.from_numpy(np.ascontiguousarray(getattr(tables, name))), persistent=False)

    # ----- CPU: the compiled kernel -------------------------------------------------------------
    def train_step(self, batch: dict[str, Any], lr: float, lr_end: float | None = None) -> dict[str, float]:
        """Update the weights in place on one chunk; returns the mean loss per prediction."""
        config = self.config
        negative_out = self.output_vectors.weight.data.numpy()
        dummy = np.zeros((1, config.dim), np.float32)
        loss, terms, kept = embedding_kernels.train_chunk(
            self.input_vectors.weight.data.numpy(),
            negative_out if config.objective == "negative" else dummy,
            negative_out if config.objective == "hierarchical" else dummy,
            batch["ids"].numpy(), batch["sentence_ends"].numpy(), self.keep_prob.numpy(),
            self.negative_alias.numpy(), self.points.numpy(), self.codes.numpy(), self.code_lengths.numpy(),
            config.arch == "skipgram", config.objective == "negative", config.window, config.negative,
            config.cbow_mean, lr, lr if lr_end is None else lr_end, int(batch["seed"]), config.threads)
        return {"loss": loss / max(terms, 1), "words_kept": float(kept)}

    # ----- any device: the same objective as tensors ------------------------------------------
    def loss(self, batch: dict[str, Any]) -> torch.Tensor:
        """Mean -log p over the chunk's predictions (subsampling, windows and negatives drawn here)."""
        hidden, targets = self._hidden_and_targets(batch["ids"].long(), batch["sentence_ends"].long())
        if targets.numel() == 0:
            return self.input_vectors.weight.sum() * 0.0
        if self.config.objective == "negative":
            return self._negative_sampling_loss(hidden, targets)
        return self._hierarchical_loss(hidden, targets)

    def _hidden_and_targets(self, ids: torch.Tensor, ends: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        positions = torch.arange(len(ids), device=ids.device)
        sentence = torch.bucketize(positions, ends, right=True)  # (N,) sentence of each word
        keep = torch.rand(len(ids), device=ids.device) < self.keep_prob[ids]
        ids, sentence = ids[keep], sentence[keep]  # (n,) after subsampling
        reach = self.config.window - torch.randint(0, self.config.window, ids.shape, device=ids.device)  # (n,)
        if self.config.arch == "skipgram":
            return self._skipgram_pairs(ids, sentence, reach)
        return self._cbow_means(ids, sentence, reach)

    def _skipgram_pairs(self, ids, sentence, reach) -> tuple[torch.Tensor, torch.Tensor]:
        centres, contexts = skipgram_pairs(ids, sentence, reach, self.config.window)
        return self.input_vectors(contexts), centres  # (P, d), (P,)

    def _cbow_means(self, ids, sentence, reach) -> tuple[torch.Tensor, torch.Tensor]:
        window = self.config.window
        offsets = torch.cat([torch.arange(-window, 0), torch.arange(1, window + 1)]).to(ids.device)  # (2W,)
        where = torch.arange(len(ids), device=ids.device)[:, None] + offsets  # (n, 2W)
        inside = (where >= 0) & (where < len(ids))
        where = where.clamp(0, max(len(ids) - 1, 0))
        valid = inside & (sentence[where] == sentence[:, None]) & (offsets.abs() <= reach[:, None])  # (n, 2W)
        vectors = self.input_vectors(ids[where]) * valid[..., None]  # (n, 2W, d)
        count = valid.sum(1)  # (n,)
        hidden = vectors.sum(1)  # (n, d)
        if self.config.cbow_mean:
            hidden = hidden / count.clamp(min=1)[:, None]
        has_context = count > 0
        return hidden[has_context], ids[has_context]

    def _negative_sampling_loss(self, hidden, targets) -> torch.Tensor:
        draws = torch.randint(0, len(self.negative_table), (len(targets), self.config.negative), device=targets.device)
        negatives = self.negative_table[draws].long()  # (P, K)
        positive_logit = (hidden * self.output_vectors(targets)).sum(-1)  # (P,)
        negative_logit = torch.bmm(self.output_vectors(negatives), hidden[:, :, None]).squeeze(-1)  # (P, K)
        distinct = negatives != targets[:, None]  # word2vec.c skips a negative equal to the target
        total = -F.logsigmoid(positive_logit).sum() - (F.logsigmoid(-negative_logit) * distinct).sum()
        return total / (len(targets) + distinct.sum())

    def _hierarchical_loss(self, hidden, targets) -> torch.Tensor:
        nodes = self.points[targets].long()  # (P, L) inner nodes from the root
        labels = 1.0 - self.codes[targets].float()  # (P, L) word2vec.c predicts 1 - code
        on_path = torch.arange(nodes.shape[1], device=nodes.device) < self.code_lengths[targets][:, None]  # (P, L)
        logits = (self.output_vectors(nodes) * hidden[:, None, :]).sum(-1)  # (P, L)
        losses = F.binary_cross_entropy_with_logits(logits, labels, reduction="none")
        return (losses * on_path).sum() / on_path.sum().clamp(min=1)

    # ----- export -----------------------------------------------------------------------------
    def to_vectors(self, words: list[str], meta: dict[str, Any] | None = None) -> Vectors:
        """The input vectors as a `Vectors` (what gensim and word2vec.c save)."""
        return Vectors(words, self.input_vectors.weight.detach().float().cpu().numpy(), meta)
