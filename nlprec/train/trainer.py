"""The one trainer every model uses. Nothing in this file knows about any particular model.

A model is an `nn.Module` with `loss(batch)` returning a scalar tensor or a dict with a
`"loss"` entry plus named parts (logged separately). A model may instead set
`manual_optimization = True` and provide `train_step(batch, lr, lr_end) -> dict` (the rate at
the start and end of the step) when it updates its
own parameters with a compiled kernel (word2vec on CPU); the trainer still owns the schedule,
progress, logging, checkpoints, resume, seeds and distributed synchronisation.

A data module provides `train_dataloader(epoch, rank, world_size)` (an iterable of dict
batches, deterministic for a given seed and epoch), optionally `steps_per_epoch(world_size)`,
`val_dataloader()` and `state_dict()`. A batch may carry `n_words` or `n_examples` (ints) for
throughput; tensors are moved to the device, other values are passed through.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Literal

import numpy as np
import torch
from torch import nn

from nlprec import __version__
from nlprec.errors import NlprecError, require
from nlprec.io import to_plain
from nlprec.train import distributed
from nlprec.train.checkpoint import capture_rng, load_checkpoint, restore_rng, save_checkpoint
from nlprec.train.memory import keep_freed_memory
from nlprec.train.optimizers import sparse_adam
from nlprec.train.progress import Progress
from nlprec.train.schedules import ScheduleName, lr_multiplier


class TrainingDiverged(NlprecError):
    """The loss became NaN or infinite; the message names the step and the batch shape."""


Precision = Literal["auto", "fp32", "bf16", "fp16"]
PRECISIONS = ("auto", "fp32", "bf16", "fp16")


@dataclass(frozen=True)
class TrainerConfig:
    """How to train; independent of the model."""

    device: str = "auto"  # "auto" (CUDA when present, else CPU), "cpu", "cuda", "cuda:N"
    precision: Precision = "fp32"  # autocast; "auto": see resolve_precision (tasks pass it resolved)
    optimizer: Literal["adamw", "adam", "sgd", "adagrad", "sparse_adam"] = "adamw"  # sparse_adam: train/optimizers.py
    fused_optimizer: bool = False  # adamw/adam: torch's fused kernel, one pass over each weight (CPU, CUDA)
    lr: float = 1e-3  # base learning rate, > 0
    weight_decay: float = 0.0  # decoupled (adamw) or L2 (others), >= 0
    betas: tuple[float, float] = (0.9, 0.999)  # Adam betas, each in [0, 1)
    schedule: ScheduleName = "constant"  # see nlprec.train.schedules
    warmup_steps: int = 0  # linear warmup steps, >= 0
    warmup_fraction: float = 0.0  # or linear warmup over this share of the run (steps or time budget), in [0, 1)
    min_lr_ratio: float = 0.0  # final lr / base lr for linear and cosine decay, in [0, 1]
    epochs: int = 1  # passes over the training data, >= 1
    max_steps: int | None = None  # stop after this many optimizer steps (None: epochs decide)
    max_minutes: float | None = None  # training time budget across resumes; linear/cosine decay ends with it
    grad_clip: float | None = None  # clip the global grad norm to this, > 0 (None: off)
    accumulate: int = 1  # micro-batches per optimizer step, >= 1
    seed: int = 0  # seeds python, numpy and torch; same seed + device -> same result
    out_dir: str | None = None  # where checkpoints and metrics.jsonl go (None: nothing written)
    checkpoint_every_steps: int = 0  # also checkpoint every N steps (0: only at epoch ends)
    checkpoint_every_minutes: float = 10.0  # and at least this often during long epochs
    checkpoint_on_finish: bool = True  # also after the last epoch (off where the caller writes the result
    # at once and calls `save` only if that fails: the word embeddings, whose fastText table is ~800 MB)
    log_every_steps: int = 50  # JSONL record every N steps, >= 1
    progress: bool = True  # print the progress line to stderr
    early_stopping_metric: str | None = None  # validation metric to watch, e.g. "val_loss", "hr@10"
    early_stopping_mode: Literal["min", "max"] = "min"  # whether smaller or larger is better
    patience: int = 3  # epochs without improvement before stopping, >= 1
    throughput_unit: str = "examples"  # label of the progress rate ("words" for embeddings)

    def __post_init__(self) -> None:
        checks = [
            (self.lr > 0, f"lr must be > 0, got {self.lr}"),
            (self.epochs >= 1, f"epochs must be >= 1, got {self.epochs}"),
            (self.accumulate >= 1, f"accumulate must be >= 1, got {self.accumulate}"),
            (self.weight_decay >= 0, f"weight_decay must be >= 0, got {self.weight_decay}"),
            (0.0 <= self.min_lr_ratio <= 1.0, f"min_lr_ratio must be in [0, 1], got {self.min_lr_ratio}"),
            (self.warmup_steps >= 0, f"warmup_steps must be >= 0, got {self.warmup_steps}"),
            (0.0 <= self.warmup_fraction < 1.0, f"warmup_fraction must be in [0, 1), got {self.warmup_fraction}"),
            (self.max_minutes is None or self.max_minutes > 0, f"max_minutes must be > 0, got {self.max_minutes}"),
            (self.grad_clip is None or self.grad_clip > 0, f"grad_clip must be > 0, got {self.grad_clip}"),
            (self.max_steps is None or self.max_steps >= 1, f"max_steps must be >= 1, got {self.max_steps}"),
            (self.patience >= 1, f"patience must be >= 1, got {self.patience}"),
            (self.log_every_steps >= 1, f"log_every_steps must be >= 1, got {self.log_every_steps}"),
        ]
        require(checks)


def cpu_has_bf16_units() -> bool:
    """Whether this CPU computes bf16 natively (AVX512-BF16 or AMX), so bf16 autocast pays off."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            flags = next((line for line in handle if line.startswith("flags")), "").split()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_precision(precision: str, device: torch.device) -> str:
    """The one rule for "auto", used by every task and by the trainer: bf16 autocast where the
    hardware computes bf16 natively (CUDA that supports it, CPUs with AVX512-BF16 or AMX), fp32
    elsewhere. An explicit "fp32", "bf16" or "fp16" is kept (fp16 autocasts on CUDA only)."""
    if precision not in PRECISIONS:
        raise NlprecError(f"--precision must be {', '.join(PRECISIONS[:-1])} or {PRECISIONS[-1]}, got {precision!r}")
    if precision != "auto":
        return precision
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    return "bf16" if cpu_has_bf16_units() else "fp32"


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of `precision` on `device` (None: fp32); fp16 only on CUDA."""
    resolved = resolve_precision(precision, device)
    if resolved == "fp16" and device.type != "cuda":
        return None
    return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[resolved]


def autocast(precision: str, device: torch.device) -> contextlib.AbstractContextManager:
    """torch.autocast for `precision` on `device`, or a no-op context for fp32."""
    dtype = autocast_dtype(precision, device)
    return contextlib.nullcontext() if dtype is None else torch.autocast(device_type=device.type, dtype=dtype)


def resolve_device(name: str) -> torch.device:
    """`auto` -> CUDA when present, else CPU; `auto` and `cuda` mean the local rank's GPU (0
    outside torchrun); `cuda:N` is GPU N."""
    if name == "auto" and not torch.cuda.is_available():
        return torch.device("cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise NlprecError(f"device {name!r} requested but CUDA is not available; use --device cpu")
    if name in ("auto", "cuda"):
        return torch.device("cuda", distributed.local_rank())
    return torch.device(name)


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (all devices)."""
    import random

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


