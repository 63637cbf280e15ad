"""GRU encoder-decoder with additive attention for translation.

Bahdanau, Cho and Bengio 2015, "Neural Machine Translation by Jointly Learning to Align and
Translate": a bidirectional GRU reads the source; a GRU decoder attends over its outputs with
additive attention computed from the previous decoder state s_{t-1}, reads [y_{t-1}; c_t] and
predicts y_t from [s_t; c_t; y_{t-1}] through a tanh layer whose output is projected by the
(tied) target embedding. The decoder state starts from tanh(W [forward last; backward first]).
Teacher forcing during training; padding is packed away in the encoder and masked in attention.
`adaptive_head` > 0 makes that projection an adaptive softmax (nlprec.nn.adaptive_softmax), the
fp32 default of translation (nlprec.tasks.translate.precision_defaults).

Decoding interface (nlprec.decoding): `encode(src)` returns a batch-first state dict;
`decode_step(tokens, state, step)` returns log-probabilities and the next state, whose
"attention" entry (N, S) holds this step's attention weights for inspection.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from nlprec.data.tokenize import PAD_ID
from nlprec.errors import require
from nlprec.nn.attention import AdditiveAttention
from nlprec.nn.dropout import Dropout
from nlprec.nn.adaptive_softmax import TiedAdaptiveSoftmax
from nlprec.nn.recurrent import run_recurrent
from nlprec.registry import register


@dataclass(frozen=True)
class GRUAttentionConfig:
    """Sizes and regularisation of the GRU encoder-decoder."""

    src_vocab: int = 8000  # source pieces, >= 4 (pad, unk, bos, eos)
    tgt_vocab: int = 8000  # target pieces, >= 4
    embed_dim: int = 256  # embedding size (also the tied output layer's input), >= 1
    hidden: int = 256  # encoder GRU size per direction, >= 1
    decoder_hidden: int = 512  # decoder GRU size, >= 1 (translation in fp32 picks 256: translate.precision_defaults)
    attention_dim: int = 256  # hidden size of the additive attention, >= 1
    encoder_layers: int = 1  # stacked encoder GRU layers, >= 1
    bidirectional: bool = True  # read the source both ways (the paper's encoder)
    dropout: float = 0.2  # on embeddings and the pre-output layer, in [0, 1)
    share_embeddings: bool = True  # one embedding for source and target (needs src_vocab == tgt_vocab)
    label_smoothing: float = 0.1  # epsilon of the smoothed targets, in [0, 1)
    adaptive_head: int = 0  # 0: full softmax; k: adaptive softmax, the k most frequent target pieces in its head

    def __post_init__(self) -> None:
        checks = [
            (self.src_vocab >= 4 and self.tgt_vocab >= 4, "vocabularies need at least 4 pieces"),
            (min(self.embed_dim, self.hidden, self.decoder_hidden, self.attention_dim, self.encoder_layers) >= 1,
             "embed_dim, hidden, decoder_hidden, attention_dim and encoder_layers must be >= 1"),
            (0 <= self.dropout < 1, f"dropout must be in [0, 1), got {self.dropout}"),
            (0 <= self.label_smoothing < 1, f"label_smoothing must be in [0, 1), got {self.label_smoothing}"),
            (0 <= self.adaptive_head < self.tgt_vocab,
             f"adaptive_head must be in [0, tgt_vocab={self.tgt_vocab}), got {self.adaptive_head}"),
            (not self.share_embeddings or self.src_vocab == self.tgt_vocab,
             "share_embeddings needs src_vocab == tgt_vocab (a joint sentencepiece model)"),
        ]
        require(checks)


@register("gru-attention", config=GRUAttentionConfig, family="sequence",
          description="GRU encoder-decoder with additive attention (Bahdanau et al. 2015)")
class GRUAttention(TiedAdaptiveSoftmax, nn.Module):
    """Bidirectional GRU encoder, GRU decoder with Bahdanau attention; `loss(batch)` as the Transformer's."""

    def __init__(self, config: GRUAttentionConfig):
        super().__init__()
        self.config = config
        c = config
        directions = 2 if c.bidirectional else 1
        memory_dim = c.hidden * directions
        self.tgt_embed = nn.Embedding(c.tgt_vocab, c.embed_dim, padding_idx=PAD_ID)
        self.src_embed = self.tgt_embed if c.share_embeddings else nn.Embedding(c.src_vocab, c.embed_dim,
                                                                                padding_idx=PAD_ID)
        self.encoder = nn.GRU(c.embed_dim, c.hidden, num_layers=c.encoder_layers, batch_first=True,
                              bidirectional=c.bidirectional, dropout=c.dropout if c.encoder_layers > 1 else 0.0)
        self.bridge = nn.Linear(memory_dim, c.decoder_hidden)
        self.attention = AdditiveAttention(c.decoder_hidden, memory_dim, c.attention_dim)
        self.cell = nn.GRUCell(c.embed_dim + memory_dim, c.decoder_hidden)
        self.pre_output = nn.Linear(c.decoder_hidden + memory_dim + c.embed_dim, c.embed_dim)
        self.dropout = Dropout(c.dropout)
        self._add_adaptive_head(c.embed_dim)

    def encode(self, src: torch.Tensor) -> dict[str, Any]:
        """src (B, S) -> state: memory (B, S, M), projected keys (B, S, A), keep (B, S), hidden (B, H)."""
        keep = src != PAD_ID  # (B, S)
        lengths = keep.sum(dim=1).clamp(min=1).cpu()  # (B,)
        embedded = self.dropout(self.src_embed(src))  # (B, S, E)
        packed = pack_padded_sequence(embedded, lengths, batch_first=True, enforce_sorted=False)
        outputs, last = run_recurrent(self.encoder, packed)  # last: (layers * directions, B, hidden)
        memory, _ = pad_packed_sequence(outputs, batch_first=True, total_length=src.shape[1])  # (B, S, M)
        top = last[-2:] if self.config.bidirectional else last[-1:]  # (directions, B, hidden)
        summary = top.transpose(0, 1).reshape(src.shape[0], -1)  # (B, M): [forward last; backward first]
        return {"memory": memory, "keys": self.attention.project_keys(memory), "keep": keep,
                "hidden": torch.tanh(self.bridge(summary))}

    def _step(self, embedded: torch.Tensor, state: dict[str, Any]) -> tuple[torch.Tensor, dict[str, Any]]:
        """One decoder step from embedded previous tokens (N, E): pre-output features (N, E) and next state."""
        # context (N, M), weights (N, S)
        context, weights = self.attention(state["hidden"], state["keys"], state["memory"], state["keep"])
        hidden = self.cell(torch.cat([embedded, context], dim=-1), state["hidden"])  # (N, H)
        features = torch.tanh(self.pre_output(torch.cat([hidden, context, embedded], dim=-1)))  # (N, E)
        return features, {**state, "hidden": hidden, "attention": weights}

    def forward(self, src: torch.Tensor, tgt_in: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Teacher forcing: pre-output features (B, T, E) and attention weights (B, T, S)."""
        state = self.encode(src)
        embedded = self.dropout(self.tgt_embed(tgt_in))  # (B, T, E)
        features, weights = [], []
        for t in range(tgt_in.shape[1]):
            output, state = self._step(embedded[:, t], state)
            features.append(output)
            weights.append(state["attention"])
        return torch.stack(features, dim=1), torch.stack(weights, dim=1)  # (B, T, E), (B, T, S)

    def loss(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """Label-smoothed cross-entropy of `tgt_out` (non-padding positions only), plus the plain NLL."""
        features, _ = self(batch["src"], batch["tgt_in"])  # (B, T, E)
        counted = batch["tgt_out"] != PAD_ID  # (B, T)
        return self.output_loss(self.dropout(features[counted]), batch["tgt_out"][counted])  # dropout before the output

    def decode_step(self, tokens: torch.Tensor, state: dict[str, Any], step: int
                    ) -> tuple[torch.Tensor, dict[str, Any]]:
        """tokens (N,) -> log-probabilities (N, tgt_vocab) and the next state (with "attention" (N, S))."""
        features, state = self._step(self.tgt_embed(tokens), state)  # (N, E)
        return self.log_probs(features), state


__all__ = ["GRUAttention", "GRUAttentionConfig"]
