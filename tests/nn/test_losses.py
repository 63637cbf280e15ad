"""Ranking and rating losses: hand-computed values, broadcasting, and the doctests."""

from __future__ import annotations

import doctest
import math

import torch

from nlprec.nn import losses
from nlprec.nn.losses import bpr_loss, hinge_loss, l2_penalty, masked_mse_loss


def test_doctests_pass():
    result = doctest.testmod(losses)
    assert result.attempted >= 4 and result.failed == 0


def test_bpr_matches_the_formula_and_is_stable():
    pos, neg = torch.tensor([1.0, -2.0]), torch.tensor([0.0, 1.0])
    expected = -(math.log(1 / (1 + math.exp(-1.0))) + math.log(1 / (1 + math.exp(3.0)))) / 2
    assert math.isclose(bpr_loss(pos, neg).item(), expected, rel_tol=1e-6)
    assert torch.isfinite(bpr_loss(torch.tensor([-1000.0]), torch.tensor([1000.0])))  # no log(0)


def test_bpr_and_hinge_broadcast_over_several_negatives():
    pos, neg = torch.tensor([1.0, 0.0]), torch.tensor([[0.0, 2.0], [0.5, -1.0]])  # (N,), (N, K)
    assert math.isclose(hinge_loss(pos, neg, margin=1.0).item(), (0 + 2 + 1.5 + 0) / 4)
    assert math.isclose(bpr_loss(pos, neg).item(), bpr_loss(pos.repeat_interleave(2), neg.reshape(-1)).item(),
                        rel_tol=1e-6)


def test_hinge_margin_and_gradient_direction():
    pos = torch.tensor([0.3], requires_grad=True)
    neg = torch.tensor([0.0], requires_grad=True)
    loss = hinge_loss(pos, neg, margin=0.5)
    assert math.isclose(loss.item(), 0.2, rel_tol=1e-6)
    loss.backward()
    assert pos.grad.item() < 0 < neg.grad.item()  # descent raises the positive, lowers the negative
    assert hinge_loss(torch.tensor([2.0]), torch.tensor([0.0]), margin=1.0).item() == 0.0


def test_masked_mse_ignores_unobserved_entries():
    predictions = torch.tensor([[1.0, 100.0, 3.0]])
    targets = torch.tensor([[2.0, 0.0, 5.0]])
    mask = torch.tensor([[1.0, 0.0, 1.0]])
    assert math.isclose(masked_mse_loss(predictions, targets, mask).item(), (1 + 4) / 2)
    assert masked_mse_loss(predictions, targets, torch.zeros_like(mask)).item() == 0.0


def test_l2_penalty_is_half_the_squared_norm():
    assert math.isclose(l2_penalty(torch.tensor([3.0, 4.0])).item(), 12.5)
