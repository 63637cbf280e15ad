"""GRU encoder-decoder with Bahdanau attention: contract, padding masks, step decoding, attention."""

from __future__ import annotations

import pytest
import torch

from contract import ModelContract, copy_batch
from nlprec.data.tokenize import BOS_ID
from nlprec.errors import NlprecError
from nlprec.models.seq2seq import GRUAttention, GRUAttentionConfig


pytestmark = pytest.mark.usefixtures("one_thread")


def tiny_gru(bidirectional: bool = True, layers: int = 1, share: bool = True, seed: int = 0,
             adaptive_head: int = 0) -> GRUAttention:
    torch.manual_seed(seed)
    config = GRUAttentionConfig(src_vocab=24, tgt_vocab=24 if share else 20, embed_dim=16, hidden=16,
                                decoder_hidden=24, attention_dim=16, encoder_layers=layers,
                                bidirectional=bidirectional, share_embeddings=share, adaptive_head=adaptive_head)
    model = GRUAttention(config)
    model.order_output_pieces(torch.arange(config.tgt_vocab).flip(0))  # the reverse of the id order
    return model


class TestGRUAttentionContract(ModelContract):
    name = "gru-attention"
    lr = 0.01

    def make_model(self):
        return tiny_gru()

    def make_batch(self):
        return copy_batch()


class TestUnidirectionalGRUContract(TestGRUAttentionContract):
    def make_model(self):
        return tiny_gru(bidirectional=False, layers=2, share=False)


class TestAdaptiveSoftmaxGRUContract(TestGRUAttentionContract):
    def make_model(self):
        return tiny_gru(adaptive_head=8)


@pytest.mark.parametrize("bidirectional", [True, False])
def test_padded_sentence_gives_the_unpadded_outputs(bidirectional):
    model = tiny_gru(bidirectional).eval()
    src, tgt = torch.tensor([[5, 6, 7]]), torch.tensor([[BOS_ID, 8, 9]])
    padded_src = torch.tensor([[5, 6, 7, 0, 0], [9, 9, 9, 9, 9]])
    padded_tgt = torch.tensor([[BOS_ID, 8, 9, 0], [BOS_ID, 4, 4, 4]])
    features, weights = model(padded_src, padded_tgt)
    expected, expected_weights = model(src, tgt)
    assert torch.allclose(features[:1, :3], expected, atol=1e-5)
    assert torch.allclose(weights[:1, :3, :3], expected_weights, atol=1e-6) and (weights[0, :, 3:] == 0).all()


@pytest.mark.parametrize("adaptive_head", [0, 8])
def test_decode_steps_equal_teacher_forcing_and_expose_attention(adaptive_head):
    model = tiny_gru(adaptive_head=adaptive_head).eval()
    batch = copy_batch(rows=3)
    features, weights = model(batch["src"], batch["tgt_in"])
    logits = model.log_probs(features.flatten(0, 1)).view(*features.shape[:2], -1)  # (B, T, V)
    state = model.encode(batch["src"])
    for step in range(batch["tgt_in"].shape[1]):
        log_probs, state = model.decode_step(batch["tgt_in"][:, step], state, step)
        assert torch.allclose(log_probs, logits[:, step], atol=1e-5)
        assert torch.allclose(state["attention"], weights[:, step], atol=1e-6)


def test_bad_config_is_one_line_error():
    with pytest.raises(NlprecError, match="dropout"):
        GRUAttentionConfig(dropout=1.5)
    with pytest.raises(NlprecError, match="adaptive_head"):
        GRUAttentionConfig(adaptive_head=8000)
