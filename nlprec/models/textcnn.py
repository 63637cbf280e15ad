"""TextCNN: convolutions over word vectors with max-over-time pooling.

Kim 2014, "Convolutional Neural Networks for Sentence Classification" (EMNLP), section 2:
filters of widths 3, 4 and 5 (100 feature maps each) slide over the sequence of word vectors,
a ReLU follows, each map keeps its maximum over time, the concatenated maxima pass dropout 0.5
and a linear softmax layer. The paper's four embedding modes (section 3.1):

- "rand": word vectors randomly initialised and trained;
- "static": pretrained vectors kept fixed;
- "non-static": pretrained vectors fine-tuned;
- "multichannel": two copies of the pretrained vectors, one fixed and one fine-tuned; every
  filter is applied to both channels and the results are added.

Kim's l2 constraint on the output weights (||w||_2 <= s = 3, rescaled after each step) is here
a max-norm reparametrisation applied in the forward pass (`max_norm`), since only the trainer
steps the optimizer; None turns it off (with Adam it matters little: Zhang & Wallace 2017).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from nlprec.registry import register

EmbeddingMode = Literal["rand", "static", "non-static", "multichannel"]


@dataclass(frozen=True)
class TextCNNConfig:
    """Sizes of TextCNN; `vocab_size` and `n_classes` come from the data."""

    vocab_size: int = 2  # word ids incl. padding (0) and unknown (1), >= 2
    n_classes: int = 2  # output classes, >= 2
    dim: int = 300  # word-vector size (the embeddings' when pretrained vectors are given), >= 1
    widths: tuple[int, ...] = (3, 4, 5)  # filter widths in words, each >= 1
    maps: int = 100  # feature maps per width, >= 1
    dropout: float = 0.5  # dropout on the pooled features, in [0, 1)
    max_norm: float | None = None  # l2 bound on each class's output weights (Kim: 3.0), > 0; None: off
    embedding_mode: EmbeddingMode = "rand"  # Kim's rand | static | non-static | multichannel

    def __post_init__(self) -> None:
        from nlprec.errors import require

        object.__setattr__(self, "widths", tuple(self.widths))  # JSON gives a list back
        require([(self.vocab_size >= 2, f"vocab_size must be >= 2, got {self.vocab_size}"),
                 (self.n_classes >= 2, f"n_classes must be >= 2, got {self.n_classes}"),
                 (self.dim >= 1, f"dim must be >= 1, got {self.dim}"),
                 (len(self.widths) >= 1 and all(w >= 1 for w in self.widths), f"widths must be >= 1: {self.widths}"),
                 (self.maps >= 1, f"maps must be >= 1, got {self.maps}"),
                 (0 <= self.dropout < 1, f"dropout must be in [0, 1), got {self.dropout}"),
                 (self.max_norm is None or self.max_norm > 0, f"max_norm must be > 0, got {self.max_norm}")])


def _conv_input(embedded: torch.Tensor) -> torch.Tensor:
    """(B, T, dim) word vectors -> (B, dim, T), contiguous and already in the autocast dtype.

    Cast and transposed once here, the three convolutions share one copy instead of each
    making its own (a fifth of a bf16 prediction's time was such copies: BENCHMARKS.md).
    """
    x = embedded.transpose(1, 2)  # (B, dim, T)
    if torch.is_autocast_enabled(x.device.type):
        x = x.to(torch.get_autocast_dtype(x.device.type))
    return x.contiguous()


@register("textcnn", config=TextCNNConfig, family="classification",
          description="TextCNN (Kim 2014): widths 3/4/5 convolutions, max-over-time pooling")
class TextCNN(nn.Module):
    """Batch keys: "tokens" (B, T) int64 ids (0 = padding), "labels" (B,) int64 (for the loss)."""

    def __init__(self, config: TextCNNConfig, pretrained: torch.Tensor | None = None):
        super().__init__()
        self.config = config
        self.embedding = nn.Embedding(config.vocab_size, config.dim, padding_idx=0)
        nn.init.uniform_(self.embedding.weight, -0.25, 0.25)  # Kim's U[-a, a] for random vectors
        if pretrained is not None:
            self.embedding.weight.data.copy_(pretrained)
        with torch.no_grad():
            self.embedding.weight[0].zero_()
        self.embedding.weight.requires_grad_(config.embedding_mode in ("rand", "non-static", "multichannel"))
        if config.embedding_mode == "multichannel":
            self.static_embedding = nn.Embedding(config.vocab_size, config.dim, padding_idx=0)
            self.static_embedding.weight.data.copy_(self.embedding.weight.data)
            self.static_embedding.weight.requires_grad_(False)
        self.convs = nn.ModuleList(nn.Conv1d(config.dim, config.maps, width) for width in config.widths)
        self.dropout = nn.Dropout(config.dropout)
        self.out = nn.Linear(config.maps * len(config.widths), config.n_classes)

    def _conv_features(self, x: torch.Tensor, lengths: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """(B, dim, T) -> (B, maps * len(widths)) max-over-time features, before the ReLU.

        Only windows inside the text count (a text shorter than a filter keeps its one window),
        so a prediction does not depend on how much padding its batch needed. `y`: the static
        channel of multichannel, seen by the same filters and added.
        """
        pooled = []
        for conv in self.convs:
            maps = conv(x)  # (B, maps, T - width + 1)
            if y is not None:
                maps = maps + F.conv1d(y, conv.weight)  # same filters on the static channel
            width = conv.kernel_size[0]
            windows = (lengths - width + 1).clamp(min=1)  # (B,) windows inside each text, at least one
            valid = torch.arange(maps.shape[2], device=maps.device)[None, :] < windows[:, None]  # (B, T')
            pooled.append(maps.masked_fill_(~valid[:, None, :], float("-inf")).amax(dim=2))  # (B, maps)
        return torch.cat(pooled, dim=1)  # (B, maps * n_widths)

    def forward(self, batch: dict[str, Any]) -> torch.Tensor:
        """Class logits (B, n_classes)."""
        tokens = batch["tokens"]  # (B, T)
        lengths = batch["lengths"] if "lengths" in batch else (tokens != 0).sum(1)  # (B,)
        widest = max(self.config.widths)
        if tokens.shape[1] < widest:  # every filter needs at least its width
            tokens = F.pad(tokens, (0, widest - tokens.shape[1]), value=0)  # (B, widest)
        x = _conv_input(self.embedding(tokens))  # (B, dim, T)
        y = _conv_input(self.static_embedding(tokens)) if self.config.embedding_mode == "multichannel" else None
        features = self._conv_features(x, lengths.to(x.device), y)  # (B, maps * n_widths)
        # max-over-time then ReLU equals ReLU then max-over-time (ReLU is monotone), and is cheaper
        features = self.dropout(F.relu(features))
        weight = self.out.weight
        if self.config.max_norm is not None:
            weight = torch.renorm(weight, p=2, dim=0, maxnorm=self.config.max_norm)  # (C, F)
        return F.linear(features, weight, self.out.bias)  # (B, C)

    def loss(self, batch: dict[str, Any]) -> torch.Tensor:
        """Mean cross-entropy of the logits against batch["labels"]."""
        return F.cross_entropy(self(batch), batch["labels"])

    @torch.no_grad()
    def predict_proba(self, batch: dict[str, Any]) -> torch.Tensor:
        """Softmax class probabilities (B, n_classes)."""
        return torch.softmax(self(batch).float(), dim=-1)


__all__ = ["TextCNN", "TextCNNConfig", "EmbeddingMode"]
