"""--max-minutes spends the minutes it is given: a linear schedule under a time budget decays to
its final rate when the budget runs out, uses at least 90% of it, records its plan, and a run
resumed after an interruption keeps the plan (the budget spans both fits)."""

from __future__ import annotations

import time

import pytest
import torch

from nlprec.train import Trainer, TrainerConfig, load_checkpoint
from nlprec.train.trainer import seed_everything

from tests.train.test_trainer import TinyData, TinyRegressor

BUDGET_MINUTES = 0.05  # 3 s


class SlowData(TinyData):
    """TinyData whose batches take a few milliseconds, as real batches do; `stop_after` batches
    in all, it raises KeyboardInterrupt (a Ctrl-C: the trainer saves last.pt and re-raises)."""

    def __init__(self, delay: float = 0.004, stop_after: int | None = None):
        super().__init__(n=256, batch_size=16)
        self.delay, self.stop_after, self.served = delay, stop_after, 0

    def train_dataloader(self, epoch, rank=0, world_size=1):
        for batch in super().train_dataloader(epoch, rank, world_size):
            if self.stop_after is not None and self.served >= self.stop_after:
                raise KeyboardInterrupt
            self.served += 1
            time.sleep(self.delay)
            yield batch


def budget_trainer(tmp_path, data, **overrides):
    seed_everything(3)
    config = dict(lr=0.1, epochs=10_000, seed=3, out_dir=str(tmp_path), progress=False, log_every_steps=10,
                  device="cpu", schedule="linear", warmup_fraction=0.1, max_minutes=BUDGET_MINUTES)
    return Trainer(TinyRegressor(), data, TrainerConfig(**{**config, **overrides}))


def test_a_time_budget_is_spent_and_the_rate_ends_at_its_final_value(tmp_path):
    trainer = budget_trainer(tmp_path, SlowData())
    trainer.fit()
    plan = trainer.plan()
    budget_s = 60 * BUDGET_MINUTES
    assert plan["ended_by"] == "time" and plan["schedule_follows"] == "time budget"
    assert 0.9 * budget_s <= 60 * plan["minutes"] <= budget_s + 1.0, plan
    assert plan["final_lr"] <= 0.03 * 0.1, plan  # the last step's rate: the decay is over
    assert plan["planned_steps"] == 10_000 * 16 and plan["steps"] < plan["planned_steps"]
    saved = load_checkpoint(tmp_path / "checkpoints" / "last.pt")["train_state"]["train_seconds"]
    assert saved == pytest.approx(60 * plan["minutes"], abs=0.05)


def test_steps_that_end_first_keep_the_step_schedule_exact(tmp_path):
    """A budget that is not reached changes nothing: the rate follows the steps, as without one."""
    with_budget = budget_trainer(tmp_path / "a", SlowData(delay=0.0), epochs=2, max_minutes=5.0)
    with_budget.fit()
    without = budget_trainer(tmp_path / "b", SlowData(delay=0.0), epochs=2, max_minutes=None)
    without.fit()
    assert with_budget.plan()["ended_by"] == "steps" and with_budget.plan()["final_lr"] == without.plan()["final_lr"]
    for a, b in zip(with_budget.model.parameters(), without.model.parameters()):
        assert torch.equal(a, b)


def test_a_run_resumed_after_an_interruption_keeps_its_plan(tmp_path):
    first = budget_trainer(tmp_path, SlowData(stop_after=150))
    with pytest.raises(KeyboardInterrupt):
        first.fit()
    checkpoint = load_checkpoint(tmp_path / "checkpoints" / "last.pt")
    seconds_before = checkpoint["train_state"]["train_seconds"]
    rate_before = first.lr_at(checkpoint["train_state"]["step"] - 1)
    assert 0.2 * 60 * BUDGET_MINUTES < seconds_before < 60 * BUDGET_MINUTES
    resumed = budget_trainer(tmp_path, SlowData())
    resumed.restore(tmp_path / "checkpoints" / "last.pt")
    # the decay goes on where it stopped (the rate follows the clock: the saved time is a moment earlier)
    assert resumed.lr_at(resumed.state.step) == pytest.approx(rate_before, rel=0.05) and rate_before < 0.09
    resumed.fit()
    plan = resumed.plan()
    assert plan["ended_by"] == "time" and plan["final_lr"] <= 0.03 * 0.1
    assert 0.9 * 60 * BUDGET_MINUTES <= 60 * plan["minutes"] <= 60 * BUDGET_MINUTES + 1.0, plan
