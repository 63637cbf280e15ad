"""The translation Transformer: contract, padding masks, step decoding, config checks."""

from __future__ import annotations

import pytest
import torch

from contract import ModelContract, copy_batch
from nlprec.data.tokenize import BOS_ID
from nlprec.errors import NlprecError
from nlprec.models.transformer import Transformer, TransformerConfig


pytestmark = pytest.mark.usefixtures("one_thread")


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
