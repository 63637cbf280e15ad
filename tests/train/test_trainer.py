"""The trainer on a tiny regression model: loss falls, resume is exact, NaN stops, DDP syncs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from torch import nn

from nlprec.errors import NlprecError
from nlprec.train import Trainer, TrainerConfig, TrainingDiverged, load_checkpoint
from nlprec.train.trainer import seed_everything


@dataclass(frozen=True)
class TinyConfig:
    in_dim: int = 8  # input features
    dropout: float = 0.01  # exercises the torch RNG, so resume must restore it


class TinyRegressor(nn.Module):
    """y = w.x with dropout: enough to check optimisation, RNG and checkpoint plumbing."""

    def __init__(self, config: TinyConfig = TinyConfig()):
        super().__init__()
        self.config = config
        self.linear = nn.Linear(config.in_dim, 1)
        self.dropout = nn.Dropout(config.dropout)

    def loss(self, batch):
        prediction = self.linear(self.dropout(batch["x"])).squeeze(-1)  # (B,)
        return {"loss": nn.functional.mse_loss(prediction, batch["y"]), "mae": (prediction - batch["y"]).abs().mean()}


class TinyData:
    """Fixed random regression data; batches depend only on (epoch, rank)."""

    def __init__(self, n=256, batch_size=16, fail_at=None):
        generator = torch.Generator().manual_seed(0)
        self.x = torch.randn(n, 8, generator=generator)
        self.y = self.x @ torch.arange(1.0, 9.0)
        self.batch_size = batch_size
        self.fail_at = fail_at  # (epoch, batch) at which to simulate a crash

    def steps_per_epoch(self, world_size=1):
        return len(self.x) // self.batch_size // world_size

    def train_dataloader(self, epoch, rank=0, world_size=1):
        order = torch.randperm(len(self.x), generator=torch.Generator().manual_seed(epoch))
        batches = len(self.x) // self.batch_size
        for index in range(rank, batches - batches % world_size, world_size):
            if self.fail_at == (epoch, index):
                raise RuntimeError("simulated crash")
            rows = order[index * self.batch_size:(index + 1) * self.batch_size]
            yield {"x": self.x[rows], "y": self.y[rows]}

    def val_dataloader(self):
        return [{"x": self.x[:64], "y": self.y[:64]}]


def make_trainer(tmp_path, data=None, **overrides):
    seed_everything(overrides.get("seed", 3))  # the model's initial weights come from the seed too
    config = dict(lr=0.5, epochs=4, seed=3, out_dir=str(tmp_path), progress=False, log_every_steps=4,
                  device="cpu", schedule="cosine", warmup_steps=2)
    config.update(overrides)
    return Trainer(TinyRegressor(), data or TinyData(), TrainerConfig(**config))


def test_progress_counts_units_across_epochs(tmp_path, monkeypatch):
    """The progress rate divides the fit's units by its time: later epochs add to the count."""
    seen = []
    monkeypatch.setattr("nlprec.train.progress.Progress.update",
                        lambda self, step, epoch, epochs, loss, lr, units_done, force=False: seen.append(units_done))
    make_trainer(tmp_path, epochs=3, progress=True).fit()
    assert seen == sorted(seen) and seen[-1] == 3 * 256


def test_loss_falls_and_metrics_are_logged(tmp_path):
    history = make_trainer(tmp_path).fit()
    assert history[-1]["loss"] < 0.2 * history[0]["loss"]
    assert history[-1]["val_loss"] < history[0]["val_loss"]
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert any("mae" in record and "lr" in record for record in records)
    assert (tmp_path / "checkpoints" / "last.pt").is_file()


def test_schedule_length_is_counted_once(tmp_path):
    """lr_at runs every step; the data module's epoch layout must not be rebuilt for it."""
    data = TinyData()
    counted = []
    original = data.steps_per_epoch
    data.steps_per_epoch = lambda world_size=1: counted.append(world_size) or original(world_size)
    make_trainer(tmp_path, data).fit()
    assert len(counted) == 1


