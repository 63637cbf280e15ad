"""optimizer="sparse_adam": lazy Adam on sparse embedding tables, AdamW beside it on dense layers."""

from __future__ import annotations

import io

import pytest
import torch
from torch import nn

from nlprec.errors import NlprecError
from nlprec.train.optimizers import RowAdam, SparseRowsAdam, sparse_adam, sparse_parameters


class TableAndLayer(nn.Module):
    """A sparse table feeding a dense layer: the smallest model with both kinds of parameter."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.table = nn.Embedding(10, 4, sparse=True)  # (10, 4)
        self.layer = nn.Linear(4, 1)

    def loss(self, batch: dict) -> torch.Tensor:
        return ((self.layer(self.table(batch["rows"])).squeeze(-1) - batch["targets"]) ** 2).mean()


BATCH = {"rows": torch.tensor([1, 3, 3]), "targets": torch.tensor([1.0, -1.0, 0.5])}


def steps(model: nn.Module, optimizer, n: int) -> None:
    for _ in range(n):
        optimizer.zero_grad()
        model.loss(BATCH).backward()
        optimizer.step()


def build(model: nn.Module, weight_decay: float = 0.0):
    return sparse_adam([{"params": list(model.parameters())}], model, 0.05, (0.9, 0.999), weight_decay)


def test_mixed_model_gets_sparse_rows_adam_moving_only_batch_rows():
    model = TableAndLayer()
    optimizer = build(model, weight_decay=0.1)
    assert isinstance(optimizer, SparseRowsAdam) and sparse_parameters(model) == [model.table.weight]
    table, layer = model.table.weight.detach().clone(), model.layer.weight.detach().clone()
    steps(model, optimizer, 3)
    moved = (model.table.weight.detach() != table).any(dim=1)  # (10,)
    assert moved.tolist() == [row in (1, 3) for row in range(10)]
    assert not torch.equal(model.layer.weight, layer)
    assert optimizer.dense.param_groups[0]["weight_decay"] == 0.1


def test_state_dict_resumes_exactly():
    model, other = TableAndLayer(), TableAndLayer()
    optimizer = build(model)
    steps(model, optimizer, 2)
    other.load_state_dict(model.state_dict())
    buffer = io.BytesIO()  # as a checkpoint file holds it: no tensor shared with `optimizer`
    torch.save(optimizer.state_dict(), buffer)
    buffer.seek(0)
    resumed = build(other)
    resumed.load_state_dict(torch.load(buffer, weights_only=True))
    steps(model, optimizer, 2)
    steps(other, resumed, 2)
    for mine, theirs in zip(model.parameters(), other.parameters()):
        assert torch.equal(mine, theirs)


def test_only_dense_or_only_sparse_parameters_keep_one_torch_optimizer():
    dense = nn.Linear(3, 1)
    assert isinstance(build(dense), torch.optim.AdamW)
    table = nn.Embedding(5, 2, sparse=True)
    assert isinstance(build(table), RowAdam)


def test_trainer_sets_the_rate_of_both_parts():
    from nlprec.train import Trainer, TrainerConfig

    class Rows:
        def train_dataloader(self, epoch, rank=0, world_size=1):
            return [BATCH] * 4

    trainer = Trainer(TableAndLayer(), Rows(), TrainerConfig(optimizer="sparse_adam", lr=0.05, epochs=1,
                                                             schedule="linear", device="cpu", progress=False))
    trainer.fit()
    rates = {group["lr"] for group in trainer.optimizer.param_groups}
    assert len(trainer.optimizer.param_groups) == 2 and rates == {trainer.lr_at(3)}


def test_a_dense_optimizer_state_is_refused_in_one_line():
    model = TableAndLayer()
    dense = torch.optim.AdamW(model.parameters())
    with pytest.raises(NlprecError, match="not a sparse_adam one"):
        build(model).load_state_dict(dense.state_dict())


def _two_uses_steps(table: nn.Embedding, optimizer, steps: int, seed: int) -> None:
    """`steps` steps whose gradient names rows twice (two lookups, repeated rows in each)."""
    generator = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        first, second = torch.randint(0, 30, (40,), generator=generator), torch.randint(0, 30, (25,), generator=generator)
        target = torch.randn(40, 6, generator=generator)
        optimizer.zero_grad()
        ((table(first) - target) ** 2).sum().add(table(second).pow(3).mean()).backward()
        optimizer.step()


@pytest.mark.parametrize("maximize", [False, True])
def test_row_adam_follows_torch_sparse_adam(maximize):
    torch.manual_seed(0)
    ours, theirs = nn.Embedding(30, 6, sparse=True), nn.Embedding(30, 6, sparse=True)
    theirs.load_state_dict(ours.state_dict())
    _two_uses_steps(ours, RowAdam(ours.parameters(), lr=0.01, maximize=maximize), 25, seed=1)
    _two_uses_steps(theirs, torch.optim.SparseAdam(theirs.parameters(), lr=0.01, maximize=maximize), 25, seed=1)
    torch.testing.assert_close(ours.weight, theirs.weight, rtol=1e-5, atol=1e-6)


def test_row_adam_resumes_from_a_sparse_adam_checkpoint():
    torch.manual_seed(0)
    table, resumed = nn.Embedding(30, 6, sparse=True), nn.Embedding(30, 6, sparse=True)
    torch_adam = torch.optim.SparseAdam(table.parameters(), lr=0.01)
    _two_uses_steps(table, torch_adam, 5, seed=2)
    resumed.load_state_dict(table.state_dict())
    buffer = io.BytesIO()  # as a checkpoint file holds it: no tensor shared with `torch_adam`
    torch.save(torch_adam.state_dict(), buffer)
    buffer.seek(0)
    row_adam = RowAdam(resumed.parameters(), lr=0.01)
    row_adam.load_state_dict(torch.load(buffer, weights_only=True))
    _two_uses_steps(table, torch_adam, 5, seed=3)
    _two_uses_steps(resumed, row_adam, 5, seed=3)
    torch.testing.assert_close(resumed.weight, table.weight, rtol=1e-5, atol=1e-6)
    assert row_adam.state_dict()["state"][0]["step"] == 10


def test_row_adam_refuses_a_dense_gradient_in_one_line():
    layer = nn.Linear(3, 2)
    optimizer = RowAdam(layer.parameters())
    layer(torch.ones(1, 3)).sum().backward()
    with pytest.raises(NlprecError, match=r"dense gradient for a \(2, 3\) parameter"):
        optimizer.step()


def test_row_adam_step_runs_a_closure_and_returns_its_loss():
    table = nn.Embedding(5, 2, sparse=True)
    optimizer = RowAdam(table.parameters(), lr=0.1)

    def closure():
        optimizer.zero_grad()
        loss = table(torch.tensor([1, 1, 3])).pow(2).sum()
        loss.backward()
        return loss

    before = table.weight.detach().clone()
    loss = optimizer.step(closure)
    assert float(loss.detach()) == float(before[[1, 1, 3]].pow(2).sum())
    assert (table.weight.detach() != before).any(dim=1).tolist() == [False, True, False, True, False]
