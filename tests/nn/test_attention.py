"""Attention blocks: fused multi-head attention against a plain softmax, masks, the decoding
cache, and Bahdanau attention."""

from __future__ import annotations

import math

import pytest
import torch

from nlprec.nn.attention import AdditiveAttention, MultiHeadAttention


def reference_attention(mha: MultiHeadAttention, query, memory, keep=None, causal=False):
    """Unfused multi-head attention written out with softmax(QK^T / sqrt(d)) V."""
    q = mha.split_heads(mha.query(query))  # (B, h, T, d)
    k, v = mha.keys_values(memory)  # (B, h, S, d)
    scores = q @ k.transpose(-1, -2) / math.sqrt(mha.d_head)  # (B, h, T, S)
    if keep is not None:
        scores = scores.masked_fill(~keep[:, None, None, :], float("-inf"))
    if causal:
        scores = scores.masked_fill(torch.ones(scores.shape[-2:], dtype=torch.bool).triu(1), float("-inf"))
    out = torch.softmax(scores, dim=-1) @ v  # (B, h, T, d)
    return mha.out(out.transpose(1, 2).reshape(query.shape))


def test_matches_plain_softmax_attention_with_padding_and_causal_mask():
    torch.manual_seed(0)
    mha = MultiHeadAttention(16, 4).eval()
    x = torch.randn(3, 5, 16)
    keep = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [1, 0, 0, 0, 0]], dtype=torch.bool)
    k, v = mha.keys_values(x)
    assert torch.allclose(mha(x, k, v, keep), reference_attention(mha, x, x, keep), atol=1e-5)
    assert torch.allclose(mha(x, k, v, causal=True), reference_attention(mha, x, x, causal=True), atol=1e-5)
    assert torch.allclose(mha(x, k, v, keep, causal=True), reference_attention(mha, x, x, keep, True), atol=1e-5)


def test_padding_does_not_change_the_real_positions():
    torch.manual_seed(0)
    mha = MultiHeadAttention(8, 2).eval()
    x = torch.randn(1, 3, 8)
    padded = torch.cat([x, torch.randn(1, 4, 8)], dim=1)
    keep = torch.tensor([[1, 1, 1, 0, 0, 0, 0]], dtype=torch.bool)
    assert torch.allclose(mha.self_attend(padded, keep)[:, :3], mha.self_attend(x), atol=1e-6)


def test_cached_steps_equal_causal_self_attention():
    torch.manual_seed(0)
    mha = MultiHeadAttention(8, 2).eval()
    x = torch.randn(2, 6, 8)
    full = mha.self_attend(x, causal=True)
    cache, steps = None, []
    for t in range(6):
        out, cache = mha.cached_step(x[:, t:t + 1], cache)
        steps.append(out)
    assert cache[0].shape == (2, 2, 6, 4)
    assert torch.allclose(torch.cat(steps, dim=1), full, atol=1e-6)


def test_additive_attention_weights_are_a_distribution_over_real_keys():
    torch.manual_seed(0)
    attention = AdditiveAttention(query_dim=6, key_dim=4, hidden=5)
    memory = torch.randn(2, 4, 4)
    keep = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0]], dtype=torch.bool)
    context, weights = attention(torch.randn(2, 6), attention.project_keys(memory), memory, keep)
    assert context.shape == (2, 4) and weights.shape == (2, 4)
    assert torch.allclose(weights.sum(dim=1), torch.ones(2)) and (weights[1, 2:] == 0).all()
    assert torch.allclose(context, torch.einsum("bs,bsd->bd", weights, memory))


@pytest.mark.parametrize("causal", [False, True])
def test_cpu_path_equals_fused_sdpa(causal):
    from nlprec.nn.attention import _attend_unfused

    torch.manual_seed(0)
    q, k, v = torch.randn(2, 4, 5, 8), torch.randn(2, 4, 5, 8), torch.randn(2, 4, 5, 8)
    keep = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]], dtype=torch.bool)[:, None, None, :]  # (B, 1, 1, S)
    mask = keep & torch.ones(5, 5, dtype=torch.bool).tril() if causal else keep
    expected = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    assert torch.allclose(_attend_unfused(q, k, v, keep, causal, 0.0), expected, atol=1e-5)