def test_same_seed_same_result(tmp_path):
    runs = [make_trainer(tmp_path / name) for name in ("a", "b")]
    other_seed = make_trainer(tmp_path / "c", seed=4)
    for trainer in [*runs, other_seed]:
        trainer.fit()
    assert torch.equal(runs[0].model.linear.weight, runs[1].model.linear.weight)
    assert not torch.equal(runs[0].model.linear.weight, other_seed.model.linear.weight)


def test_resume_after_crash_equals_uninterrupted_run(tmp_path):
    straight = make_trainer(tmp_path / "straight")
    straight.fit()
    crashing = make_trainer(tmp_path / "crash", data=TinyData(fail_at=(2, 5)), checkpoint_every_steps=1)
    with pytest.raises(RuntimeError, match="simulated crash"):
        crashing.fit()
    checkpoint = load_checkpoint(tmp_path / "crash" / "checkpoints" / "last.pt")
    assert checkpoint["train_state"]["epoch"] == 2 and checkpoint["train_state"]["batch_in_epoch"] == 5
    resumed = make_trainer(tmp_path / "crash")
    resumed.restore(checkpoint)
    resumed.fit()
    assert torch.equal(straight.model.linear.weight, resumed.model.linear.weight)
    assert torch.equal(straight.model.linear.bias, resumed.model.linear.bias)


def test_nan_loss_stops_with_step_and_shape(tmp_path):
    trainer = make_trainer(tmp_path, optimizer="sgd", lr=1e6, schedule="constant", warmup_steps=0)
    with pytest.raises(TrainingDiverged, match=r"at step \d+ .*'x': \(16, 8\)"):
        trainer.fit()


def test_early_stopping_keeps_best(tmp_path):
    trainer = make_trainer(tmp_path, epochs=50, lr=0.05, schedule="constant", warmup_steps=0,
                           early_stopping_metric="val_loss", patience=1)
    history = trainer.fit()
    assert len(history) < 50 and trainer.state.stopped_early
    assert (tmp_path / "checkpoints" / "best.pt").is_file()


def test_bad_config_is_one_line_error():
    with pytest.raises(NlprecError, match="lr must be > 0"):
        TrainerConfig(lr=0)


def test_checkpoint_loads_weights_only_and_rejects_garbage(tmp_path):
    trainer = make_trainer(tmp_path, epochs=1)
    trainer.fit()
    state = torch.load(tmp_path / "checkpoints" / "last.pt", weights_only=True)
    assert state["meta"]["seed"] == 3
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(NlprecError, match="garbage.pt: not a readable nlprec checkpoint"):
        load_checkpoint(garbage)


DDP_SCRIPT = """
import sys, torch, torch.distributed as dist
sys.path.insert(0, {test_dir!r})
from test_trainer import TinyRegressor, TinyData
from nlprec.train import Trainer, TrainerConfig
trainer = Trainer(TinyRegressor(), TinyData(), TrainerConfig(lr=0.05, epochs=2, seed=1, progress=False, device="cpu"))
history = trainer.fit()
weights = trainer.model.linear.weight.detach().clone()
gathered = [torch.zeros_like(weights) for _ in range(dist.get_world_size())]
dist.all_gather(gathered, weights)
assert all(torch.equal(gathered[0], other) for other in gathered), "ranks diverged"
assert history[-1]["loss"] < history[0]["loss"]
if dist.get_rank() == 0:
    print("DDP-OK", dist.get_world_size())
dist.destroy_process_group()
"""


def test_torchrun_two_cpu_processes_stay_in_sync(tmp_path):
    script = tmp_path / "ddp_run.py"
    script.write_text(DDP_SCRIPT.format(test_dir=str(Path(__file__).parent)))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(script)],
        capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 0, result.stderr[-8000:]  # the ranks' own errors come before the launcher's summary
    assert "DDP-OK 2" in result.stdout


def test_bf16_autocast_on_cpu_when_asked(tmp_path):
    trainer = make_trainer(tmp_path, precision="bf16")
    assert trainer.autocast_dtype == torch.bfloat16
    history = trainer.fit()
    assert history[-1]["loss"] < 0.5 * history[0]["loss"]
    assert make_trainer(tmp_path / "fp32").autocast_dtype is None  # auto stays fp32 on CPU
