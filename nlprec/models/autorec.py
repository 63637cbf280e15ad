"""Item-based AutoRec (I-AutoRec) for explicit ratings.

Sedhain, Menon, Sanner & Xie 2015, "AutoRec: Autoencoders Meet Collaborative Filtering"
(WWW'15). Each item is its column of the rating matrix, r_i in R^{n_users} (0 where
unobserved). The network reconstructs it through one sigmoid hidden layer and an identity
output layer:

    h_i = sigmoid(V dropout(r_i) + mu)          (hidden,)
    r_hat_i = W h_i + b                          (n_users,)

and training minimises the squared error on the observed entries only (masked: a missing
rating is not a zero) plus `l2` / 2 (||W||^2 + ||V||^2), the paper's objective (eq. 2).
The prediction for (u, i) is r_hat_i[u] = W_u . h_i + b_u.

Predictions need each item's hidden code h_i computed from the training ratings; after
training (and before each evaluation) `encode_items` stores them in the `codes` buffer, which
is saved with the weights. Items with no training ratings are predicted as the global mean,
as the paper does for unseen items. Predictions are clipped to the training rating range.

Because r_hat(u, i) = [W_u, b_u] . [h_i, 1], top-k retrieval runs on FAISS over the item codes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from nlprec.nn.losses import l2_penalty, masked_mse_loss
from nlprec.registry import register


@dataclass(frozen=True)
class AutoRecConfig:
    """Sizes and regularisation of I-AutoRec."""

    n_users: int = 1  # users in the id map = length of each item vector, >= 1
    n_items: int = 1  # items in the id map, >= 1
    hidden: int = 500  # sigmoid hidden units, >= 1 (the paper uses 500)
    dropout: float = 0.1  # dropout on the input ratings during training, in [0, 1)
    l2: float = 3e-3  # weight of 1/2 (||W||^2 + ||V||^2), per batch, >= 0
    global_mean: float = 0.0  # mean training rating: the prediction for items without ratings
    rating_min: float = float("-inf")  # predictions are clipped to [rating_min, rating_max]
    rating_max: float = float("inf")  # (set from the training ratings)


@register("autorec", config=AutoRecConfig, family="recommender",
          description="item-based AutoRec: sigmoid autoencoder over item rating vectors (explicit ratings, RMSE)")
class AutoRec(nn.Module):
    """I-AutoRec; `loss` takes `ratings` and `mask` (B, n_users) float, one row per item."""

    task: ClassVar[str] = "rating"
    input_type: ClassVar[str] = "item_rows"  # trained on nlprec.data.interactions.ItemRowsData
    # Chosen on a validation split carved from the ml-100k training part: weaker L2 overfits, stronger
    # underfits (BENCHMARKS.md, "Recommenders on MovieLens 100K vs scikit-surprise and implicit").
    training_defaults: ClassVar[dict[str, Any]] = {"optimizer": "adam", "lr": 1e-3, "epochs": 150,
                                                    "batch_size": 256}

    def __init__(self, config: AutoRecConfig = AutoRecConfig()):
        super().__init__()
        self.config = config
        self.encoder = nn.Linear(config.n_users, config.hidden)  # V, mu
        self.decoder = nn.Linear(config.hidden, config.n_users)  # W, b
        self.dropout = nn.Dropout(config.dropout)
        self.register_buffer("codes", torch.zeros(config.n_items, config.hidden))  # h_i: (I, hidden)
        self.register_buffer("encoded", torch.zeros(config.n_items, dtype=torch.bool))  # h_i computed from ratings

    def encode(self, ratings: torch.Tensor) -> torch.Tensor:
        """Hidden codes of item rating vectors: (B, n_users) -> (B, hidden)."""
        return torch.sigmoid(self.encoder(self.dropout(ratings)))

    def forward(self, ratings: torch.Tensor) -> torch.Tensor:
        """Reconstructed item vectors: (B, n_users) -> (B, n_users)."""
        return self.decoder(self.encode(ratings))

    def loss(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        ratings, mask = batch["ratings"], batch["mask"]  # (B, U) each
        mse = masked_mse_loss(self(ratings), ratings, mask)
        reg = l2_penalty(self.encoder.weight, self.decoder.weight)
        return {"loss": mse + self.config.l2 * reg, "mse": mse.detach()}

    @torch.no_grad()
    def encode_items(self, items: torch.Tensor, ratings: torch.Tensor) -> None:
        """Store the codes of `items` (B,) from their training rating rows (B, n_users).

        Call it for every item with training ratings (in blocks) after training; the rest keep
        `encoded` False and are predicted as the global mean.
        """
        was_training = self.training
        self.eval()
        self.codes[items] = self.encode(ratings)
        self.encoded[items] = True
        self.train(was_training)

    def _clip(self, scores: torch.Tensor) -> torch.Tensor:
        return scores.clamp(self.config.rating_min, self.config.rating_max)

    @torch.no_grad()
    def predict(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Predicted ratings for aligned (N,) users and items, clipped: (N,)."""
        raw = (self.decoder.weight[users] * self.codes[items]).sum(-1) + self.decoder.bias[users]  # (N,)
        raw = torch.where(self.encoded[items], raw, torch.full_like(raw, self.config.global_mean))
        return self._clip(raw)

    @torch.no_grad()
    def score_all(self, users: torch.Tensor) -> torch.Tensor:
        """Unclipped predicted ratings of every item for each user: (B, n_items)."""
        user_rows, item_rows, offset = self.retrieval_vectors(users)
        return user_rows @ item_rows.T + offset[:, None]  # (B, I)

    @torch.no_grad()
    def retrieval_vectors(self, users: torch.Tensor | None = None
                          ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """User rows [W_u, b_u] (B, hidden+1), item rows [h_i, 1] (I, hidden+1), zero offsets (B,).

        Items without training ratings get the code 0, so their retrieval score is b_u (a
        neutral value); `predict` answers them with the global mean instead.
        """
        weight, bias = self.decoder.weight, self.decoder.bias  # (U, hidden), (U,)
        users = torch.arange(self.config.n_users, device=bias.device) if users is None else users
        user_rows = torch.cat([weight[users], bias[users, None]], dim=1)  # (B, hidden+1)
        codes = self.codes * self.encoded[:, None]  # (I, hidden), zero for items without ratings
        item_rows = torch.cat([codes, torch.ones(len(codes), 1, device=codes.device)], dim=1)  # (I, hidden+1)
        return user_rows, item_rows, torch.zeros(len(users), device=bias.device)

    @torch.no_grad()
    def item_embeddings(self) -> torch.Tensor:
        """Hidden codes h_i for cosine similar-item lookups: (I, hidden)."""
        return self.codes
