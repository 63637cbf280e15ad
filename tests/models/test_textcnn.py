"""TextCNN: the shared contract, Kim's embedding modes and the padding of short inputs."""

from __future__ import annotations

import pytest
import torch

from contract import ModelContract
from nlprec.errors import NlprecError
from nlprec.models.textcnn import TextCNN, TextCNNConfig


def tiny_batch(rows: int = 8, length: int = 7, vocab: int = 30, seed: int = 0) -> dict:
    """Class 1 iff token 5 occurs: learnable by one filter."""
    generator = torch.Generator().manual_seed(seed)
    tokens = torch.randint(6, vocab, (rows, length), generator=generator)
    labels = torch.arange(rows) % 2
    tokens[labels == 1, 2] = 5
    lengths = torch.randint(3, length + 1, (rows,), generator=generator)
    tokens[torch.arange(length)[None, :] >= lengths[:, None]] = 0
    tokens[labels == 1, 1] = 5
    return {"tokens": tokens, "lengths": lengths, "labels": labels}


def make(mode: str = "rand", **kwargs) -> TextCNN:
    torch.manual_seed(0)
    config = TextCNNConfig(vocab_size=30, n_classes=2, dim=8, maps=4, embedding_mode=mode, **kwargs)
    pretrained = torch.randn(30, 8) if mode != "rand" else None
    return TextCNN(config, pretrained)


class TestTextCNNContract(ModelContract):
    name = "textcnn"
    lr = 0.02

    def make_model(self):
        return make("non-static", dropout=0.0)

    def make_batch(self):
        return tiny_batch()


@pytest.mark.parametrize("mode", ["static", "multichannel"])
def test_static_vectors_stay_fixed_and_only_trainable_ones_get_gradients(mode):
    model = make(mode)
    frozen = model.static_embedding.weight if mode == "multichannel" else model.embedding.weight
    before = frozen.detach().clone()
    model.loss(tiny_batch()).backward()
    assert frozen.grad is None and not frozen.requires_grad
    assert torch.equal(frozen, before)
    if mode == "multichannel":
        assert model.embedding.weight.grad is not None
        assert torch.equal(model.embedding.weight.detach(), model.static_embedding.weight)  # same start


def test_pretrained_rows_are_copied_and_padding_row_is_zero():
    torch.manual_seed(0)
    vectors = torch.randn(30, 8)
    model = TextCNN(TextCNNConfig(vocab_size=30, dim=8, maps=4, embedding_mode="non-static"), vectors)
    assert torch.equal(model.embedding.weight[1:].detach(), vectors[1:])
    assert torch.all(model.embedding.weight[0] == 0)


def test_inputs_shorter_than_the_widest_filter_are_padded():
    model = make().eval()
    logits = model({"tokens": torch.tensor([[7], [8]]), "lengths": torch.tensor([1, 1])})
    assert logits.shape == (2, 2) and torch.isfinite(logits).all()


def test_padding_does_not_change_the_prediction_of_a_text():
    model = make().eval()
    batch = tiny_batch()
    padded = dict(batch, tokens=torch.cat([batch["tokens"], torch.zeros(8, 6, dtype=torch.long)], 1))
    assert torch.allclose(model(batch), model(padded), atol=1e-6)
    short = {"tokens": torch.tensor([[7, 8]]), "lengths": torch.tensor([2])}
    assert torch.allclose(model(short), model({"tokens": torch.tensor([[7, 8, 0, 0, 0, 0]]),
                                                "lengths": torch.tensor([2])}), atol=1e-6)


def test_max_norm_rescales_each_class_weight_row_to_the_bound():
    model = make(max_norm=0.01).eval()
    tokens = torch.tensor([[7, 8, 9, 10, 11, 12]])
    features = torch.relu(model._conv_features(model.embedding(tokens).transpose(1, 2), torch.tensor([6])))
    bounded = model.out.weight / model.out.weight.norm(dim=1, keepdim=True).clamp(min=0.01) * 0.01
    expected = features @ bounded.T + model.out.bias
    assert torch.allclose(model({"tokens": tokens}), expected, atol=1e-6)
    assert not torch.allclose(model.out(features), expected)


def test_bad_config_is_one_line_error():
    with pytest.raises(NlprecError, match="dropout"):
        TextCNNConfig(dropout=1.0)
