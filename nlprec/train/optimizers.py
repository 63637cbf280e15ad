"""Adam for models with sparse embedding tables: only the rows a batch touches are updated.

An `nn.Embedding(..., sparse=True)` gives its weight a sparse gradient holding the batch's rows.
A lazy Adam (torch's SparseAdam) moves those rows and their moments and leaves every other row
alone, so a step costs the batch, not the table (dense Adam rewrites all U x d weights and both
moments every step). `RowAdam` is that optimizer with SparseAdam's arithmetic and state, its CPU
step compiled (nlprec.nn.row_adam_kernel). It refuses dense gradients, so a model that also has
dense parameters (an MLP, an output layer) gets `SparseRowsAdam`: RowAdam for the tables, AdamW
for the rest, stepped together as one optimizer. Lazy Adam has no weight decay: models regularise
their rows with an L2 term on the batch's rows in the loss; `weight_decay` applies to the dense part.
"""

from __future__ import annotations

import math
from typing import Any, Iterable

import numpy as np
import torch
from torch import nn
from torch.optim import _functional

from nlprec.errors import NlprecError
from nlprec.nn.row_adam_kernel import lazy_adam_rows


def sparse_parameters(model: nn.Module) -> list[nn.Parameter]:
    """Weights of the model's embedding tables built with `sparse=True` (sparse gradients)."""
    return [module.weight for module in model.modules()
            if isinstance(module, (nn.Embedding, nn.EmbeddingBag)) and module.sparse]


class RowAdam(torch.optim.Optimizer):
    """Lazy Adam for tables with sparse row gradients: SparseAdam's update, options and state dict
    (a checkpoint from either resumes in the other), one compiled pass per table on CPU float32
    and torch's own sparse Adam elsewhere (CUDA, other dtypes)."""

    def __init__(self, params: Any, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, maximize: bool = False):
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps, "maximize": maximize})
        self._scratch: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:
        """One update of every parameter with a gradient; `closure` (re-evaluates the loss) as in torch."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for param in group["params"]:
                if param.grad is None:
                    continue
                if not param.grad.is_sparse:
                    raise NlprecError(f"sparse_adam got a dense gradient for a {tuple(param.shape)} parameter: "
                                      "it trains embedding tables built with sparse=True")
                state = self.state[param]
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(param)
                    state["exp_avg_sq"] = torch.zeros_like(param)
                state["step"] += 1
                if param.device.type == "cpu" and param.dtype == torch.float32 and param.dim() == 2:
                    self._compiled_step(param, state, group)
                else:
                    beta1, beta2 = group["betas"]
                    _functional.sparse_adam([param], [param.grad], [state["exp_avg"]], [state["exp_avg_sq"]],
                                            [state["step"]], eps=group["eps"], beta1=beta1, beta2=beta2,
                                            lr=group["lr"], maximize=group["maximize"])
        return loss

    def _compiled_step(self, param: nn.Parameter, state: dict[str, Any], group: dict[str, Any]) -> None:
        grad = param.grad
        indices = np.ascontiguousarray(grad._indices()[0].numpy())  # (nnz,) rows, repeats allowed
        values = np.ascontiguousarray(grad._values().numpy().reshape(len(indices), param.shape[1]))  # (nnz, dim)
        if group["maximize"]:
            values = -values
        slot_of_row, rows, summed = self._scratch_for(param, len(indices))
        beta1, beta2 = group["betas"]
        step = state["step"]
        step_size = group["lr"] * math.sqrt(1 - beta2**step) / (1 - beta1**step)
        lazy_adam_rows(param.detach().numpy(), state["exp_avg"].numpy(), state["exp_avg_sq"].numpy(), indices, values,
                       slot_of_row, rows, summed, np.float32(1 - beta1), np.float32(1 - beta2),
                       np.float32(group["eps"]), np.float32(-step_size))

    def _scratch_for(self, param: nn.Parameter, nnz: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The kernel's work arrays for `param`, grown to hold `nnz` gradient entries."""
        scratch = self._scratch.get(id(param))
        if scratch is None or len(scratch[1]) < nnz:
            slot_of_row = np.full(param.shape[0], -1, dtype=np.int64) if scratch is None else scratch[0]
            scratch = (slot_of_row, np.empty(nnz, dtype=np.int64), np.empty((nnz, param.shape[1]), dtype=np.float32))
            self._scratch[id(param)] = scratch
        return scratch


class SparseRowsAdam:
    """RowAdam on the sparse tables and AdamW on every other parameter, as one optimizer.

    `param_groups` lists both optimizers' groups (the trainer sets each group's rate);
    `state_dict` holds both states, so a checkpoint resumes exactly.
    """

    def __init__(self, groups: list[dict[str, Any]], sparse: Iterable[nn.Parameter], lr: float,
                 betas: tuple[float, float] = (0.9, 0.999), weight_decay: float = 0.0):
        sparse_ids = {id(param) for param in sparse}
        self.sparse = RowAdam(_part(groups, lambda param: id(param) in sparse_ids), lr=lr, betas=betas)
        self.dense = torch.optim.AdamW(_part(groups, lambda param: id(param) not in sparse_ids), lr=lr, betas=betas,
                                       weight_decay=weight_decay)
        self.param_groups = self.sparse.param_groups + self.dense.param_groups

    def step(self) -> None:
        self.sparse.step()
        self.dense.step()

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.sparse.zero_grad(set_to_none)
        self.dense.zero_grad(set_to_none)

    def state_dict(self) -> dict[str, Any]:
        return {"sparse": self.sparse.state_dict(), "dense": self.dense.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if set(state) != {"sparse", "dense"}:
            raise NlprecError("the checkpoint's optimizer state is not a sparse_adam one (saved by another "
                              "optimizer or an older nlprec): resume with the optimizer it was trained with")
        self.sparse.load_state_dict(state["sparse"])
        self.dense.load_state_dict(state["dense"])


def _part(groups: list[dict[str, Any]], keep: Any) -> list[dict[str, Any]]:
    """The groups with only the parameters `keep` accepts; groups left empty are dropped."""
    parts = [{**group, "params": [param for param in group["params"] if keep(param)]} for group in groups]
    return [part for part in parts if part["params"]]


def sparse_adam(groups: list[dict[str, Any]], model: nn.Module, lr: float, betas: tuple[float, float],
                weight_decay: float) -> Any:
    """The optimizer for `optimizer="sparse_adam"`: RowAdam when every trained parameter is a sparse
    table (MF), `SparseRowsAdam` when sparse tables sit beside dense layers (NeuMF), AdamW when the
    model has no sparse table."""
    sparse = {id(param) for param in sparse_parameters(model)}
    trained = [id(param) for group in groups for param in group["params"]]
    if all(key in sparse for key in trained):
        return RowAdam(groups, lr=lr, betas=betas)
    if not any(key in sparse for key in trained):
        return torch.optim.AdamW(groups, lr=lr, betas=betas, weight_decay=weight_decay)
    return SparseRowsAdam(groups, sparse_parameters(model), lr, betas, weight_decay)


__all__ = ["RowAdam", "SparseRowsAdam", "sparse_adam", "sparse_parameters"]
