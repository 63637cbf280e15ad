"""Adam for models with sparse embedding tables: only the rows a batch touches are updated.

An `nn.Embedding(..., sparse=True)` gives its weight a sparse gradient holding the batch's rows.
torch's SparseAdam is a lazy Adam: it moves those rows and their moments and leaves every other
row alone, so a step costs the batch, not the table (dense Adam rewrites all U x d weights and
both moments every step). SparseAdam refuses dense gradients, so a model that also has dense
parameters (an MLP, an output layer) gets `SparseRowsAdam`: SparseAdam for the tables, AdamW for
the rest, stepped together as one optimizer. SparseAdam has no weight decay: models regularise
their rows with an L2 term on the batch's rows in the loss; `weight_decay` applies to the dense part.
"""

from __future__ import annotations

from typing import Any, Iterable

import torch
from torch import nn

from nlprec.errors import NlprecError


def sparse_parameters(model: nn.Module) -> list[nn.Parameter]:
    """Weights of the model's embedding tables built with `sparse=True` (sparse gradients)."""
    return [module.weight for module in model.modules()
            if isinstance(module, (nn.Embedding, nn.EmbeddingBag)) and module.sparse]


class SparseRowsAdam:
    """SparseAdam on the sparse tables and AdamW on every other parameter, as one optimizer.

    `param_groups` lists both optimizers' groups (the trainer sets each group's rate);
    `state_dict` holds both states, so a checkpoint resumes exactly.
    """

    def __init__(self, groups: list[dict[str, Any]], sparse: Iterable[nn.Parameter], lr: float,
                 betas: tuple[float, float] = (0.9, 0.999), weight_decay: float = 0.0):
        sparse_ids = {id(param) for param in sparse}
        self.sparse = torch.optim.SparseAdam(_part(groups, lambda param: id(param) in sparse_ids), lr=lr, betas=betas)
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
    """The optimizer for `optimizer="sparse_adam"`: torch's SparseAdam when every trained parameter
    is a sparse table (word2vec, fastText, MF), `SparseRowsAdam` when sparse tables sit beside dense
    layers (NeuMF), AdamW when the model has no sparse table."""
    sparse = {id(param) for param in sparse_parameters(model)}
    trained = [id(param) for group in groups for param in group["params"]]
    if all(key in sparse for key in trained):
        return torch.optim.SparseAdam(groups, lr=lr, betas=betas)
    if not any(key in sparse for key in trained):
        return torch.optim.AdamW(groups, lr=lr, betas=betas, weight_decay=weight_decay)
    return SparseRowsAdam(groups, sparse_parameters(model), lr, betas, weight_decay)


__all__ = ["SparseRowsAdam", "sparse_adam", "sparse_parameters"]
