"""BiRNN: the shared contract, packing (padding changes nothing) and both cells."""

from __future__ import annotations

import pytest
import torch

from contract import ModelContract
from nlprec.errors import NlprecError
from nlprec.models.birnn import BiRNN, BiRNNConfig


def tiny_batch(rows: int = 8, length: int = 6, vocab: int = 30, seed: int = 0) -> dict:
    generator = torch.Generator().manual_seed(seed)
    tokens = torch.randint(6, vocab, (rows, length), generator=generator)
    labels = torch.arange(rows) % 2
    lengths = torch.randint(2, length + 1, (rows,), generator=generator)
    tokens[labels == 1, 0] = 5
    tokens[torch.arange(length)[None, :] >= lengths[:, None]] = 0
    return {"tokens": tokens, "lengths": lengths, "labels": labels}


def make(cell: str = "lstm", **kwargs) -> BiRNN:
    torch.manual_seed(0)
    return BiRNN(BiRNNConfig(vocab_size=30, n_classes=2, dim=8, hidden=6, layers=2, cell=cell, **kwargs))


class TestBiRNNContract(ModelContract):
    name = "birnn"
    lr = 0.02

    def make_model(self):
        return make(dropout=0.0)

    def make_batch(self):
        return tiny_batch()


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_extra_padding_changes_nothing(cell):
    model = make(cell).eval()
    batch = tiny_batch()
    padded = dict(batch, tokens=torch.cat([batch["tokens"], torch.zeros(8, 5, dtype=torch.long)], 1))
    assert torch.allclose(model(batch), model(padded), atol=1e-6)


def test_each_text_is_read_to_its_own_last_word():
    model = make().eval()
    tokens = torch.tensor([[7, 8, 9, 0, 0]])
    alone = model({"tokens": tokens[:, :3], "lengths": torch.tensor([3])})
    assert torch.allclose(model({"tokens": tokens, "lengths": torch.tensor([3])}), alone, atol=1e-6)
    longer = model({"tokens": torch.tensor([[7, 8, 9, 10, 0]]), "lengths": torch.tensor([4])})
    assert not torch.allclose(longer, alone)


def test_static_mode_freezes_the_vectors_and_multichannel_is_refused():
    model = BiRNN(BiRNNConfig(vocab_size=30, dim=8, hidden=4, embedding_mode="static"), torch.randn(30, 8))
    assert not model.embedding.weight.requires_grad
    with pytest.raises(NlprecError, match="multichannel"):
        BiRNNConfig(embedding_mode="multichannel")
