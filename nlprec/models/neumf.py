"""NeuMF: neural matrix factorization for implicit feedback (top-k ranking).

He, Liao, Zhang, Nie, Hu & Chua 2017, "Neural Collaborative Filtering" (WWW'17), section 3.4.
Two towers with their own embeddings are fused by a final linear layer:

    GMF:   g = p^G_u * q^G_i                                  (factors,)
    MLP:   m = MLP([p^M_u ; q^M_i])  (ReLU layers, sizes mlp_layers[1:])
    score: y(u, i) = h . [g ; m] + c

The paper trains with log loss on sampled negatives; here every interaction is a positive and
training is pairwise (as the issue asks): BPR, -log sigmoid(y(u, i+) - y(u, i-)) (Rendle et al.
2009), or the hinge max(0, margin - y(u, i+) + y(u, i-)), with a fresh unseen i- per positive
copy each epoch (nlprec.data.interactions.PairwiseData), plus `l2` on the embeddings of the
batch.

The embedding tables take sparse row gradients and train with the trainer's "sparse_adam": a
lazy Adam (nlprec.train.optimizers.RowAdam) moves only the batch's rows, AdamW trains the MLP and
output layer, so an epoch costs the interactions, not users x steps. The tables get no weight
decay (lazy Adam has none): `l2` on the batch's rows in the loss regularises them.

The score is not an inner product, so top-k recommendation scores every item exactly in
batches (`score_all`) instead of a FAISS search. `score_all` splits the first MLP layer,
W [p; q] = W_u p + W_i q, so user and item halves are projected once and only the sums are
broadcast over (users x items). Similar items use the GMF item embeddings q^G_i (cosine).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
from torch import nn

from nlprec.errors import NlprecError
from nlprec.nn.losses import bpr_loss, hinge_loss, l2_penalty
from nlprec.registry import register

# Pairs scored at once by score_all: users per block = this / n_items (memory ~ pairs x layer width).
_PAIRS_PER_BLOCK = 1 << 18


@dataclass(frozen=True)
class NeuMFConfig:
    """Tower sizes, loss and regularisation of NeuMF."""

    n_users: int = 1  # users in the id map, >= 1
    n_items: int = 1  # items in the id map, >= 1
    factors: int = 128  # GMF embedding size, >= 1
    mlp_layers: tuple[int, ...] = (64, 32, 16)  # MLP input (user + item embedding, even) then hidden sizes
    dropout: float = 0.2  # dropout after each hidden MLP layer, in [0, 1)
    loss: Literal["bpr", "hinge"] = "bpr"  # pairwise loss on (positive, sampled negative)
    margin: float = 1.0  # hinge margin, > 0 (unused by bpr)
    l2: float = 2e-2  # L2 weight on the batch's embeddings (per example), >= 0; their only regularisation
    init_std: float = 0.01  # std of the normal initialisation of the embeddings, > 0
    towers: Literal["both", "gmf", "mlp"] = "both"  # NeuMF, or one tower alone (GMF or MLP, for pretraining)
    pretrain: bool = False  # train GMF and MLP alone first and start NeuMF from them (He et al. 3.4.1)
    sparse: bool = True  # embeddings take sparse row gradients (optimizer sparse_adam); False: dense, any optimizer

    def __post_init__(self) -> None:
        if len(self.mlp_layers) < 2 or self.mlp_layers[0] % 2:
            raise NlprecError(f"mlp_layers {self.mlp_layers}: expected an even input size and at least one "
                              "hidden layer, e.g. (64, 32, 16)")
        if self.loss not in ("bpr", "hinge"):
            raise NlprecError(f"loss {self.loss!r}: expected 'bpr' or 'hinge'")
        if self.margin <= 0:
            raise NlprecError(f"margin {self.margin}: expected > 0")
        if self.towers not in ("both", "gmf", "mlp"):
            raise NlprecError(f"towers {self.towers!r}: expected 'both', 'gmf' or 'mlp'")
        if self.pretrain and self.towers != "both":
            raise NlprecError("pretrain builds NeuMF from its GMF and MLP towers: it needs towers='both'")

    @property
    def uses_gmf(self) -> bool:
        return self.towers in ("both", "gmf")

    @property
    def uses_mlp(self) -> bool:
        return self.towers in ("both", "mlp")

    def output_width(self) -> int:
        """Size of [g ; m] (or of the one tower used) fed to the final layer."""
        return self.factors * self.uses_gmf + self.mlp_layers[-1] * self.uses_mlp


@register("neumf", config=NeuMFConfig, family="recommender",
          description="NeuMF: GMF + MLP towers, BPR or hinge loss (implicit feedback, ranking)")
class NeuMF(nn.Module):
    """NeuMF; `loss` takes `users`, `pos_items`, `neg_items` (B,) int64."""

    task: ClassVar[str] = "ranking"  # ranks items; evaluated by HR@k, NDCG@k, AUC
    input_type: ClassVar[str] = "pairwise"  # trained on nlprec.data.interactions.PairwiseData
    # Chosen on a leave-one-out validation split carved from the ml-100k training part: 8 fresh
    # negatives per positive per epoch, a short cosine-decayed run and decoupled weight decay (on
    # the MLP and output layer). Each user's 5 latest interactions count 4 times (3 extra copies):
    # what leave-one-out asks for is the next item, and the recent ones say most about it. With
    # sparse tables (no weight decay on them) `l2` went from 1e-2 to 2e-2: test HR@10 / NDCG@10
    # over seeds 0-1 0.685 / 0.406 (1e-2: 0.678 / 0.407; 5e-2: 0.630 / 0.360; dense tables with
    # AdamW decay, seeds 0-2: 0.676 / 0.406). BENCHMARKS.md, "Recommenders on MovieLens 100K".
    training_defaults: ClassVar[dict[str, Any]] = {"optimizer": "sparse_adam", "lr": 2e-3, "weight_decay": 0.1,
                                                    "epochs": 8, "schedule": "cosine", "batch_size": 1024,
                                                    "n_negatives": 8, "recent": 5, "recent_copies": 3}

    def __init__(self, config: NeuMFConfig = NeuMFConfig()):
        super().__init__()
        self.config = config
        half = config.mlp_layers[0] // 2
        if config.uses_gmf:
            self.user_gmf = nn.Embedding(config.n_users, config.factors, sparse=config.sparse)  # p^G: (U, factors)
            self.item_gmf = nn.Embedding(config.n_items, config.factors, sparse=config.sparse)  # q^G: (I, factors)
        if config.uses_mlp:
            self.user_mlp = nn.Embedding(config.n_users, half, sparse=config.sparse)  # p^M: (U, half)
            self.item_mlp = nn.Embedding(config.n_items, half, sparse=config.sparse)  # q^M: (I, half)
            layers: list[nn.Module] = []
            for size_in, size_out in zip(config.mlp_layers[:-1], config.mlp_layers[1:]):
                layers += [nn.Linear(size_in, size_out), nn.ReLU(), nn.Dropout(config.dropout)]
            self.mlp = nn.Sequential(*layers)
            for module in self.mlp:
                if isinstance(module, nn.Linear):
                    nn.init.xavier_uniform_(module.weight)
                    nn.init.zeros_(module.bias)
        for embedding in self._embeddings():
            nn.init.normal_(embedding.weight, std=config.init_std)
        self.output = nn.Linear(config.output_width(), 1)  # h, c
        nn.init.kaiming_uniform_(self.output.weight, a=1, nonlinearity="sigmoid")
        nn.init.zeros_(self.output.bias)

    @classmethod
    def from_towers(cls, config: NeuMFConfig, gmf: "NeuMF", mlp: "NeuMF", weight: float = 0.5) -> "NeuMF":
        """NeuMF started from a trained GMF and a trained MLP (He et al. 2017, 3.4.1).

        Embeddings and MLP layers are copied; the final layer is h = [weight h_GMF ; (1 - weight) h_MLP]
        and c the same mix of the two biases, so the fused model starts as a blend of the two.
        """
        model = cls(config)
        with torch.no_grad():
            for name in ("user_gmf", "item_gmf"):
                getattr(model, name).weight.copy_(getattr(gmf, name).weight)
            for name in ("user_mlp", "item_mlp", "mlp"):
                getattr(model, name).load_state_dict(getattr(mlp, name).state_dict())
            model.output.weight.copy_(torch.cat([weight * gmf.output.weight, (1 - weight) * mlp.output.weight], 1))
            model.output.bias.copy_(weight * gmf.output.bias + (1 - weight) * mlp.output.bias)
        return model

    def _embeddings(self) -> list[nn.Embedding]:
        names = ("user_gmf", "item_gmf") * self.config.uses_gmf + ("user_mlp", "item_mlp") * self.config.uses_mlp
        return [getattr(self, name) for name in names]

    def _lookup(self, users: torch.Tensor, items: torch.Tensor) -> tuple[tuple, tuple]:
        """The user and item embeddings of the towers in use: ((B, factors)?, (B, half)?) each."""
        user = tuple(table(users) for table in self._embeddings()[0::2])
        item = tuple(table(items) for table in self._embeddings()[1::2])
        return user, item

    def forward(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Scores of aligned (N,) user and item indices: (N,)."""
        return self._score(*self._lookup(users, items))

    def _score(self, user: tuple, item: tuple) -> torch.Tensor:
        """Scores from looked-up embeddings (`_lookup`'s tuples, GMF first): (N,)."""
        parts = []
        if self.config.uses_gmf:
            parts.append(user[0] * item[0])  # (N, factors)
        if self.config.uses_mlp:
            parts.append(self.mlp(torch.cat([user[-1], item[-1]], dim=-1)))  # (N, mlp_layers[-1])
        return self.output(torch.cat(parts, dim=-1)).squeeze(-1)  # (N,)

    def loss(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        users, positives, negatives = batch["users"], batch["pos_items"], batch["neg_items"]  # (B,) each
        # Each embedding is looked up once and shared by both scores and the L2 term.
        user, pos_item = self._lookup(users, positives)
        neg_item = tuple(table(negatives) for table in self._embeddings()[1::2])
        pos, neg = self._score(user, pos_item), self._score(user, neg_item)  # (B,) each
        if self.config.loss == "bpr":
            rank = bpr_loss(pos, neg)
        else:
            rank = hinge_loss(pos, neg, self.config.margin)
        reg = l2_penalty(*user, *pos_item, *neg_item) / len(users)
        return {"loss": rank + self.config.l2 * reg, self.config.loss: rank.detach()}

    @torch.no_grad()
    def predict(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Ranking scores (higher ranks first) for aligned (N,) users and items: (N,)."""
        return self(users, items)

    @torch.no_grad()
    def score_all(self, users: torch.Tensor) -> torch.Tensor:
        """Scores of every item for each user: (B, n_items), exact, in blocks of users."""
        config = self.config
        width_gmf = config.factors if config.uses_gmf else 0
        h_gmf, h_mlp = self.output.weight[0, :width_gmf], self.output.weight[0, width_gmf:]
        if config.uses_mlp:
            first = self.mlp[0]  # Linear(mlp_layers[0], mlp_layers[1])
            half = config.mlp_layers[0] // 2
            w_user, w_item = first.weight[:, :half], first.weight[:, half:]  # (H1, half) each
            item_part = self.item_mlp.weight @ w_item.T  # (I, H1)
        if config.uses_gmf:
            gmf_items = self.item_gmf.weight * h_gmf  # (I, factors), h folded in
        step = max(1, _PAIRS_PER_BLOCK // max(1, config.n_items))
        blocks = []
        for start in range(0, len(users), step):
            block = users[start:start + step]  # (b,)
            scores = self.output.bias.expand(len(block), config.n_items)  # (b, I)
            if config.uses_gmf:
                scores = scores + self.user_gmf(block) @ gmf_items.T  # (b, I)
            if config.uses_mlp:
                user_part = self.user_mlp(block) @ w_user.T + first.bias  # (b, H1)
                hidden = torch.relu(user_part[:, None, :] + item_part[None, :, :])  # (b, I, H1)
                hidden = self.mlp[3:](hidden) if len(self.mlp) > 3 else hidden  # (b, I, mlp_layers[-1])
                scores = scores + hidden @ h_mlp  # (b, I)
            blocks.append(scores)
        return torch.cat(blocks) if blocks else torch.zeros(0, config.n_items, device=users.device)

    @torch.no_grad()
    def item_embeddings(self) -> torch.Tensor:
        """Item embeddings for cosine similar-item lookups, GMF's q^G_i when present: (I, factors)."""
        return self._embeddings()[1].weight
