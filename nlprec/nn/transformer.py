"""Transformer layers (Vaswani et al. 2017, "Attention Is All You Need"), shared by the
translation Transformer and, later, BERT.

`norm_first` picks the residual layout: False is the paper's post-norm, x = LN(x + f(x));
True is pre-norm, x = x + f(LN(x)) (Xiong et al. 2020, "On Layer Normalization in the
Transformer Architecture"), which trains stably at higher learning rates and shorter warmup
but needs a final LayerNorm after the last layer (`final_norm`).
"""

from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from nlprec.nn.attention import MultiHeadAttention
from nlprec.nn.dropout import Dropout

KV = tuple[torch.Tensor, torch.Tensor]


def sinusoidal_positions(length: int, d_model: int) -> torch.Tensor:
    """The fixed position encodings of section 3.5: sin on even, cos on odd dimensions.

    >>> sinusoidal_positions(4, 6).shape
    torch.Size([4, 6])
    >>> sinusoidal_positions(2, 2).tolist()[0]
    [0.0, 1.0]
    """
    position = torch.arange(length, dtype=torch.float32)[:, None]  # (L, 1)
    frequency = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float32) * (-math.log(10000.0) / d_model))  # (d/2,)
    table = torch.zeros(length, d_model)  # (L, d_model)
    table[:, 0::2] = torch.sin(position * frequency)
    table[:, 1::2] = torch.cos(position * frequency)[:, : d_model // 2]
    return table


class FeedForward(nn.Module):
    """Position-wise FFN: Linear(d_model, d_ff) -> activation -> dropout -> Linear(d_ff, d_model)."""

    def __init__(self, d_model: int, d_ff: int, dropout: float, activation: str = "relu"):
        super().__init__()
        self.inner = nn.Linear(d_model, d_ff)
        self.outer = nn.Linear(d_ff, d_model)
        self.dropout = Dropout(dropout)
        self.activation: Callable[[torch.Tensor], torch.Tensor] = {"relu": F.relu, "gelu": F.gelu}[activation]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.outer(self.dropout(self.activation(self.inner(x))))  # (B, T, d_model)


class _Residual(nn.Module):
    """x + dropout(f(x)) with the LayerNorm before f (pre-norm) or after the sum (post-norm)."""

    def __init__(self, d_model: int, dropout: float, norm_first: bool):
        super().__init__()
        self.norm = nn.LayerNorm(d_model)
        self.dropout = Dropout(dropout)
        self.norm_first = norm_first

    def forward(self, x: torch.Tensor, sublayer: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
        if self.norm_first:
            return x + self.dropout(sublayer(self.norm(x)))
        return self.norm(x + self.dropout(sublayer(x)))


class EncoderLayer(nn.Module):
    """Self-attention then feed-forward, each in a residual block.

    `dropout` acts on each sublayer's output; `attention_dropout` on the attention weights and
    `activation_dropout` inside the feed-forward are off by default (as fairseq's and Marian's
    Transformers): on a CPU each dropout mask costs time, and the attention one also forces
    the unfused attention path.
    """

    def __init__(self, d_model: int, heads: int, d_ff: int, dropout: float, norm_first: bool,
                 activation: str = "relu", attention_dropout: float = 0.0, activation_dropout: float = 0.0):
        super().__init__()
        self.attention = MultiHeadAttention(d_model, heads, attention_dropout)
        self.feed_forward = FeedForward(d_model, d_ff, activation_dropout, activation)
        self.attention_block = _Residual(d_model, dropout, norm_first)
        self.feed_forward_block = _Residual(d_model, dropout, norm_first)

    def forward(self, x: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:
        """x (B, S, d_model), keep (B, S) bool (True at real tokens) -> (B, S, d_model)."""
        x = self.attention_block(x, lambda h: self.attention.self_attend(h, keep))
        return self.feed_forward_block(x, self.feed_forward)

    def forward_packed(self, x: torch.Tensor, keep: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        """Inference over packed rows: x (N, d_model) the real tokens of a (B, S) batch end to end,
        keep (B, S) bool, index (N,) their flat slots -> (N, d_model), equal to `forward` there.

        Every linear layer and LayerNorm runs over the N tokens only, none over padding; attention
        alone sees the padded grid (`MultiHeadAttention.self_attend_packed`).
        """
        x = self.attention_block(x, lambda h: self.attention.self_attend_packed(h, keep, index))  # (N, d_model)
        return self.feed_forward_block(x, self.feed_forward)  # (N, d_model)

    def forward_at(self, x: torch.Tensor, columns: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:
        """The layer's output at some positions only: x (B, S, d_model), columns (B, Q) int64 -> (B, Q, d_model).

        Equal to `forward(x, keep)` gathered at `columns`: an output position depends on its own
        input and on every position's keys and values, so those are computed for all S positions
        and the query, attention output and feed-forward for the Q asked for only. A last layer
        whose loss reads a few positions (BERT's masked ones) saves most of its work this way.
        """
        picked = x.gather(1, columns[..., None].expand(-1, -1, x.shape[-1]))  # (B, Q, d_model)
        block = self.attention_block
        memory = self.attention.keys_values(block.norm(x) if block.norm_first else x)  # 2 x (B, heads, S, d_head)
        y = block(picked, lambda h: self.attention(h, *memory, keep=keep))  # (B, Q, d_model)
        return self.feed_forward_block(y, self.feed_forward)  # (B, Q, d_model)


class DecoderLayer(nn.Module):
    """Causal self-attention, cross-attention over the encoder output, feed-forward (dropouts as
    EncoderLayer)."""

    def __init__(self, d_model: int, heads: int, d_ff: int, dropout: float, norm_first: bool,
                 activation: str = "relu", attention_dropout: float = 0.0, activation_dropout: float = 0.0):
        super().__init__()
        self.self_attention = MultiHeadAttention(d_model, heads, attention_dropout)
        self.cross_attention = MultiHeadAttention(d_model, heads, attention_dropout)
        self.feed_forward = FeedForward(d_model, d_ff, activation_dropout, activation)
        self.blocks = nn.ModuleList(_Residual(d_model, dropout, norm_first) for _ in range(3))

    def forward(self, x: torch.Tensor, memory_kv: KV, memory_keep: torch.Tensor | None) -> torch.Tensor:
        """Teacher-forced: x (B, T, d_model); memory_kv from `cross_attention.keys_values(memory)`."""
        x = self.blocks[0](x, lambda h: self.self_attention.self_attend(h, causal=True))
        x = self.blocks[1](x, lambda h: self.cross_attention(h, *memory_kv, keep=memory_keep))
        return self.blocks[2](x, self.feed_forward)

    def step(self, x: torch.Tensor, cache: KV | None, memory_kv: KV, memory_keep: torch.Tensor | None,
             return_attention: bool = False) -> tuple[torch.Tensor, KV] | tuple[torch.Tensor, KV, torch.Tensor]:
        """One decoding position x (N, 1, d_model) with the self-attention cache; returns (output, new cache),
        and with `return_attention` also the cross-attention weights (N, heads, 1, S)."""
        new_cache: list[KV] = []
        cross_weights: list[torch.Tensor] = []

        def attend_cached(h: torch.Tensor) -> torch.Tensor:
            output, kv = self.self_attention.cached_step(h, cache)
            new_cache.append(kv)
            return output

        def attend_memory(h: torch.Tensor) -> torch.Tensor:
            if not return_attention:
                return self.cross_attention(h, *memory_kv, keep=memory_keep)
            output, weights = self.cross_attention(h, *memory_kv, keep=memory_keep, return_weights=True)
            cross_weights.append(weights)  # (N, heads, 1, S)
            return output

        x = self.blocks[0](x, attend_cached)
        x = self.blocks[1](x, attend_memory)
        x = self.blocks[2](x, self.feed_forward)
        return (x, new_cache[0], cross_weights[0]) if return_attention else (x, new_cache[0])


def final_norm(d_model: int, norm_first: bool) -> nn.Module:
    """The LayerNorm a pre-norm stack needs after its last layer; identity for post-norm."""
    return nn.LayerNorm(d_model) if norm_first else nn.Identity()


__all__ = ["sinusoidal_positions", "FeedForward", "EncoderLayer", "DecoderLayer", "final_norm"]
