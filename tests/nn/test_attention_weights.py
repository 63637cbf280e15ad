"""Cross-attention weights of the Transformer, returned only when asked: the same outputs either
way, weights that are softmax rows over the real source tokens, and nothing kept otherwise."""

from __future__ import annotations

import pytest
import torch

from nlprec.decoding import greedy
from nlprec.models.transformer import Transformer, TransformerConfig
from nlprec.nn.attention import MultiHeadAttention


pytestmark = pytest.mark.usefixtures("one_thread")


def test_multi_head_attention_weights_are_the_ones_it_used():
    torch.manual_seed(0)
    attention = MultiHeadAttention(16, 4).eval()
    query, memory = torch.randn(2, 3, 16), torch.randn(2, 5, 16)
    keep = torch.tensor([[True] * 5, [True, True, True, False, False]])
    keys, values = attention.keys_values(memory)
    plain = attention(query, keys, values, keep=keep)
    output, weights = attention(query, keys, values, keep=keep, return_weights=True)
    assert torch.allclose(output, plain, atol=1e-6)
    assert weights.shape == (2, 4, 3, 5)
    assert torch.allclose(weights.sum(-1), torch.ones(2, 4, 3), atol=1e-6)
    assert torch.all(weights[1, :, :, 3:] == 0)  # padding gets no weight
    by_hand = torch.softmax(attention.split_heads(attention.query(query)) @ keys.transpose(-2, -1) / 2.0
                            + torch.where(keep, 0.0, float("-inf"))[:, None, None, :], dim=-1)  # d_head 4
    assert torch.allclose(weights, by_hand, atol=1e-6)


def tiny_transformer() -> Transformer:
    torch.manual_seed(0)
    return Transformer(TransformerConfig(src_vocab=24, tgt_vocab=24, d_model=32, heads=4, encoder_layers=1,
                                         decoder_layers=2, d_ff=64, max_positions=64)).eval()


def test_greedy_returns_every_layer_and_head_and_the_same_translation():
    model = tiny_transformer()
    src = torch.tensor([[5, 6, 7, 8], [9, 10, 0, 0]])
    plain = greedy(model, src)
    with_attention = greedy(model, src, return_attention=True)
    assert [h.tokens for h in plain] == [h.tokens for h in with_attention]
    assert [h.score for h in plain] == pytest.approx([h.score for h in with_attention], abs=1e-5)
    assert all(h.attention is None for h in plain)
    for row, hypothesis in enumerate(with_attention):
        weights = hypothesis.attention  # (T, layers, heads, S)
        assert weights.shape == (len(hypothesis.tokens) + 1, 2, 4, 4)
        assert torch.allclose(weights.sum(-1), torch.ones(weights.shape[:-1]), atol=1e-5)
    assert torch.all(with_attention[1].attention[..., 2:] == 0)  # the second sentence's padding


def test_decode_step_keeps_no_weights_unless_asked():
    model = tiny_transformer()
    state = model.encode(torch.tensor([[5, 6, 7]]))
    _, plain = model.decode_step(torch.tensor([1]), state, 0)
    assert "attention" not in plain
    _, asked = model.decode_step(torch.tensor([1]), {**state, "return_attention": True}, 0)
    assert asked["attention"].shape == (1, 2, 4, 3)
