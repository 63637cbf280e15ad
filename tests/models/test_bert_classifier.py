"""The BERT classifier: contract, loading a pretrained encoder, the slower encoder rate."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from contract import ModelContract
from nlprec.errors import NlprecError
from nlprec.models.bert import Bert, BertConfig
from nlprec.models.bert_classifier import BertClassifier, BertClassifierConfig

SIZES = {"vocab_size": 30, "hidden": 32, "layers": 1, "heads": 2, "d_ff": 64, "max_positions": 16}


pytestmark = pytest.mark.usefixtures("one_thread")


def tiny_classifier(**changes) -> BertClassifier:
    torch.manual_seed(0)
    return BertClassifier(BertClassifierConfig(n_classes=3, **{**SIZES, **changes}))


def tiny_batch() -> dict:
    generator = torch.Generator().manual_seed(0)
    tokens = torch.randint(7, 30, (6, 10), generator=generator)
    tokens[:, 0] = 4
    tokens[3:, 7:] = 0
    return {"tokens": tokens, "lengths": (tokens != 0).sum(1), "labels": torch.tensor([0, 1, 2, 0, 1, 2])}


class TestBertClassifierContract(ModelContract):
    name = "bert-classifier"
    lr = 0.003

    def make_model(self):
        return tiny_classifier()

    def make_batch(self):
        return tiny_batch()


class TestMeanPooledBertClassifierContract(TestBertClassifierContract):
    def make_model(self):
        return tiny_classifier(pooling="mean")


def test_loads_a_pretrained_encoder_exactly():
    torch.manual_seed(1)
    pretrained = Bert(BertConfig(**SIZES))
    config = BertClassifierConfig.from_pretrained(dataclasses.asdict(pretrained.config), n_classes=3)
    classifier = BertClassifier(config)
    classifier.load_pretrained(pretrained.state_dict())
    tokens = tiny_batch()["tokens"]
    pretrained.eval(), classifier.eval()
    assert torch.allclose(classifier.encoder(tokens), pretrained(tokens))


def test_encoder_groups_run_at_the_scaled_rate():
    model = tiny_classifier(encoder_lr_scale=0.25)
    groups = model.param_groups()
    encoder = {id(p) for p in model.encoder.parameters()}
    for group in groups:
        inside = {id(p) in encoder for p in group["params"]}
        assert len(inside) == 1 and group["lr_scale"] == (0.25 if inside.pop() else 1.0)
    with pytest.raises(NlprecError, match="encoder_lr_scale"):
        BertClassifierConfig(encoder_lr_scale=0.0)
