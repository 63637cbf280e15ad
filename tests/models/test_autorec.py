"""I-AutoRec: the shared contract, masking, cached item codes and a real-data quality check."""

from __future__ import annotations

import pytest
import torch

from contract import ModelContract
from nlprec.models.autorec import AutoRec, AutoRecConfig


class TestAutoRecContract(ModelContract):
    name = "autorec"

    def make_model(self):
        torch.manual_seed(0)
        return AutoRec(AutoRecConfig(n_users=7, n_items=4, hidden=6, l2=1e-4, global_mean=3.0,
                                     rating_min=1.0, rating_max=5.0))

    def make_batch(self):
        ratings = torch.tensor([[5.0, 0, 3, 0, 1, 0, 4], [0, 2, 0, 4, 0, 5, 0], [1.0, 1, 0, 0, 0, 0, 2]])  # (B, U)
        return {"items": torch.tensor([0, 1, 2]), "ratings": ratings, "mask": (ratings > 0).float()}


def test_unobserved_entries_carry_no_gradient():
    model = TestAutoRecContract().make_model()
    batch = TestAutoRecContract().make_batch()
    output = model(batch["ratings"])
    output.retain_grad()
    from nlprec.nn.losses import masked_mse_loss

    masked_mse_loss(output, batch["ratings"], batch["mask"]).backward()
    assert torch.all(output.grad[batch["mask"] == 0] == 0) and torch.any(output.grad[batch["mask"] == 1] != 0)


def test_predictions_come_from_cached_codes_and_fall_back_to_the_mean():
    model = TestAutoRecContract().make_model().eval()
    batch = TestAutoRecContract().make_batch()
    model.encode_items(batch["items"][:2], batch["ratings"][:2])  # item 2 and 3 stay unencoded
    users, items = torch.tensor([0, 3, 6, 2]), torch.tensor([0, 1, 2, 3])
    full = model(batch["ratings"][:2])  # (2, U)
    predicted = model.predict(users, items)
    assert torch.allclose(predicted[:2], full[[0, 1], [0, 3]].clamp(1, 5))
    assert predicted[2:].tolist() == [3.0, 3.0]  # global mean for items without training ratings
    assert torch.allclose(model.score_all(users[:2])[[0, 1], [0, 1]], full[[0, 1], [0, 3]])


@pytest.mark.corpora
def test_real_data_quality_ml100k(corpora_dir):
    """A short training run already beats the global-mean baseline (~1.13) clearly."""
    from nlprec.tasks import recommend

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        options = recommend.RecommendOptions(model="autorec", progress=False,
                                             trainer_options={"epochs": 15, "lr": 3e-3, "device": "cpu"})
        result = recommend.train(corpora_dir / "ml-100k" / "u.data", None, options)
    finally:
        torch.set_num_threads(threads)
    assert result.metrics["metrics"]["rmse"] < 0.95, result.metrics  # ~0.905 after 15 epochs
