"""BiRNN: a bidirectional LSTM or GRU over word vectors for text classification.

As in Dive into Deep Learning, section 16.2 ("Sentiment Analysis: Using Recurrent Neural
Networks"): a multi-layer bidirectional RNN reads the word vectors; the outputs of the top
layer at the first and at the last time step (each both directions, 2 x hidden) are
concatenated and a linear layer gives the class scores. Sequences are packed
(`pack_padded_sequence`), so padding costs no computation and the last step is each text's own
last word, not a padding position. Embedding modes as in TextCNN (Kim 2014): "rand",
"static" (pretrained, fixed) and "non-static" (pretrained, fine-tuned).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from nlprec.nn.recurrent import run_recurrent
from nlprec.registry import register


@dataclass(frozen=True)
class BiRNNConfig:
    """Sizes of the BiRNN; `vocab_size` and `n_classes` come from the data."""

    vocab_size: int = 2  # word ids incl. padding (0) and unknown (1), >= 2
    n_classes: int = 2  # output classes, >= 2
    dim: int = 100  # word-vector size (the embeddings' when pretrained vectors are given), >= 1
    cell: Literal["lstm", "gru"] = "lstm"  # recurrent cell
    hidden: int = 100  # hidden units per direction, >= 1
    layers: int = 2  # stacked bidirectional layers, >= 1
    dropout: float = 0.3  # dropout on the embeddings, between layers and before the output, in [0, 1)
    embedding_mode: Literal["rand", "static", "non-static"] = "rand"  # Kim's modes (no multichannel)

    def __post_init__(self) -> None:
        from nlprec.errors import require

        require([(self.vocab_size >= 2, f"vocab_size must be >= 2, got {self.vocab_size}"),
                 (self.n_classes >= 2, f"n_classes must be >= 2, got {self.n_classes}"),
                 (self.dim >= 1, f"dim must be >= 1, got {self.dim}"),
                 (self.hidden >= 1, f"hidden must be >= 1, got {self.hidden}"),
                 (self.layers >= 1, f"layers must be >= 1, got {self.layers}"),
                 (0 <= self.dropout < 1, f"dropout must be in [0, 1), got {self.dropout}"),
                 (self.embedding_mode in ("rand", "static", "non-static"),
                  f"embedding_mode for birnn must be rand, static or non-static, got {self.embedding_mode!r}")])


@register("birnn", config=BiRNNConfig, family="classification",
          description="bidirectional LSTM/GRU, first and last states concatenated (d2l 16.2)")
class BiRNN(nn.Module):
    """Batch keys: "tokens" (B, T) int64 ids (0 = padding), "lengths" (B,) int64 >= 1,
    "labels" (B,) int64 (for the loss)."""

    def __init__(self, config: BiRNNConfig, pretrained: torch.Tensor | None = None):
        super().__init__()
        self.config = config
        self.embedding = nn.Embedding(config.vocab_size, config.dim, padding_idx=0)
        nn.init.uniform_(self.embedding.weight, -0.25, 0.25)
        if pretrained is not None:
            self.embedding.weight.data.copy_(pretrained)
        with torch.no_grad():
            self.embedding.weight[0].zero_()
        self.embedding.weight.requires_grad_(config.embedding_mode != "static")
        rnn = nn.LSTM if config.cell == "lstm" else nn.GRU
        self.rnn = rnn(config.dim, config.hidden, num_layers=config.layers, bidirectional=True, batch_first=True,
                       dropout=config.dropout if config.layers > 1 else 0.0)
        self.dropout = nn.Dropout(config.dropout)
        self.out = nn.Linear(4 * config.hidden, config.n_classes)

    def forward(self, batch: dict[str, Any]) -> torch.Tensor:
        """Class logits (B, n_classes)."""
        tokens = batch["tokens"]  # (B, T)
        lengths = batch["lengths"].clamp(min=1)  # (B,)
        x = self.dropout(self.embedding(tokens))  # (B, T, dim)
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        outputs, _ = run_recurrent(self.rnn, packed)  # fp32 on CUDA: nlprec.nn.recurrent
        outputs, _ = pad_packed_sequence(outputs, batch_first=True)  # (B, T', 2H), T' = max length
        last = outputs[torch.arange(len(lengths), device=outputs.device), lengths.to(outputs.device) - 1]  # (B, 2H)
        encoding = torch.cat([outputs[:, 0], last], dim=1)  # (B, 4H)
        return self.out(self.dropout(encoding))  # (B, C)

    def loss(self, batch: dict[str, Any]) -> torch.Tensor:
        """Mean cross-entropy of the logits against batch["labels"]."""
        return F.cross_entropy(self(batch), batch["labels"])

    @torch.no_grad()
    def predict_proba(self, batch: dict[str, Any]) -> torch.Tensor:
        """Softmax class probabilities (B, n_classes)."""
        return torch.softmax(self(batch).float(), dim=-1)


__all__ = ["BiRNN", "BiRNNConfig"]
