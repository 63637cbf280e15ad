"""Biased matrix factorization for explicit ratings.

Koren, Bell & Volinsky 2009, "Matrix Factorization Techniques for Recommender Systems"
(IEEE Computer), eq. 4-5: the predicted rating is

    r_hat(u, i) = mu + b_u + b_i + p_u . q_i

with `mu` the global mean of the training ratings (a fixed offset, not learned), learned user
and item biases and `dim`-dimensional user and item factors. Training minimises the squared
error on observed ratings plus `l2` times the squared norms of the parameters each rating
touches (the paper's lambda, applied per rating, so popular users and items are regularised
more). Predictions are clipped to the rating range seen in training.

The four tables take sparse row gradients and train with the trainer's "sparse_adam" (a lazy
Adam, nlprec.train.optimizers.RowAdam): a step moves only the rows of the batch's users and
items, so an epoch costs the interactions, not users x steps. Lazy Adam has no weight decay; the
L2 term above is the regularisation, on the batch's rows, in the loss.

The score is an inner product plus a per-user constant, so top-k retrieval runs on FAISS:
`retrieval_vectors()` returns user rows [p_u, 1], item rows [q_i, b_i] and the user offset
mu + b_u.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from nlprec.nn.losses import l2_penalty
from nlprec.registry import register


@dataclass(frozen=True)
class MFConfig:
    """Sizes and regularisation of biased MF."""

    n_users: int = 1  # users in the id map, >= 1
    n_items: int = 1  # items in the id map, >= 1
    dim: int = 64  # latent factors per user and item, >= 1
    l2: float = 0.2  # L2 weight on the factors and biases of each rating, >= 0
    init_std: float = 0.01  # std of the normal initialisation of the factors, > 0
    global_mean: float = 0.0  # mean training rating, the fixed offset mu (set from the data)
    rating_min: float = float("-inf")  # predictions are clipped to [rating_min, rating_max]
    rating_max: float = float("inf")  # (set from the training ratings)
    sparse: bool = True  # tables take sparse row gradients (optimizer sparse_adam); False: dense, any optimizer


@register("mf", config=MFConfig, family="recommender",
          description="matrix factorization with user/item biases and L2 (explicit ratings, RMSE)")
class MF(nn.Module):
    """Biased MF; `loss` takes a batch of `users`, `items` (B,) int64 and `ratings` (B,) float."""

    task: ClassVar[str] = "rating"  # predicts ratings; evaluated by RMSE / MAE
    input_type: ClassVar[str] = "ratings"  # trained on nlprec.data.interactions.RatingsData
    # Trainer and data settings (with dim and l2 above) chosen on a validation split carved from
    # the ml-100k training part: validation RMSE ~0.902, flat between 20 and 30 epochs. Kept for
    # sparse tables + SparseAdam: test RMSE 0.8929 (dense Adam: 0.8928), BENCHMARKS.md.
    training_defaults: ClassVar[dict[str, Any]] = {"optimizer": "sparse_adam", "lr": 2e-3, "epochs": 25,
                                                    "batch_size": 1024}

    def __init__(self, config: MFConfig = MFConfig()):
        super().__init__()
        self.config = config
        sparse = config.sparse
        self.user_factors = nn.Embedding(config.n_users, config.dim, sparse=sparse)  # P: (U, dim)
        self.item_factors = nn.Embedding(config.n_items, config.dim, sparse=sparse)  # Q: (I, dim)
        self.user_bias = nn.Embedding(config.n_users, 1, sparse=sparse)  # b_u: (U, 1)
        self.item_bias = nn.Embedding(config.n_items, 1, sparse=sparse)  # b_i: (I, 1)
        nn.init.normal_(self.user_factors.weight, std=config.init_std)
        nn.init.normal_(self.item_factors.weight, std=config.init_std)
        nn.init.zeros_(self.user_bias.weight)
        nn.init.zeros_(self.item_bias.weight)

    def forward(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Unclipped predicted ratings for aligned (N,) user and item indices: (N,)."""
        return self._predicted(*self._rows(users, items))

    def _rows(self, users: torch.Tensor, items: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """p_u, q_i (N, dim) and b_u, b_i (N,) of aligned (N,) indices: each table read once a step."""
        return (self.user_factors(users), self.item_factors(items),
                self.user_bias(users).squeeze(-1), self.item_bias(items).squeeze(-1))

    def _predicted(self, p: torch.Tensor, q: torch.Tensor, b_u: torch.Tensor, b_i: torch.Tensor) -> torch.Tensor:
        return self.config.global_mean + b_u + b_i + (p * q).sum(-1)  # (N,)

    def loss(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        users, items, ratings = batch["users"], batch["items"], batch["ratings"]  # (B,) each
        rows = self._rows(users, items)
        mse = F.mse_loss(self._predicted(*rows), ratings)
        reg = l2_penalty(*rows) / len(users)
        return {"loss": mse + self.config.l2 * reg, "mse": mse.detach()}

    def _clip(self, scores: torch.Tensor) -> torch.Tensor:
        return scores.clamp(self.config.rating_min, self.config.rating_max)

    @torch.no_grad()
    def predict(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Predicted ratings, clipped to the training range: (N,)."""
        return self._clip(self(users, items))

    @torch.no_grad()
    def score_all(self, users: torch.Tensor) -> torch.Tensor:
        """Unclipped predicted ratings of every item for each user: (B, n_items)."""
        user_rows, item_rows, offset = self.retrieval_vectors(users)
        return user_rows @ item_rows.T + offset[:, None]  # (B, I)

    @torch.no_grad()
    def retrieval_vectors(self, users: torch.Tensor | None = None
                          ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """User rows (B, dim+1), item rows (I, dim+1) and user offsets (B,) with
        score = user_row . item_row + offset; all users when `users` is None."""
        users = torch.arange(self.config.n_users, device=self.user_bias.weight.device) if users is None else users
        ones = torch.ones(len(users), 1, device=users.device)
        user_rows = torch.cat([self.user_factors(users), ones], dim=1)  # (B, dim+1)
        item_rows = torch.cat([self.item_factors.weight, self.item_bias.weight], dim=1)  # (I, dim+1)
        return user_rows, item_rows, self.config.global_mean + self.user_bias(users).squeeze(-1)

    @torch.no_grad()
    def biases(self) -> tuple[float, torch.Tensor, torch.Tensor]:
        """(mu, b_u (U,), b_i (I,)): the baseline part of every prediction. Scoring a cold user or
        item falls back on mu plus the known side's bias, as Surprise's SVD does."""
        return self.config.global_mean, self.user_bias.weight[:, 0].detach(), self.item_bias.weight[:, 0].detach()

    @torch.no_grad()
    def item_embeddings(self) -> torch.Tensor:
        """Item factors q_i for cosine similar-item lookups: (I, dim)."""
        return self.item_factors.weight
