"""Transformer layers: positions, padding invariance in both norm layouts, step decoding == teacher forcing."""

from __future__ import annotations

import pytest
import torch

from nlprec.nn.transformer import DecoderLayer, EncoderLayer, final_norm, sinusoidal_positions


def test_sinusoidal_positions_values():
    table = sinusoidal_positions(50, 8)
    assert torch.allclose(table[:, 0], torch.sin(torch.arange(50.0)))
    assert torch.allclose(table[:, 1], torch.cos(torch.arange(50.0)))
    assert torch.allclose(table[3, 6], torch.sin(torch.tensor(3.0) / 10000 ** (6 / 8)))
    assert sinusoidal_positions(4, 5).shape == (4, 5)


@pytest.mark.parametrize("norm_first", [True, False])
def test_encoder_layer_ignores_padding(norm_first):
    torch.manual_seed(0)
    layer = EncoderLayer(16, 4, 32, dropout=0.1, norm_first=norm_first).eval()
    x = torch.randn(1, 4, 16)
    padded = torch.cat([x, torch.randn(1, 3, 16)], dim=1)
    keep = torch.tensor([[1, 1, 1, 1, 0, 0, 0]], dtype=torch.bool)
    assert torch.allclose(layer(padded, keep)[:, :4], layer(x), atol=1e-5)
    assert isinstance(final_norm(16, norm_first), torch.nn.LayerNorm if norm_first else torch.nn.Identity)


@pytest.mark.parametrize("norm_first", [True, False])
def test_decoder_steps_equal_teacher_forcing(norm_first):
    torch.manual_seed(0)
    layer = DecoderLayer(16, 4, 32, dropout=0.1, norm_first=norm_first).eval()
    memory = torch.randn(2, 5, 16)
    keep = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0]], dtype=torch.bool)
    memory_kv = layer.cross_attention.keys_values(memory)
    x = torch.randn(2, 4, 16)
    forced = layer(x, memory_kv, keep)
    cache, outputs = None, []
    for t in range(4):
        out, cache = layer.step(x[:, t:t + 1], cache, memory_kv, keep)
        outputs.append(out)
    assert torch.allclose(torch.cat(outputs, dim=1), forced, atol=1e-5)


def test_dropout_only_in_training():
    torch.manual_seed(0)
    layer = EncoderLayer(8, 2, 16, dropout=0.5, norm_first=True)
    x = torch.randn(2, 3, 8)
    assert not torch.allclose(layer.train()(x), layer(x))
    assert torch.equal(layer.eval()(x), layer(x))


@pytest.mark.parametrize("norm_first", [True, False])
def test_forward_at_equals_forward_gathered(norm_first):
    torch.manual_seed(0)
    layer = EncoderLayer(16, 4, 32, dropout=0.1, norm_first=norm_first).eval()
    x = torch.randn(2, 6, 16)
    keep = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0]], dtype=torch.bool)
    columns = torch.tensor([[0, 4, 5], [0, 2, 0]])  # repeats are allowed
    full = layer(x, keep)  # (2, 6, 16)
    expected = full.gather(1, columns[..., None].expand(-1, -1, 16))
    assert torch.allclose(layer.forward_at(x, columns, keep), expected, atol=1e-5)
