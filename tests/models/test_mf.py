"""Biased MF: the shared contract, a fixed-seed regression and a real-data quality check."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from contract import ModelContract
from nlprec.models.mf import MF, MFConfig
from nlprec.train.optimizers import RowAdam


class TestMFContract(ModelContract):
    name = "mf"
    optimizer = RowAdam  # every table takes sparse row gradients

    def make_model(self):
        torch.manual_seed(0)
        return MF(MFConfig(n_users=6, n_items=5, dim=4, l2=0.01, init_std=0.1, global_mean=3.0,
                           rating_min=1.0, rating_max=5.0))

    def make_batch(self):
        return {"users": torch.tensor([0, 1, 2, 3, 4, 5, 0, 1]), "items": torch.tensor([0, 1, 2, 3, 4, 0, 2, 4]),
                "ratings": torch.tensor([5.0, 1.0, 4.0, 2.0, 5.0, 1.0, 3.0, 4.0])}


def test_score_is_biases_plus_dot_product_and_predictions_are_clipped():
    model = TestMFContract().make_model()
    users, items = torch.tensor([1, 4]), torch.tensor([2, 0])
    expected = (3.0 + model.user_bias.weight[users, 0] + model.item_bias.weight[items, 0]
                + (model.user_factors.weight[users] * model.item_factors.weight[items]).sum(1))
    assert torch.allclose(model(users, items), expected)
    assert torch.allclose(model.score_all(users)[torch.arange(2), items], expected)
    with torch.no_grad():
        model.item_bias.weight.fill_(10.0)
    assert torch.all(model.predict(users, items) == 5.0)


@pytest.mark.parametrize("optimizer, sparse", [("sparse_adam", True), ("adam", False)])
def test_fixed_seed_regression(one_thread, optimizer, sparse):
    """Two epochs on a fixed synthetic problem give these exact numbers on CPU: sparse tables with
    SparseAdam (the default), and dense tables with Adam (the numbers from before sparse tables)."""
    from nlprec.train import Trainer, TrainerConfig
    from nlprec.train.trainer import seed_everything
    from nlprec.data.interactions import Interactions, RatingsData

    rng = np.random.default_rng(0)
    users, items = rng.integers(0, 20, 300), rng.integers(0, 15, 300)
    ratings = rng.integers(1, 6, 300).astype(np.float32)
    data = Interactions(users, items, [str(u) for u in range(20)], [str(i) for i in range(15)], ratings)
    seed_everything(0)
    model = MF(MFConfig(n_users=20, n_items=15, dim=8, l2=0.05, global_mean=float(ratings.mean()), sparse=sparse))
    history = Trainer(model, RatingsData(data, batch_size=32, seed=0),
                      TrainerConfig(optimizer=optimizer, lr=0.01, epochs=2, seed=0, device="cpu", progress=False)).fit()
    losses = [round(record["loss"], 4) for record in history]
    assert losses == pytest.approx(REGRESSION_LOSSES[optimizer], abs=2e-4), losses
    predictions = model.predict(torch.tensor([0, 5, 19]), torch.tensor([0, 7, 14])).tolist()
    assert predictions == pytest.approx(REGRESSION_PREDICTIONS[optimizer], abs=2e-4), predictions


REGRESSION_LOSSES = {"sparse_adam": [1.9571, 1.8735], "adam": [1.9576, 1.8681]}
REGRESSION_PREDICTIONS = {"sparse_adam": [2.9561, 2.9859, 3.0111], "adam": [2.9554, 2.9545, 3.0196]}


def test_sparse_step_moves_only_the_batch_rows():
    """SparseAdam is lazy: a step leaves the rows of users and items outside the batch as they were."""
    from nlprec.train.optimizers import RowAdam, sparse_adam

    model = TestMFContract().make_model()
    optimizer = sparse_adam([{"params": list(model.parameters())}], model, 0.05, (0.9, 0.999), 0.0)
    assert isinstance(optimizer, RowAdam)
    before = {name: param.detach().clone() for name, param in model.named_parameters()}
    batch = {"users": torch.tensor([0, 1]), "items": torch.tensor([2, 3]), "ratings": torch.tensor([5.0, 1.0])}
    for _ in range(3):
        optimizer.zero_grad()
        model.loss(batch)["loss"].backward()
        optimizer.step()
    for name, param in model.named_parameters():
        rows = [0, 1] if name.startswith("user") else [2, 3]
        moved = (param.detach() != before[name]).any(dim=1)  # (rows,)
        assert moved[rows].all() and moved.sum() == len(rows), name


@pytest.mark.corpora
def test_real_data_quality_ml100k(corpora_dir, one_thread):
    """A few fast epochs beat the global-mean baseline (RMSE ~1.12-1.13) by a wide margin."""
    from nlprec.tasks import recommend

    options = recommend.RecommendOptions(model="mf", progress=False, batch_size=2048,
                                         trainer_options={"epochs": 4, "lr": 5e-3, "device": "cpu"})
    result = recommend.train(corpora_dir / "ml-100k" / "u.data", None, options)
    test = result.test
    baseline = float(np.sqrt(np.mean((test.ratings - result.train.ratings.mean()) ** 2)))
    assert baseline > 1.1
    assert result.metrics["metrics"]["rmse"] < 0.95, result.metrics  # ~0.91 after 4 epochs
