"""CPU dropout: drop rate, unbiased scaling, gradients, seeding, eval mode."""

from __future__ import annotations

import pytest
import torch

from nlprec.nn.dropout import Dropout, cpu_dropout


@pytest.mark.parametrize("p", [0.1, 0.3, 0.5])
def test_drop_rate_and_scale_keep_the_expectation(p):
    torch.manual_seed(0)
    x = torch.ones(200_001)  # odd size: not a multiple of the four elements per random word
    y = cpu_dropout(x, p)
    dropped = (y == 0).float().mean().item()
    assert abs(dropped - p) < 0.005  # ~4 standard errors
    assert torch.allclose(y[y != 0], torch.full_like(y[y != 0], 1 / (1 - p)), rtol=1e-4)
    assert abs(y.mean().item() - 1.0) < 0.01


def test_gradient_flows_through_the_kept_elements_only():
    torch.manual_seed(1)
    x = torch.randn(64, 32, requires_grad=True)
    y = cpu_dropout(x, 0.25)
    y.sum().backward()
    kept = y.detach() != 0
    assert torch.allclose(x.grad[kept], torch.full_like(x.grad[kept], 1 / 0.75))
    assert (x.grad[~kept] == 0).all()


def test_same_seed_same_mask_and_bf16_stays_bf16():
    x = torch.randn(7, 9).bfloat16()
    torch.manual_seed(3)
    first = cpu_dropout(x, 0.2)
    torch.manual_seed(3)
    assert torch.equal(first, cpu_dropout(x, 0.2)) and first.dtype == torch.bfloat16


def test_module_is_the_identity_in_eval_mode_and_with_p_zero():
    x = torch.randn(5, 4)
    layer = Dropout(0.5).eval()
    assert torch.equal(layer(x), x)
    assert torch.equal(Dropout(0.0).train()(x), x)
    with pytest.raises(ValueError, match="p=1"):
        Dropout(1)
