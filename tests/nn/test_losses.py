"""Ranking and rating losses: hand-computed values, broadcasting, and the doctests."""

from __future__ import annotations

import doctest
import math

import pytest
import torch

from nlprec.nn import losses
from nlprec.nn.losses import bpr_loss, hinge_loss, l2_penalty, label_smoothed_cross_entropy, masked_mse_loss


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


def _cross_entropy_and_gradient(loss_fn, logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    leaf = logits.detach().requires_grad_(True)
    loss = loss_fn(leaf)
    loss.backward()
    return loss.detach(), leaf.grad


@pytest.mark.parametrize("compiled, block_elements", [(True, 0), (False, 1 << 17), (False, 20)])
def test_label_smoothed_cross_entropy_matches_torch_in_value_and_gradient(monkeypatch, compiled, block_elements):
    """The numba kernel, and the torch blocks with one block or blocks of 1 row (V = 11)."""
    monkeypatch.setattr(losses, "USE_COMPILED_KERNEL", compiled)
    monkeypatch.setattr(losses, "_ROW_BLOCK_ELEMENTS", block_elements)
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 5, 11, generator=generator) * 3  # (B, T, V)
    targets = torch.randint(1, 11, (3, 5), generator=generator)
    targets[0, 3:] = 0  # padding, ignored
    ours = _cross_entropy_and_gradient(
        lambda z: losses.label_smoothed_cross_entropy(z, targets, smoothing=0.2, ignore_index=0)[0], logits)
    reference = _cross_entropy_and_gradient(
        lambda z: torch.nn.functional.cross_entropy(z.reshape(-1, 11), targets.reshape(-1), ignore_index=0,
                                                    label_smoothing=0.2), logits)
    assert torch.allclose(ours[0], reference[0], atol=1e-6)
    assert torch.allclose(ours[1], reference[1], atol=1e-6)
    assert ours[1][0, 3:].abs().max() == 0  # padding positions get no gradient


def test_label_smoothed_cross_entropy_keeps_bf16_logits_and_a_fp32_loss():
    logits = torch.randn(6, 50).bfloat16().requires_grad_(True)
    targets = torch.arange(1, 7)
    loss, nll = losses.label_smoothed_cross_entropy(logits, targets, smoothing=0.1)
    loss.backward()
    assert loss.dtype == torch.float32 and logits.grad.dtype == torch.bfloat16
    reference = torch.nn.functional.cross_entropy(logits.detach().float(), targets)
    assert torch.isclose(nll, reference, atol=1e-5)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_compiled_kernel_equals_torch_blocks_on_wide_extreme_rows(monkeypatch, dtype):
    """V not a multiple of the vector width, logits from -1e4 to +80: same loss and gradient."""
    generator = torch.Generator().manual_seed(1)
    logits = (torch.randn(37, 1001, generator=generator) * 8).to(dtype)  # (N, V)
    logits[0, :] = -1e4
    logits[1, 5] = 80.0
    logits[2, :] = logits[2, 0]  # a flat row
    targets = torch.randint(1, 1001, (37,), generator=generator)
    results = []
    for compiled in (True, False):
        monkeypatch.setattr(losses, "USE_COMPILED_KERNEL", compiled)
        results.append(_cross_entropy_and_gradient(
            lambda z: losses.label_smoothed_cross_entropy(z, targets, smoothing=0.1)[0], logits))
    (loss, grad), (reference_loss, reference_grad) = results
    assert grad.dtype == dtype
    assert torch.allclose(loss, reference_loss, rtol=1e-5)
    tolerance = 1e-7 if dtype == torch.float32 else 2e-3 * reference_grad.abs().max().item()  # bf16 rounding
    assert (grad.float() - reference_grad.float()).abs().max() <= tolerance


def test_compiled_kernel_refuses_targets_outside_the_vocabulary():
    with pytest.raises(IndexError, match=r"\[0, 5\)"):
        losses.label_smoothed_cross_entropy(torch.randn(3, 5), torch.tensor([1, 5, 2]), ignore_index=-1)


def test_label_smoothed_cross_entropy_normalizer_splits_one_mean_into_summed_parts():
    torch.manual_seed(0)
    logits, targets = torch.randn(6, 5), torch.randint(0, 5, (6,))
    whole = label_smoothed_cross_entropy(logits, targets, 0.1, ignore_index=-1)
    parts = [label_smoothed_cross_entropy(logits[rows], targets[rows], 0.1, ignore_index=-1, normalizer=6)
             for rows in (slice(0, 2), slice(2, 6))]
    assert torch.allclose(parts[0][0] + parts[1][0], whole[0]) and torch.allclose(parts[0][1] + parts[1][1], whole[1])
