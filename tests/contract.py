"""The contract every model passes: subclass `ModelContract` in the model's test file.

A subclass names the registered model and builds a tiny model and batch; the shared tests
check that the model is registered with a frozen config, that its loss is a finite scalar
(or a dict with "loss"), that a few optimisation steps on one tiny batch lower the loss, and
that its state dict round-trips through a weights-only checkpoint.
"""

from __future__ import annotations

import dataclasses
import io

import torch

from nlprec.data.tokenize import BOS_ID, EOS_ID, PAD_ID

from nlprec.registry import get_model


class ModelContract:
    """Mixin of shared tests; subclasses set `name` and implement the two builders."""

    name: str = ""
    steps: int = 30  # optimisation steps for the "loss falls" check
    lr: float = 0.05
    optimizer: type = torch.optim.Adam  # RowAdam (the product's sparse_adam) for models with sparse embedding gradients

    def make_model(self) -> torch.nn.Module:
        """A tiny model, seeded."""
        raise NotImplementedError

    def make_batch(self) -> dict:
        """A tiny batch the model's loss (or train_step) accepts."""
        raise NotImplementedError

    def make_optimizer(self, model: torch.nn.Module):
        """The optimizer of the "loss falls" check: `optimizer` over every parameter."""
        return self.optimizer(list(model.parameters()), lr=self.lr)

    def _loss(self, model, batch) -> torch.Tensor:
        output = model.loss(batch)
        return output["loss"] if isinstance(output, dict) else output

    def test_registered_with_frozen_config(self):
        entry = get_model(self.name)
        model = self.make_model()
        assert isinstance(model, entry.model_cls)
        assert dataclasses.is_dataclass(model.config) and type(model.config) is entry.config_cls
        field = dataclasses.fields(model.config)[0].name
        try:
            setattr(model.config, field, None)
        except dataclasses.FrozenInstanceError:
            pass
        else:
            raise AssertionError("config must be frozen")

    def test_loss_is_finite_scalar(self):
        torch.manual_seed(0)
        loss = self._loss(self.make_model(), self.make_batch())
        assert loss.dim() == 0 and torch.isfinite(loss)

    def test_loss_falls_on_tiny_batch(self):
        torch.manual_seed(0)
        model, batch = self.make_model(), self.make_batch()
        model.train()
        if getattr(model, "manual_optimization", False):
            before = self._loss(model, batch).item()
            for _ in range(self.steps):
                model.train_step(batch, lr=self.lr)
            after = self._loss(model, batch).item()
        else:
            optimizer = self.make_optimizer(model)
            before = self._loss(model, batch).item()
            for _ in range(self.steps):
                optimizer.zero_grad()
                self._loss(model, batch).backward()
                optimizer.step()
            after = self._loss(model, batch).item()
        assert after < 0.9 * before, (before, after)

    def test_state_dict_round_trips_weights_only(self):
        torch.manual_seed(0)
        model = self.make_model().eval()
        buffer = io.BytesIO()
        torch.save(model.state_dict(), buffer)
        buffer.seek(0)
        torch.manual_seed(1)
        fresh = self.make_model().eval()
        fresh.load_state_dict(torch.load(buffer, weights_only=True))
        batch = self.make_batch()
        torch.manual_seed(2)
        expected = self._loss(model, batch)
        torch.manual_seed(2)
        assert torch.allclose(self._loss(fresh, batch), expected)


def copy_batch(rows: int = 8, length: int = 6, vocab: int = 20, seed: int = 0) -> dict:
    """Learnable: the target is the source (ids 4..vocab-1), variable lengths with padding."""
    generator = torch.Generator().manual_seed(seed)
    src = torch.randint(4, vocab, (rows, length), generator=generator)
    lengths = torch.randint(2, length + 1, (rows,), generator=generator)
    src[torch.arange(length)[None, :] >= lengths[:, None]] = PAD_ID
    tgt_in = torch.cat([torch.full((rows, 1), BOS_ID), src], dim=1)
    tgt_out = torch.cat([src, torch.zeros(rows, 1, dtype=torch.long)], dim=1)
    tgt_out[torch.arange(rows), lengths] = EOS_ID
    return {"src": src, "tgt_in": tgt_in, "tgt_out": tgt_out, "n_tokens": int((src != 0).sum() * 2 + rows)}
