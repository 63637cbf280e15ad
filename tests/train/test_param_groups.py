"""The trainer's `param_groups()` hook: per-group options and an "lr_scale" on the scheduled rate."""

from __future__ import annotations

import torch
from torch import nn

from nlprec.train import Trainer, TrainerConfig


class TwoPart(nn.Module):
    """A body trained at a tenth of the rate of its head, with no weight decay on the head."""

    def __init__(self):
        super().__init__()
        self.body = nn.Linear(3, 3)
        self.head = nn.Linear(3, 1)

    def loss(self, batch):
        return self.head(self.body(batch["x"])).pow(2).mean()

    def param_groups(self):
        return [{"params": list(self.body.parameters()), "lr_scale": 0.1},
                {"params": list(self.head.parameters()), "weight_decay": 0.0}]


class Data:
    def train_dataloader(self, epoch, rank=0, world_size=1):
        generator = torch.Generator().manual_seed(epoch)
        return [{"x": torch.randn(4, 3, generator=generator)} for _ in range(2)]


def test_groups_get_scaled_rates_and_their_own_options():
    torch.manual_seed(0)
    model = TwoPart()
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    trainer = Trainer(model, Data(), TrainerConfig(optimizer="sgd", lr=0.5, weight_decay=0.1, epochs=1,
                                                   progress=False, device="cpu"))
    trainer.fit()
    body, head = trainer.optimizer.param_groups
    assert body["lr"] == 0.05 and head["lr"] == 0.5
    assert body["weight_decay"] == 0.1 and head["weight_decay"] == 0.0
    assert all(not torch.equal(p, before[name]) for name, p in model.named_parameters())
