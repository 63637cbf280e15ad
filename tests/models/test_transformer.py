"""The translation Transformer: contract, padding masks, step decoding, config checks."""

from __future__ import annotations

import pytest
import torch

from contract import ModelContract, copy_batch
from nlprec.data.tokenize import BOS_ID
from nlprec.errors import NlprecError
from nlprec.models.transformer import Transformer, TransformerConfig


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models run fastest on one thread, above all on a shared machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_transformer(norm_first: bool = True, share: bool = True, seed: int = 0, adaptive_head: int = 0,
                     label_smoothing: float = 0.1) -> Transformer:
    torch.manual_seed(seed)
    config = TransformerConfig(src_vocab=24, tgt_vocab=24 if share else 20, d_model=32, heads=4, encoder_layers=2,
                               decoder_layers=2, d_ff=64, dropout=0.1, norm_first=norm_first,
                               share_embeddings=share, max_positions=64, adaptive_head=adaptive_head,
                               label_smoothing=label_smoothing)
    model = Transformer(config)
    model.order_output_pieces(torch.arange(config.tgt_vocab).flip(0))  # the reverse of the id order
    return model


class TestTransformerContract(ModelContract):
    name = "transformer"
    lr = 0.003

    def make_model(self):
        return tiny_transformer()

    def make_batch(self):
        return copy_batch()


class TestPostNormTransformerContract(TestTransformerContract):
    def make_model(self):
        return tiny_transformer(norm_first=False, share=False)


class TestAdaptiveSoftmaxTransformerContract(TestTransformerContract):
    def make_model(self):
        return tiny_transformer(adaptive_head=8)


@pytest.mark.parametrize("norm_first", [True, False])
def test_padded_sentence_gives_the_unpadded_outputs(norm_first):
    model = tiny_transformer(norm_first).eval()
    src, tgt = torch.tensor([[5, 6, 7]]), torch.tensor([[BOS_ID, 8, 9]])
    padded_src = torch.tensor([[5, 6, 7, 0, 0], [9, 9, 9, 9, 9]])
    padded_tgt = torch.tensor([[BOS_ID, 8, 9, 0], [BOS_ID, 4, 4, 4]])
    assert torch.allclose(model(padded_src, padded_tgt)[:1, :3], model(src, tgt), atol=1e-5)


@pytest.mark.parametrize("adaptive_head", [0, 8])
def test_decode_steps_equal_teacher_forcing(adaptive_head):
    model = tiny_transformer(adaptive_head=adaptive_head).eval()
    batch = copy_batch(rows=3)
    hidden = model(batch["src"], batch["tgt_in"])  # (B, T, d)
    teacher = model.log_probs(hidden.flatten(0, 1)).view(*hidden.shape[:2], -1)  # (B, T, V)
    state = model.encode(batch["src"])
    for step in range(batch["tgt_in"].shape[1]):
        log_probs, state = model.decode_step(batch["tgt_in"][:, step], state, step)
        assert torch.allclose(log_probs, teacher[:, step], atol=1e-4)


def test_full_softmax_log_probs_are_the_tied_logits_normalised():
    model = tiny_transformer().eval()
    hidden = torch.randn(5, 32)  # (N, d)
    assert torch.allclose(model.log_probs(hidden), torch.log_softmax(hidden @ model.tgt_embed.weight.T, -1), atol=1e-5)


def test_adaptive_softmax_is_a_distribution_whose_nll_is_the_loss():
    model = tiny_transformer(adaptive_head=8, label_smoothing=0.0).eval()
    batch = copy_batch(rows=4)
    hidden = model(batch["src"], batch["tgt_in"])  # (B, T, d)
    counted = batch["tgt_out"] != 0  # (B, T)
    log_probs = model.log_probs(hidden[counted])  # (N, V)
    assert torch.allclose(log_probs.logsumexp(-1), torch.zeros(len(log_probs)), atol=1e-5)
    gold = -log_probs.gather(1, batch["tgt_out"][counted][:, None]).mean()
    in_tail = ~torch.isin(batch["tgt_out"][counted], model.piece_order[:8])
    assert in_tail.any() and (~in_tail).any()  # both factors are exercised
    out = model.loss(batch)
    assert torch.allclose(out["nll"], gold, atol=1e-5) and torch.allclose(out["loss"], gold, atol=1e-5)


def test_adaptive_label_smoothing_spreads_over_the_classes_each_position_computes():
    eps = 0.1
    model = tiny_transformer(adaptive_head=8, label_smoothing=eps).eval()
    batch = copy_batch(rows=4)
    hidden = model(batch["src"], batch["tgt_in"])[batch["tgt_out"] != 0]  # (N, d)
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


def test_order_output_pieces_puts_the_most_frequent_in_the_head():
    model = tiny_transformer(adaptive_head=4)
    counts = torch.zeros(24, dtype=torch.long)
    counts[[7, 3, 19, 11]] = torch.tensor([50, 40, 30, 20])
    model.order_output_pieces(counts)
    assert model.piece_order[:4].tolist() == [7, 3, 19, 11]
    assert sorted(model.piece_order.tolist()) == list(range(24))
    assert "piece_order" in model.state_dict() and "piece_order" not in tiny_transformer().state_dict()


def test_shared_embeddings_are_one_matrix_and_the_output_layer():
    model = tiny_transformer(share=True)
    assert model.src_embed is model.tgt_embed
    separate = tiny_transformer(share=False)
    assert sum(p.numel() for p in model.parameters()) < sum(p.numel() for p in separate.parameters())


def test_bad_configs_are_one_line_errors():
    with pytest.raises(NlprecError, match="divisible"):
        TransformerConfig(d_model=30, heads=4)
    with pytest.raises(NlprecError, match="adaptive_head"):
        TransformerConfig(adaptive_head=8000)
    with pytest.raises(NlprecError, match="share_embeddings"):
        TransformerConfig(src_vocab=10, tgt_vocab=12)
    with pytest.raises(NlprecError, match="max_positions"):
        tiny_transformer().encode(torch.ones(1, 65, dtype=torch.long))
