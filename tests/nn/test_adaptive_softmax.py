"""The tied adaptive softmax (nlprec.nn.adaptive_softmax), through both translation models that use it."""

from __future__ import annotations

import pytest
import torch

from contract import copy_batch
from nlprec.models.seq2seq import GRUAttention, GRUAttentionConfig
from nlprec.models.transformer import Transformer, TransformerConfig


pytestmark = pytest.mark.usefixtures("one_thread")


def tiny(arch: str, adaptive_head: int, label_smoothing: float = 0.1):
    """A tiny model whose head ranks the pieces in reverse id order."""
    torch.manual_seed(0)
    if arch == "transformer":
        model = Transformer(TransformerConfig(src_vocab=24, tgt_vocab=24, d_model=32, heads=4, encoder_layers=1,
                                              decoder_layers=1, d_ff=64, max_positions=64,
                                              adaptive_head=adaptive_head, label_smoothing=label_smoothing))
    else:
        model = GRUAttention(GRUAttentionConfig(src_vocab=24, tgt_vocab=24, embed_dim=16, hidden=16,
                                                decoder_hidden=24, attention_dim=16, adaptive_head=adaptive_head,
                                                label_smoothing=label_smoothing))
    model.order_output_pieces(torch.arange(24).flip(0))
    return model.eval()


def output_inputs(model, batch: dict) -> torch.Tensor:
    """What the output layer reads at every target position, (B, T, d)."""
    out = model(batch["src"], batch["tgt_in"])
    return out[0] if isinstance(out, tuple) else out  # the GRU also returns its attention weights


ARCHS = ["transformer", "gru-attention"]


@pytest.mark.parametrize("arch", ARCHS)
def test_adaptive_softmax_is_a_distribution_whose_nll_is_the_loss(arch):
    model = tiny(arch, adaptive_head=8, label_smoothing=0.0)
    batch = copy_batch(rows=4)
    counted = batch["tgt_out"] != 0  # (B, T)
    log_probs = model.log_probs(output_inputs(model, batch)[counted])  # (N, V)
    assert torch.allclose(log_probs.logsumexp(-1), torch.zeros(len(log_probs)), atol=1e-5)
    gold = -log_probs.gather(1, batch["tgt_out"][counted][:, None]).mean()
    in_tail = ~torch.isin(batch["tgt_out"][counted], model.piece_order[:8])
    assert in_tail.any() and (~in_tail).any()  # both factors are exercised
    out = model.loss(batch)
    assert torch.allclose(out["nll"], gold, atol=1e-5) and torch.allclose(out["loss"], gold, atol=1e-5)


@pytest.mark.parametrize("arch", ARCHS)
def test_adaptive_label_smoothing_spreads_over_the_classes_each_position_computes(arch):
    eps = 0.1
    model = tiny(arch, adaptive_head=8, label_smoothing=eps)
    batch = copy_batch(rows=4)
    hidden = output_inputs(model, batch)[batch["tgt_out"] != 0]  # (N, d)
    targets = batch["tgt_out"][batch["tgt_out"] != 0]  # (N,)
    head, tail = model.piece_order[:8], model.piece_order[8:]
    weight = model.tgt_embed.weight
    head_lp = torch.log_softmax(torch.cat([hidden @ weight[head].T, model.tail_logit(hidden)], -1), -1)  # (N, 9)
    tail_lp = torch.log_softmax(hidden @ weight[tail].T, -1)  # (N, V - 8)
    expected = []
    for row, target in enumerate(targets.tolist()):
        if target in head.tolist():
            gold, uniform = head_lp[row, head.tolist().index(target)], head_lp[row].mean()
        else:
            gold = head_lp[row, -1] + tail_lp[row, tail.tolist().index(target)]
            uniform = head_lp[row].mean() + tail_lp[row].mean()
        expected.append(-(1 - eps) * gold - eps * uniform)
    assert torch.allclose(model.loss(batch)["loss"], torch.stack(expected).mean(), atol=1e-5)


@pytest.mark.parametrize("arch", ARCHS)
def test_full_softmax_log_probs_are_the_tied_logits_normalised(arch):
    model = tiny(arch, adaptive_head=0)
    hidden = torch.randn(5, model.tgt_embed.weight.shape[1])  # (N, d)
    assert torch.allclose(model.log_probs(hidden), torch.log_softmax(hidden @ model.tgt_embed.weight.T, -1), atol=1e-5)


@pytest.mark.parametrize("arch", ARCHS)
def test_order_output_pieces_puts_the_most_frequent_in_the_head(arch):
    model = tiny(arch, adaptive_head=4)
    counts = torch.zeros(24, dtype=torch.long)
    counts[[7, 3, 19, 11]] = torch.tensor([50, 40, 30, 20])
    model.order_output_pieces(counts)
    assert model.piece_order[:4].tolist() == [7, 3, 19, 11]
    assert sorted(model.piece_order.tolist()) == list(range(24))
    assert "piece_order" in model.state_dict() and "piece_order" not in tiny(arch, 0).state_dict()