@dataclass
class TrainState:
    """Where training is; saved in every checkpoint."""

    step: int = 0  # optimizer steps done
    epoch: int = 0  # current epoch, 0-based
    batch_in_epoch: int = 0  # batches of the current epoch already consumed
    best_metric: float | None = None
    epochs_without_improvement: int = 0
    stopped_early: bool = False
    train_seconds: float = 0.0  # wall time of this run's fits so far (a --max-minutes budget spans resumes)


class _LossOf(nn.Module):
    """Wraps a model so that `forward(batch)` is its loss: DDP syncs gradients through forward."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, batch: dict[str, Any]) -> Any:
        return self.model.loss(batch)


class Trainer:
    """Trains any model on any data module; see the module docstring for the contracts."""

    def __init__(self, model: nn.Module, data: Any, config: TrainerConfig,
                 evaluator: Callable[[nn.Module], dict[str, float]] | None = None,
                 meta: dict[str, Any] | None = None):
        self.config = config
        self.data = data
        self.evaluator = evaluator
        self.meta = {"nlprec_version": __version__, "seed": config.seed, **(meta or {})}
        self.device = resolve_device(config.device)
        self.world_size, self.rank = distributed.setup(self.device)
        if self.device.type == "cpu":
            keep_freed_memory()  # no page faults on each step's large buffers (nlprec.train.memory)
        self.model = model.to(self.device)
        self.manual = bool(getattr(model, "manual_optimization", False))
        self.autocast_dtype = self._pick_autocast_dtype()
        self.scaler = torch.amp.GradScaler("cuda") if self.autocast_dtype == torch.float16 else None
        self.optimizer = None if self.manual else self._build_optimizer()
        self.loss_module = self._wrap_for_ddp()
        self.state = TrainState()
        self._saved_state: tuple | None = None  # the state the last checkpoint holds
        self.out_dir = Path(config.out_dir) if config.out_dir else None
        self.history: list[dict[str, Any]] = []
        self._total_steps: int | None = None  # memo of total_steps()
        self._seconds_before_fit = 0.0  # training seconds of the fits this run resumed from
        self._step_seconds = 0.0  # how long the last optimizer step took (a time budget stops a step early)

    # ----- set-up -------------------------------------------------------------------------
    def _pick_autocast_dtype(self) -> torch.dtype | None:
        """The config's precision on this device (resolve_precision); none for models that
        keep float32 (sparse embedding updates)."""
        if not getattr(self.model, "supports_amp", True):
            return None
        return autocast_dtype(self.config.precision, self.device)

    def _build_optimizer(self) -> torch.optim.Optimizer:
        """One group of all trainable parameters, or the model's own `param_groups()`: a list of
        torch optimizer groups whose optional "lr_scale" multiplies the scheduled rate (fine-tuning
        an encoder slower than its head) and whose options (e.g. weight_decay=0) override the config."""
        if hasattr(self.model, "param_groups"):
            params = self.model.param_groups()
        else:
            params = [p for p in self.model.parameters() if p.requires_grad]
        config = self.config
        if config.optimizer == "adamw":
            return torch.optim.AdamW(params, lr=config.lr, betas=config.betas, weight_decay=config.weight_decay,
                                     fused=config.fused_optimizer or None)
        if config.optimizer == "adam":
            return torch.optim.Adam(params, lr=config.lr, betas=config.betas, weight_decay=config.weight_decay,
                                    fused=config.fused_optimizer or None)
        if config.optimizer == "sparse_adam":
            groups = params if params and isinstance(params[0], dict) else [{"params": params}]
            return sparse_adam(groups, self.model, config.lr, config.betas, config.weight_decay)
        if config.optimizer == "adagrad":
            return torch.optim.Adagrad(params, lr=config.lr, weight_decay=config.weight_decay)
        return torch.optim.SGD(params, lr=config.lr, weight_decay=config.weight_decay)

    def _wrap_for_ddp(self) -> nn.Module:
        loss_module = _LossOf(self.model)
        if self.world_size > 1 and not self.manual:
            ids = [self.device.index] if self.device.type == "cuda" else None
            return nn.parallel.DistributedDataParallel(loss_module, device_ids=ids)
        return loss_module

    # ----- schedule -----------------------------------------------------------------------
    def steps_per_epoch(self) -> int:
        """Optimizer steps in one epoch (micro-batches / accumulate)."""
        if hasattr(self.data, "steps_per_epoch"):
            batches = self.data.steps_per_epoch(self.world_size)
        else:
            batches = len(self.data.train_dataloader(epoch=0, rank=self.rank, world_size=self.world_size))
        return max(math.ceil(batches / self.config.accumulate), 1)

    def total_steps(self) -> int:
        """Optimizer steps of the whole run; computed once (`lr_at` asks every step, and a data
        module may have to lay out an epoch's batches to count them)."""
        if self._total_steps is None:
            total = self.steps_per_epoch() * self.config.epochs
            self._total_steps = min(total, self.config.max_steps) if self.config.max_steps else total
        return self._total_steps

    def time_bound(self) -> bool:
        """Whether a --max-minutes budget may end this run's decaying schedule (linear, cosine)."""
        return self.config.max_minutes is not None and self.config.schedule in ("linear", "cosine")

    def elapsed_seconds(self) -> float:
        """Training wall time of this run: earlier fits (resumed from) plus the current one."""
        started = getattr(self, "started", None)
        if started is None:  # not fitting now
            return self.state.train_seconds
        return self._seconds_before_fit + time.perf_counter() - started

    def lr_at(self, step: int) -> float:
        """The scheduled rate of `step`. Under a time budget, linear and cosine schedules place the
        run where it is by the clock when that is further along than its step (the budget's share
        of the step cap), so the rate reaches its final value when the budget runs out, on any
        machine, whatever the first steps cost; a run that its steps end first is unchanged."""
        config, total = self.config, self.total_steps()
        where = step
        if self.time_bound():  # whole steps: a clock less than a step ahead leaves the rate as it was
            where = max(step, math.floor(min(self.elapsed_seconds() / (60.0 * config.max_minutes), 1.0) * total))
        warmup = config.warmup_steps or int(config.warmup_fraction * total)
        return config.lr * lr_multiplier(config.schedule, where, total, warmup, config.min_lr_ratio)

    def plan(self) -> dict[str, Any]:
        """What the run planned and did, for config.json: the step cap and the time budget it
        planned against, the steps and minutes it trained, what ended it, its last rate."""
        config, state = self.config, self.state
        ended_by = ("early stopping" if state.stopped_early else "steps" if state.step >= self.total_steps()
                    else "time" if self._out_of_time() else "epochs")
        return {"planned_steps": self.total_steps(), "planned_minutes": config.max_minutes,
                "schedule_follows": "time budget" if self.time_bound() else "steps",
                "steps": state.step, "minutes": round(state.train_seconds / 60.0, 3), "ended_by": ended_by,
                "final_lr": self.lr_at(max(state.step - 1, 0))}

    # ----- checkpoints ----------------------------------------------------------------------
    def checkpoint_state(self) -> dict[str, Any]:
        """Everything a resume needs, in weights_only-safe types."""
        model_config = getattr(self.model, "config", None)
        return {
            "model": _on_cpu(self.model.state_dict()),
            "model_name": type(self.model).__name__,
            "model_config": dataclasses.asdict(model_config) if dataclasses.is_dataclass(model_config) else {},
            "optimizer": _on_cpu(self.optimizer.state_dict()) if self.optimizer else None,
            "scaler": self.scaler.state_dict() if self.scaler else None,
            "trainer_config": to_plain(dataclasses.asdict(self.config)),
            "train_state": dataclasses.asdict(self.state),
            "data_state": self.data.state_dict() if hasattr(self.data, "state_dict") else {},
            "rng": capture_rng(self.device),
            "meta": to_plain(self.meta),
            "history": to_plain(self.history),
        }

    def save(self, name: str = "last.pt") -> Path | None:
        """Write a checkpoint under out_dir/checkpoints (rank 0 only)."""
        self.state.train_seconds = self.elapsed_seconds()
        if self.out_dir is None or self.rank != 0:
            return None
        path = self.out_dir / "checkpoints" / name
        save_checkpoint(path, self.checkpoint_state())
        self._saved_state = dataclasses.astuple(self.state)
        return path

    def drop_checkpoint(self, name: str = "last.pt") -> None:
        """Remove a checkpoint that a finished run no longer needs (rank 0 only)."""
        if self.out_dir is not None and self.rank == 0:
            (self.out_dir / "checkpoints" / name).unlink(missing_ok=True)

    def restore(self, checkpoint: dict[str, Any] | str | Path) -> None:
        """Load model, optimizer, scaler, position and RNG from a checkpoint (dict or path)."""
        if not isinstance(checkpoint, dict):
            checkpoint = load_checkpoint(checkpoint)
        self.model.load_state_dict(checkpoint["model"])
        if self.optimizer is not None and checkpoint.get("optimizer"):
            self.optimizer.load_state_dict(checkpoint["optimizer"])
        if self.scaler is not None and checkpoint.get("scaler"):
            self.scaler.load_state_dict(checkpoint["scaler"])
        self.state = TrainState(**checkpoint["train_state"])
        self.history = list(checkpoint.get("history", []))
        restore_rng(checkpoint["rng"], self.device)
        self._resumed = True

    # ----- the loop -------------------------------------------------------------------------
    def fit(self) -> list[dict[str, Any]]:
        """Train until the epochs, max_steps or max_minutes run out, or early stopping fires.

        Returns the per-epoch records (also written to out_dir/metrics.jsonl).
        """
        if not getattr(self, "_resumed", False):
            seed_everything(self.config.seed + self.rank)
        total = self.total_steps()
        minutes = self.config.max_minutes
        self._seconds_before_fit = self.state.train_seconds
        left = None if minutes is None else max(60.0 * minutes - self._seconds_before_fit, 0.0)
        progress = Progress(total, unit=self.config.throughput_unit, enabled=self.config.progress and self.rank == 0,
                            time_limit_seconds=left)
        progress.begin(self.state.step)
        self._units_before_epoch = 0.0  # the progress rate counts from the start of this fit
        self.started = time.perf_counter()
        self.last_checkpoint_time = self.started
        self.model.train()
        try:
            while self.state.epoch < self.config.epochs and not self._should_stop(total):
                self._run_epoch(progress, total)
            if self._saved_state != dataclasses.astuple(self.state) and self._keeps_checkpoint(total):
                self.save("last.pt")  # each epoch ends with a save
        except KeyboardInterrupt:
            self.save("last.pt")  # Ctrl-C loses nothing: --resume continues from here
            raise
        finally:
            progress.close()
            self.state.train_seconds = self.elapsed_seconds()
            self.started = None  # the clock of this fit stops here
        distributed.barrier()
        return self.history

    def _keeps_checkpoint(self, total: int) -> bool:
        """Whether to write last.pt now: always before the run is complete (a budget stop or an
        interrupted run resumes from it), after it only with `checkpoint_on_finish`."""
        state = self.state
        complete = state.stopped_early or state.step >= total or state.epoch >= self.config.epochs
        return self.config.checkpoint_on_finish or not complete

    def _should_stop(self, total: int) -> bool:
        if self.state.stopped_early or self.state.step >= total:
            return True
        return self._out_of_time()

    def _out_of_time(self) -> bool:
        """Whether one more step, as long as the last, would overrun the --max-minutes budget."""
        limit = self.config.max_minutes
        return limit is not None and self.elapsed_seconds() + self._step_seconds >= 60.0 * limit

    def _run_epoch(self, progress: Progress, total: int) -> None:
        state = self.state
        loader = self.data.train_dataloader(epoch=state.epoch, rank=self.rank, world_size=self.world_size)
        batches = itertools.islice(iter(loader), state.batch_in_epoch, None)
        epoch_sums: dict[str, float] = {}
        epoch_count = 0
        window_sums: dict[str, float] = {}
        window_count = 0
        units_done = 0.0
        epoch_start = time.perf_counter()
        for micro_batches in _chunked(batches, self.config.accumulate):
            step_started = time.perf_counter()
            parts = self._step(micro_batches)
            self._step_seconds = time.perf_counter() - step_started
            state.batch_in_epoch += len(micro_batches)
            state.step += 1
            units_done += sum(_batch_units(batch) for batch in micro_batches)
            for key, value in parts.items():
                epoch_sums[key] = epoch_sums.get(key, 0.0) + value
                window_sums[key] = window_sums.get(key, 0.0) + value
            epoch_count += 1
            window_count += 1
            progress.update(state.step, state.epoch + 1, self.config.epochs,
                            window_sums["loss"] / window_count, self.lr_at(state.step - 1),
                            self._units_before_epoch + units_done)
            if state.step % self.config.log_every_steps == 0:
                self._log({"step": state.step, "epoch": state.epoch + 1, "lr": self.lr_at(state.step - 1),
                           **{k: v / window_count for k, v in window_sums.items()},
                           f"{self.config.throughput_unit}_per_s": units_done / (time.perf_counter() - epoch_start)})
                window_sums, window_count = {}, 0
            self._maybe_checkpoint()
            if self._should_stop(total):
                break
        if epoch_count:
            progress.update(state.step, state.epoch + 1, self.config.epochs, epoch_sums["loss"] / epoch_count,
                            self.lr_at(state.step - 1), self._units_before_epoch + units_done, force=True)
        self._units_before_epoch += units_done
        finished_epoch = not self._should_stop(total) or self._epoch_exhausted(loader)
        seconds = time.perf_counter() - epoch_start
        record = {"event": "epoch", "epoch": state.epoch + 1, "step": state.step, "seconds": seconds,
                  f"{self.config.throughput_unit}_per_s": units_done / max(seconds, 1e-9),
                  **{k: v / max(epoch_count, 1) for k, v in epoch_sums.items()}}
        if finished_epoch:
            state.epoch += 1
            state.batch_in_epoch = 0
        record.update(self._validate())
        self.history.append(record)
        self._log(record)
        self._update_early_stopping(record)
        if self._keeps_checkpoint(total):
            self.save("last.pt")

    def _epoch_exhausted(self, loader: Iterable) -> bool:
        try:
            return self.state.batch_in_epoch >= len(loader)  # type: ignore[arg-type]
        except TypeError:
            return False

    def _step(self, micro_batches: list[dict[str, Any]]) -> dict[str, float]:
        """One optimizer step over `accumulate` micro-batches; returns the mean loss parts."""
        lr = self.lr_at(self.state.step)
        if self.manual:
            return self._manual_step(micro_batches, lr)
        for group in self.optimizer.param_groups:
            group["lr"] = lr * group.get("lr_scale", 1.0)
        totals: dict[str, float] = {}
        for index, batch in enumerate(micro_batches):
            batch = _to_device(batch, self.device)
            sync = index == len(micro_batches) - 1
            no_sync = getattr(self.loss_module, "no_sync", None)
            with (contextlib.nullcontext() if sync or no_sync is None else no_sync()), self._autocast():
                parts = _loss_parts(self.loss_module(batch))
            loss = parts["loss"] / len(micro_batches)
            self._check_finite(parts["loss"], batch)
            (self.scaler.scale(loss) if self.scaler else loss).backward()
            for key, value in parts.items():
                totals[key] = totals.get(key, 0.0) + float(value.detach()) / len(micro_batches)
        self._optimizer_step()
        return totals

    def _manual_step(self, micro_batches: list[dict[str, Any]], lr: float) -> dict[str, float]:
        totals: dict[str, float] = {}
        lr_end = self.lr_at(self.state.step + 1)  # kernels may decay the rate within the step
        for batch in micro_batches:
            stats = self.model.train_step(batch, lr=lr, lr_end=lr_end)
            self._check_finite(torch.tensor(stats["loss"]), batch)
            for key, value in stats.items():
                totals[key] = totals.get(key, 0.0) + float(value) / len(micro_batches)
        if self.world_size > 1:
            distributed.average_parameters(self.model)
        return totals

    def _optimizer_step(self) -> None:
        if self.scaler:
            self.scaler.unscale_(self.optimizer)
        if self.config.grad_clip:
            nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
        if self.scaler:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.autocast_dtype)

    def _check_finite(self, loss: torch.Tensor, batch: dict[str, Any]) -> None:
        if not bool(torch.isfinite(loss.detach()).all()):
            shapes = {k: tuple(v.shape) for k, v in batch.items() if hasattr(v, "shape")}
            raise TrainingDiverged(
                f"loss became {float(loss.detach())} at step {self.state.step + 1} (epoch {self.state.epoch + 1}); "
                f"last batch shapes {shapes}; lower the learning rate or enable gradient clipping")

    # ----- validation, early stopping, logging ---------------------------------------------
    def _validate(self) -> dict[str, float]:
        metrics: dict[str, float] = {}
        if hasattr(self.data, "val_dataloader") and not self.manual:
            val_loss = self._validation_loss()
            if val_loss is not None:
                metrics["val_loss"] = val_loss
        if self.evaluator is not None:
            self.model.eval()
            with torch.no_grad():
                metrics.update(self.evaluator(self.model))
            self.model.train()
        return metrics

    def _validation_loss(self) -> float | None:
        loader = self.data.val_dataloader()
        if loader is None:
            return None
        self.model.eval()
        total, count = 0.0, 0
        with torch.no_grad(), self._autocast():
            for batch in loader:
                total += float(_loss_parts(self.model.loss(_to_device(batch, self.device)))["loss"])
                count += 1
        self.model.train()
        return total / count if count else None

    def _update_early_stopping(self, record: dict[str, Any]) -> None:
        name = self.config.early_stopping_metric
        if name is None:
            return
        if name not in record:
            raise NlprecError(f"early-stopping metric {name!r} is not computed; available: {sorted(record)}")
        value = float(record[name])
        best = self.state.best_metric
        better = best is None or (value < best if self.config.early_stopping_mode == "min" else value > best)
        if better:
            self.state.best_metric = value
            self.state.epochs_without_improvement = 0
            self.save("best.pt")
        else:
            self.state.epochs_without_improvement += 1
            if self.state.epochs_without_improvement >= self.config.patience:
                self.state.stopped_early = True

    def _maybe_checkpoint(self) -> None:
        every_steps = self.config.checkpoint_every_steps
        due_by_steps = every_steps > 0 and self.state.step % every_steps == 0
        due_by_time = time.perf_counter() - self.last_checkpoint_time >= 60.0 * self.config.checkpoint_every_minutes
        if due_by_steps or due_by_time:
            self.save("last.pt")
            self.last_checkpoint_time = time.perf_counter()

    def _log(self, record: dict[str, Any]) -> None:
        if self.out_dir is None or self.rank != 0:
            return
        self.out_dir.mkdir(parents=True, exist_ok=True)
        with open(self.out_dir / "metrics.jsonl", "a", encoding="utf-8") as handle:
            handle.write(json.dumps(to_plain(record)) + "\n")


def _on_cpu(value: Any) -> Any:
    """A state dict (nested dicts and lists) with every tensor copied to the CPU: checkpoints load
    on machines without the run's GPU (an optimizer moves its state back on load_state_dict)."""
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    if isinstance(value, dict):
        return {key: _on_cpu(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_on_cpu(item) for item in value)
    return value


def _chunked(iterable: Iterable, size: int) -> Iterable[list]:
    iterator = iter(iterable)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


def _batch_units(batch: dict[str, Any]) -> float:
    for key in ("n_words", "n_tokens", "n_examples"):
        if key in batch:
            return float(batch[key])
    for value in batch.values():
        if hasattr(value, "shape") and len(value.shape) > 0:
            return float(value.shape[0])
    return 1.0


def _loss_parts(output: Any) -> dict[str, torch.Tensor]:
    if isinstance(output, dict):
        if "loss" not in output:
            raise TypeError("a model's loss dict must contain 'loss'")
        return output
    return {"loss": output}


def _to_device(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    return {k: v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


__all__ = ["Trainer", "TrainerConfig", "TrainingDiverged", "TrainState", "resolve_device", "seed_everything",
           "load_checkpoint"]
