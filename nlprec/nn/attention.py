"""Attention blocks shared by the sequence models (translation now, BERT later).

- `MultiHeadAttention`: Vaswani et al. 2017, "Attention Is All You Need", section 3.2, computed
  by `torch.nn.functional.scaled_dot_product_attention` (fused kernels) on CUDA and by plain
  matmuls on the CPU, where they are faster for sentence-length inputs (the backward pass). Keys
  and values can be projected once and reused (cross-attention while decoding), and
  self-attention can append to a per-step key/value cache. `self_attend_packed` is inference
  over unpadded rows; with no backward pass the fused kernel is the faster one on the CPU too
  (MiniLM-sized heads, 16 rows of 48 positions, one thread: 2.2 against 3.4 ms, busy machine).
- `AdditiveAttention`: Bahdanau et al. 2015, "Neural Machine Translation by Jointly Learning to
  Align and Translate": score(s, h) = v^T tanh(W s + U h), with U h computed once per sentence.

Masks follow one convention: `keep` is a bool tensor that is True where a key may be attended
(a real token), False at padding.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class MultiHeadAttention(nn.Module):
    """Multi-head scaled dot-product attention with separate query and key/value projections."""

    def __init__(self, d_model: int, heads: int, dropout: float = 0.0):
        super().__init__()
        if d_model % heads:
            raise ValueError(f"d_model={d_model} must be divisible by heads={heads}")
        self.heads = heads
        self.d_head = d_model // heads
        self.dropout = dropout
        self.query = nn.Linear(d_model, d_model)
        self.key_value = nn.Linear(d_model, 2 * d_model)
        self.out = nn.Linear(d_model, d_model)

    def split_heads(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, d_model) -> (B, heads, T, d_head)."""
        batch, length, _ = x.shape
        return x.view(batch, length, self.heads, self.d_head).transpose(1, 2)  # (B, heads, T, d_head)

    def keys_values(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Projected keys and values of `x` (B, S, d_model), each (B, heads, S, d_head)."""
        keys, values = self.key_value(x).chunk(2, dim=-1)  # 2 x (B, S, d_model)
        return self.split_heads(keys), self.split_heads(values)

    def forward(self, query: torch.Tensor, keys: torch.Tensor, values: torch.Tensor,
                keep: torch.Tensor | None = None, causal: bool = False, return_weights: bool = False
                ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Attend from `query` (B, T, d_model) over projected `keys`/`values` (B, heads, S, d_head).

        keep: (B, S) bool, True at real keys; None attends to all. causal: position t sees keys
        <= t (needs T == S). Returns (B, T, d_model); with `return_weights` also the attention
        weights (B, heads, T, S), computed by the plain-matmul path on every device (the fused
        kernel keeps none), so asking costs nothing when nobody asks.
        """
        q = self.split_heads(self.query(query))  # (B, heads, T, d_head)
        if return_weights:
            return self._attend_with_weights(q, keys, values, keep, causal)
        return self._attend(q, keys, values, keep, causal)

    def _attend_with_weights(self, q: torch.Tensor, keys: torch.Tensor, values: torch.Tensor,
                             keep: torch.Tensor | None, causal: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """As `_attend`, also returning the weights (B, heads, T, S); no dropout (inference)."""
        batch, _, length, _ = q.shape
        mask = None if keep is None else keep[:, None, None, :]  # (B, 1, 1, S)
        weights = _attention_weights(q, keys, mask, causal)  # (B, heads, T, S)
        attended = weights @ values  # (B, heads, T, d_head)
        output = self.out(attended.transpose(1, 2).reshape(batch, length, self.heads * self.d_head))  # (B, T, d)
        return output, weights

    def _attend(self, q: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, keep: torch.Tensor | None,
                causal: bool) -> torch.Tensor:
        """Projected queries q (B, heads, T, d_head) over keys/values -> (B, T, d_model)."""
        batch, _, length, _ = q.shape
        d_model = self.heads * self.d_head
        mask = None if keep is None else keep[:, None, None, :]  # (B, 1, 1, S)
        if causal and mask is not None:
            lower = torch.ones(length, keys.shape[2], dtype=torch.bool, device=q.device).tril()  # (T, S)
            mask = mask & lower  # (B, 1, T, S)
            causal = False
        dropout = self.dropout if self.training else 0.0
        if q.device.type == "cpu":  # short sentences: plain matmuls beat the fused CPU kernel's backward
            attended = _attend_unfused(q, keys, values, mask, causal, dropout)  # (B, heads, T, d_head)
        else:
            attended = F.scaled_dot_product_attention(q, keys, values, attn_mask=mask, is_causal=causal,
                                                      dropout_p=dropout)  # (B, heads, T, d_head)
        return self.out(attended.transpose(1, 2).reshape(batch, length, d_model))  # (B, T, d_model)

    def self_attend(self, x: torch.Tensor, keep: torch.Tensor | None = None, causal: bool = False) -> torch.Tensor:
        """Self-attention over `x` (B, T, d_model).

        The query and key/value weights are concatenated so that the three projections are one
        matmul forward and one backward. On the CPU Transformer this measured within noise of two
        matmuls (A/B in both orders, benchmarks/results/transformer_step_qkv*.json).
        """
        weight = torch.cat([self.query.weight, self.key_value.weight])  # (3 d_model, d_model)
        bias = torch.cat([self.query.bias, self.key_value.bias])  # (3 d_model,)
        q, keys, values = F.linear(x, weight, bias).chunk(3, dim=-1)  # 3 x (B, T, d_model)
        return self._attend(*map(self.split_heads, (q, keys, values)), keep, causal)

    def self_attend_packed(self, x: torch.Tensor, keep: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        """Self-attention over packed rows, for inference: x (N, d_model) the real tokens of a (B, T)
        batch end to end, keep (B, T) bool True at them, index (N,) their flat slots in B x T.

        The projections run over the N tokens only; the scores need the (B, heads, T, d_head) grid,
        so queries, keys and values are scattered into it (zeros at padding, masked as keys) and the
        attended rows gathered back before the output projection (text-embeddings-inference's CPU
        layout). Two projections, not `self_attend`'s concatenated weights: no weight copy per call.
        Returns (N, d_model), equal to `self_attend` at the real tokens.
        """
        batch, length = keep.shape
        full = len(x) == batch * length  # every row as long as the longest: no scatter, no mask
        q = self.split_heads(_to_grid(self.query(x), index, batch, length, full))  # (B, heads, T, d_head)
        key_value = _to_grid(self.key_value(x), index, batch, length, full)  # (B, T, 2 d_model)
        keys, values = map(self.split_heads, key_value.chunk(2, dim=-1))  # 2 x (B, heads, T, d_head)
        mask = None if full else keep[:, None, None, :]  # (B, 1, 1, T)
        attended = F.scaled_dot_product_attention(q, keys, values, attn_mask=mask)  # (B, heads, T, d_head)
        rows = attended.transpose(1, 2).reshape(batch * length, -1)  # (B T, d_model)
        return self.out(rows if full else rows[index])  # (N, d_model)

    def cached_step(self, x: torch.Tensor, cache: tuple[torch.Tensor, torch.Tensor] | None
                    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """Causal self-attention for one new position `x` (N, 1, d_model) given the previous keys/values.

        Returns the output (N, 1, d_model) and the cache extended by this position, each
        (N, heads, t + 1, d_head). The new position sees every cached one, so no mask is needed.
        """
        keys, values = self.keys_values(x)  # 2 x (N, heads, 1, d_head)
        if cache is not None:
            keys = torch.cat([cache[0], keys], dim=2)  # (N, heads, t + 1, d_head)
            values = torch.cat([cache[1], values], dim=2)  # (N, heads, t + 1, d_head)
        return self(x, keys, values), (keys, values)


def _to_grid(rows: torch.Tensor, index: torch.Tensor, batch: int, length: int, full: bool) -> torch.Tensor:
    """Packed rows (N, w) at their flat slots `index` (N,) of a (batch, length) grid, zeros elsewhere: (B, T, w)."""
    if full:
        return rows.view(batch, length, -1)  # (B, T, w)
    grid = rows.new_zeros(batch * length, rows.shape[1])  # (B T, w)
    grid[index] = rows
    return grid.view(batch, length, -1)  # (B, T, w)


def _attend_unfused(q: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, mask: torch.Tensor | None,
                    causal: bool, dropout: float) -> torch.Tensor:
    """softmax(q k^T / sqrt(d_head)) v with the same masks as scaled_dot_product_attention.

    On a CPU, for sentence-length inputs (tens of positions), this is faster than the fused
    kernel, whose backward pass dominated a training step (profiled: 30% of a bf16 step).
    q (B, heads, T, d_head), keys/values (B, heads, S, d_head), mask (B, 1, T or 1, S) bool.
    """
    weights = _attention_weights(q, keys, mask, causal)  # (B, heads, T, S)
    if dropout:
        weights = F.dropout(weights, dropout)
    return weights @ values  # (B, heads, T, d_head)


def _attention_weights(q: torch.Tensor, keys: torch.Tensor, mask: torch.Tensor | None, causal: bool) -> torch.Tensor:
    """softmax(q k^T / sqrt(d_head)) over the keys `mask` keeps (and, if causal, keys <= the query's
    position): (B, heads, T, S)."""
    scores = q @ keys.transpose(-2, -1) * q.shape[-1] ** -0.5  # (B, heads, T, S)
    if causal:
        length = q.shape[2]
        lower = torch.ones(length, keys.shape[2], dtype=torch.bool, device=q.device).tril()  # (T, S)
        mask = lower if mask is None else mask & lower
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    return torch.softmax(scores, dim=-1)  # (B, heads, T, S)


class AdditiveAttention(nn.Module):
    """Bahdanau attention: weights = softmax_s(v^T tanh(W q + U h_s)) over the real source positions."""

    def __init__(self, query_dim: int, key_dim: int, hidden: int):
        super().__init__()
        self.query_proj = nn.Linear(query_dim, hidden, bias=False)
        self.key_proj = nn.Linear(key_dim, hidden)
        self.score = nn.Linear(hidden, 1, bias=False)

    def project_keys(self, keys: torch.Tensor) -> torch.Tensor:
        """U h for every source position: (B, S, key_dim) -> (B, S, hidden); done once per sentence."""
        return self.key_proj(keys)

    def forward(self, query: torch.Tensor, projected_keys: torch.Tensor, values: torch.Tensor,
                keep: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """query (B, query_dim), projected_keys (B, S, hidden), values (B, S, D), keep (B, S) bool.

        Returns the context (B, D) and the attention weights (B, S) (zero at padding).
        """
        energy = torch.tanh(projected_keys + self.query_proj(query)[:, None, :])  # (B, S, hidden)
        scores = self.score(energy).squeeze(-1).masked_fill(~keep, float("-inf"))  # (B, S)
        weights = torch.softmax(scores, dim=-1)  # (B, S)
        context = torch.bmm(weights[:, None, :], values).squeeze(1)  # (B, D)
        return context, weights


__all__ = ["MultiHeadAttention", "AdditiveAttention"]
