"""A trained recommender loaded from its model folder: score (user, item) pairs, recommend
top-k items, find similar items, evaluate under a stated protocol (`nlprec.tasks.recommend`
trains one and writes the folder).

    from nlprec.tasks.recommender import Recommender
    rec = Recommender.load("nm/")
    rec.recommend("196", k=10)          # Recommendations(user, items=[(item, score), ...], source)
    rec.score(["196"], ["242"])          # ScoreResult(scores, popularity_rows, unknown_item_rows)
    rec.similar_items("50", k=10)        # [(item, cosine), ...]
    rec.evaluate(protocol="full")        # {"protocol": "...", "metrics": {...}, ...}

Models (registered in nlprec.models, family "recommender") follow one small protocol beyond
`loss(batch)`: class attributes `task` ("rating" or "ranking"), `input_type` (which data module
trains them: "ratings", "item_rows" or "pairwise", see nlprec.data.interactions) and
`training_defaults`; methods `predict(users, items) -> (N,)`, `score_all(users) -> (B, I)`,
`item_embeddings() -> (I, d)` and, when the score is an inner product plus a per-user
constant, `retrieval_vectors(users) -> (user rows, item rows, user offsets)`.

Retrieval. MF and AutoRec scores are inner products (plus a per-user constant), so top-k
recommendation searches a FAISS `IndexFlatIP` over the item rows (nlprec.index.VectorIndex,
metric "ip") with the user's seen items excluded; it returns exactly what scoring every item
would (tests/tasks/test_recommend.py checks this). NeuMF's score goes through an MLP, so NeuMF
recommends by exact batched scoring of every item + top-k. Similar items are cosine
neighbours (L2-normalised inner product, FAISS) of `item_embeddings()`: MF item factors,
AutoRec item codes, NeuMF GMF item embeddings.

Unknown users (not in the training data) are answered by popularity (training interaction
counts) with a notice: `Recommendations.source == "popularity"`; in `score` their rows are
the item's mean training rating (rating models) or its training count (ranking models), and
flagged. Unknown items in `score` raise a one-line error by default, or score NaN and are
flagged with `unknown_items="nan"`; `unknown_items="baseline"` scores every row with a cold
user or item by the baseline (`Recommender.baseline_scores`: mu + the known side's bias, or
popularity for ranking models) and `ScoreResult.known` marks the rows the model scored.

Model folder (every file written atomically; config.json last, so a folder with config.json
is complete):

- config.json: format, model name and config, trainer config, data options (batch size,
  negatives), seed, the ratings file's path, sha256 and read options, nlprec version, the
  evaluation protocol (and its description).
- model.pt: the model's state dict of CPU tensors; nlprec.io.read_weights reads it.
- users.json, items.json: the original ids, list index = internal index.
- item_titles.json (only when trained with item metadata, `nlprec rec train --items u.item`): a
  list aligned with items.json, each item's title or null.
- split.npz: train and test rows (internal indices, ratings), and the sampled evaluation
  negatives (per test user, drawn once with the seed): `evaluate` reproduces the protocol.
- metrics.json: the test metrics under the protocol, with its description.
- metrics.jsonl, checkpoints/: the trainer's log and checkpoints (for --resume).
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Sequence

import numpy as np
import torch
from torch import nn

from nlprec.data.interactions import Interactions, ItemRowsData, SplitName, describe_split, sample_eval_negatives
from nlprec.errors import NlprecError
from nlprec.io import atomic_write, config_errors, read_json, read_weights, write_model_folder
from nlprec.metrics import full_counts, mae, ranking_metrics, rmse, sampled_counts
from nlprec.registry import get_model, typed_values

FORMAT = "nlprec-recommender-v1"
ITEM_TITLES = "item_titles.json"  # optional: each item's title or null, aligned with items.json
RankingProtocol = Literal["full", "sampled"]
UnknownItems = Literal["error", "nan", "baseline"]
# Surprise BaselineOnly defaults (ALS): regularisation of the item and user biases, and passes.
_BASELINE_REG_ITEMS, _BASELINE_REG_USERS, _BASELINE_PASSES = 10.0, 15.0, 10
# Pairs scored per predict() call: NeuMF holds about 150 MiB of activations per block (4x that at 1 << 18).
_PREDICT_BLOCK = 1 << 16


# --- the evaluation protocol --------------------------------------------------------------------


@dataclass(frozen=True)
class EvalProtocol:
    """How a model is evaluated; its `describe()` text is printed with every result."""

    split: SplitName = "random"  # random, leave_one_out, temporal or none
    test_ratio: float = 0.1  # share held out by the random and temporal splits, in (0, 1)
    seed: int = 0  # seed of the random split and of the sampled negatives
    ranking: RankingProtocol = "sampled"  # ranking models: sampled negatives or full ranking
    n_negatives: int = 99  # sampled negatives per test user, >= 1
    k: int = 10  # cut-off of HR@k and NDCG@k, >= 1

    def __post_init__(self) -> None:
        if self.split not in ("random", "leave_one_out", "temporal", "none"):
            raise NlprecError(f"split {self.split!r}: expected 'random', 'leave_one_out', 'temporal' or 'none'")
        if self.ranking not in ("full", "sampled"):
            raise NlprecError(f"ranking protocol {self.ranking!r}: expected 'full' or 'sampled'")
        if self.n_negatives < 1 or self.k < 1:
            raise NlprecError(f"eval negatives {self.n_negatives}, k {self.k}: expected >= 1 each")
        if self.split in ("random", "temporal") and not 0 < self.test_ratio < 1:
            raise NlprecError(f"test ratio {self.test_ratio}: expected a number strictly between 0 and 1")

    def describe(self, task: str, n_test: int | None = None) -> str:
        """The protocol in one line."""
        parts = [describe_split(self.split, self.test_ratio, self.seed)]
        count = f" on {n_test:,} test interactions" if n_test is not None else ""
        if task == "rating":
            parts.append(f"RMSE and MAE of predicted ratings (clipped to the training range){count}")
        elif self.ranking == "sampled":
            parts.append(f"each test item ranked against {self.n_negatives} items the user never interacted "
                         f"with, sampled once (seed {self.seed}) and saved; HR@{self.k}, NDCG@{self.k}, AUC{count}")
        else:
            parts.append(f"full ranking: each test item ranked against every item the user has not interacted "
                         f"with in training (training items masked; the user's other test items left out); "
                         f"HR@{self.k}, NDCG@{self.k}, AUC{count}")
        return "; ".join(parts)


# --- results -----------------------------------------------------------------------------------


@dataclass
class Recommendations:
    """Top-k items for one user, best first."""

    user: str  # the user's original id
    items: list[tuple[str, float]]  # (item id, score): predicted rating or ranking score; popularity counts
    source: Literal["model", "popularity"]  # popularity when the user is unknown
    notice: str | None = None  # why the popularity answer was given
    titles: list[str | None] | None = None  # each item's title, when the folder has item metadata

    def to_dict(self) -> dict[str, Any]:
        items = [{"item": item, "score": score} for item, score in self.items]
        if self.titles is not None:
            items = [{**entry, "title": title} for entry, title in zip(items, self.titles)]
        return {"user": self.user, "source": self.source, "notice": self.notice, "items": items}


@dataclass
class ScoreResult:
    """Scores of (user, item) pairs, in input order, with the rows that needed a fallback."""

    scores: np.ndarray  # (N,) float64
    popularity_rows: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # unknown users
    unknown_item_rows: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # unknown items
    known: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))  # (N,) True: user and item known (model)


# --- the trained recommender -------------------------------------------------------------------


class Recommender:
    """A trained model with its id maps, training interactions and evaluation protocol."""

    def __init__(self, name: str, model: nn.Module, train: Interactions, test: Interactions, protocol: EvalProtocol,
                 negatives: tuple[np.ndarray, np.ndarray] | None = None, info: dict[str, Any] | None = None,
                 titles: list[str | None] | None = None):
        self.name = name
        self.model = model.eval()
        self.task: str = model.task
        self.train = train
        self.test = test
        self.protocol = protocol
        self.negatives = negatives  # (users (T,), items (T, n)) sampled per test user, or None
        self.info: dict[str, Any] = dict(info or {})
        self.titles = titles  # aligned with item_ids: each item's title or None; None: no item metadata
        self.metrics: dict[str, Any] | None = None
        self._seen = None
        self._rated = None
        self._popularity: np.ndarray | None = None
        self._item_means: np.ndarray | None = None
        self._index = None
        self._cosine_index = None

    def __repr__(self) -> str:
        return f"Recommender({self.name}, {self.train.n_users:,} users, {self.train.n_items:,} items)"

    @property
    def user_ids(self) -> list[str]:
        return self.train.user_ids

    @property
    def item_ids(self) -> list[str]:
        return self.train.item_ids

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    # ----- lookups ------------------------------------------------------------------------
    def seen(self) -> Any:
        """(n_users, n_items) CSR of every interaction in the file (train and test)."""
        if self._seen is None:
            self._seen = self.train.concat(self.test).matrix().tocsr() if len(self.test) else self.train.matrix()
        return self._seen

    def item_titles(self, items: Sequence[str]) -> list[str | None] | None:
        """The titles of `items` (None for an item without one), or None when the folder has none."""
        if self.titles is None:
            return None
        rows = [self.train.item_index(item) for item in items]
        return [None if row is None else self.titles[row] for row in rows]

    def history(self, user: str) -> list[tuple[str, float | None]]:
        """The items `user` interacted with in the ratings file (training and test parts), with
        the rating (None for ranking models), highest rating first, then in item order; [] for
        an unknown user."""
        row = self.train.user_index(user)
        if row is None:
            return []
        if self._rated is None:  # (n_users, n_items) CSR of the ratings; ranking models: seen()
            both = self.train.concat(self.test) if len(self.test) else self.train
            self._rated = both.matrix("ratings").tocsr() if self.task == "rating" else self.seen()
        start, end = self._rated.indptr[row], self._rated.indptr[row + 1]
        items, values = self._rated.indices[start:end], self._rated.data[start:end]  # (n,), (n,)
        order = np.lexsort((items, -values))  # highest rating first, then item order
        ratings = values[order].tolist() if self.task == "rating" else [None] * len(order)
        return [(self.item_ids[item], rating) for item, rating in zip(items[order].tolist(), ratings)]

    def popularity(self) -> np.ndarray:
        """(n_items,) training interactions per item."""
        if self._popularity is None:
            self._popularity = self.train.item_counts()
        return self._popularity

    def item_means(self) -> np.ndarray:
        """(n_items,) mean training rating per item (the global mean for items without ratings)."""
        if self._item_means is None:
            counts = self.popularity()
            ratings = self.train.ratings if self.train.ratings is not None else np.ones(len(self.train), np.float32)
            sums = np.bincount(self.train.items, weights=ratings, minlength=self.train.n_items)
            overall = float(ratings.mean()) if len(ratings) else 0.0
            self._item_means = np.where(counts > 0, sums / np.maximum(counts, 1), overall)
        return self._item_means

    # ----- scoring ------------------------------------------------------------------------
    def predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Model scores of aligned internal indices (N,), in blocks: (N,) float64."""
        return _predict(self.model, users, items, self.device)

    def score(self, users: Sequence[str], items: Sequence[str], unknown_items: UnknownItems = "error",
              lines: Sequence[int] | None = None, source: str = "") -> ScoreResult:
        """Scores of (user, item) id pairs: predicted ratings (rating models) or ranking scores.

        Unknown users get the popularity answer (the item's mean training rating, or its
        training count for ranking models) and are listed in `popularity_rows`. Unknown items
        raise a one-line error naming `source` and the line (from `lines`); with
        `unknown_items="nan"` they score NaN; with "baseline" every row with an unknown user or
        item gets the baseline (`baseline_scores`). Both are listed in `unknown_item_rows`;
        `known` marks the rows the model itself scored.
        """
        if len(users) != len(items):
            raise NlprecError(f"{len(users)} users but {len(items)} items: expected one item per user")
        if unknown_items not in ("error", "nan", "baseline"):
            raise NlprecError(f"unknown_items {unknown_items!r}: expected 'error', 'nan' or 'baseline'")
        user_index = np.array([_or(self.train.user_index(u)) for u in users], dtype=np.int64)  # -1: unknown
        item_index = np.array([_or(self.train.item_index(i)) for i in items], dtype=np.int64)
        unknown_item = np.flatnonzero(item_index < 0)
        if len(unknown_item) and unknown_items == "error":
            row = int(unknown_item[0])
            where = f"{source} line {lines[row]}: " if lines is not None else ""
            raise NlprecError(f"{where}unknown item {items[row]!r} (the model knows {self.train.n_items:,} items); "
                              f"use --unknown-items baseline or nan to score it instead")
        scores = np.full(len(users), np.nan)
        known = (user_index >= 0) & (item_index >= 0)
        scores[known] = self.predict(user_index[known], item_index[known])
        if unknown_items == "baseline":
            scores[~known] = self.baseline_scores(user_index[~known], item_index[~known])
        else:
            fallback = np.flatnonzero((user_index < 0) & (item_index >= 0))
            table = self.item_means() if self.task == "rating" else self.popularity().astype(np.float64)
            scores[fallback] = table[item_index[fallback]]
        return ScoreResult(scores, np.flatnonzero(user_index < 0), unknown_item, known)

    def baseline_scores(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Cold-start scores of internal indices (-1: unknown), (N,) float64.

        Rating models: mu + b_u + b_i, an unknown side's bias taken as 0 (Surprise's rule): the
        model's own biases when it has them (MF), else Surprise BaselineOnly estimates from the
        training ratings. Ranking models: the item's training interaction count (0 when unknown).
        """
        if self.task != "rating":
            counts = self.popularity().astype(np.float64)
            return np.where(items >= 0, counts[np.maximum(items, 0)], 0.0)
        mu, user_bias, item_bias = self.biases()
        return (mu + np.where(users >= 0, user_bias[np.maximum(users, 0)], 0.0)
                + np.where(items >= 0, item_bias[np.maximum(items, 0)], 0.0))

    def biases(self) -> tuple[float, np.ndarray, np.ndarray]:
        """(mu, b_u (U,), b_i (I,)) of a rating model: its own (`model.biases()`) or estimated."""
        if hasattr(self.model, "biases"):
            mu, user_bias, item_bias = self.model.biases()
            return float(mu), user_bias.double().cpu().numpy(), item_bias.double().cpu().numpy()
        return baseline_biases(self.train)

    # ----- retrieval ----------------------------------------------------------------------
    def _ip_index(self) -> Any:
        from nlprec.index import VectorIndex
        from nlprec.vectors import Vectors

        if self._index is None:
            _, item_rows, _ = self.model.retrieval_vectors(torch.zeros(0, dtype=torch.long, device=self.device))
            keys = [str(i) for i in range(self.train.n_items)]  # internal indices: ids may hold spaces
            self._index = VectorIndex(Vectors(keys, item_rows.float().cpu().numpy()), kind="flat", metric="ip")
        return self._index

    def recommend(self, user: str, k: int = 10, exclude_seen: bool = True) -> Recommendations:
        """The `k` best items for `user` with their scores, best first, seen items excluded.

        Rating models score by predicted rating (unclipped, so the order is kept), ranking
        models by ranking score. MF and AutoRec search a FAISS inner-product index; NeuMF scores
        every item exactly. Unknown users get the `k` most popular items (by training count).
        """
        return self.recommend_many([user], k, exclude_seen)[0]

    def recommend_many(self, users: Sequence[str], k: int = 10, exclude_seen: bool = True) -> list[Recommendations]:
        """`recommend` for many users at once, in input order: the known users' rows go through
        one FAISS search (MF, AutoRec) or one (B, I) scoring call (NeuMF)."""
        if k < 1:
            raise NlprecError(f"k={k}: expected at least 1")
        index = [self.train.user_index(user) for user in users]
        known = [i for i, row in enumerate(index) if row is not None]
        rows = [index[i] for i in known]
        answers: list[Recommendations | None] = [None] * len(users)
        for position, (scores, ids) in zip(known, self._top_items(rows, k, exclude_seen)):
            keep = (ids >= 0) & np.isfinite(scores)
            answers[position] = Recommendations(
                str(users[position]), [(self.item_ids[i], float(s)) for i, s in zip(ids[keep], scores[keep])], "model",
                titles=self._titles_of(ids[keep]))
        top = np.argsort(-self.popularity(), kind="stable")[:k]
        for position in (i for i, row in enumerate(index) if row is None):
            notice = (f"user {users[position]!r} is not in the training data; answering with the {len(top)} most "
                      f"popular items (training interaction counts)")
            answers[position] = Recommendations(
                str(users[position]), [(self.item_ids[i], float(self.popularity()[i])) for i in top], "popularity",
                notice, self._titles_of(top))
        return answers  # type: ignore[return-value]

    def _titles_of(self, rows: np.ndarray) -> list[str | None] | None:
        return None if self.titles is None else [self.titles[int(row)] for row in rows]

    def _top_items(self, rows: list[int], k: int, exclude_seen: bool) -> list[tuple[np.ndarray, np.ndarray]]:
        """(scores, item ids) of the best `k` items of each internal user row, best first."""
        if not rows:
            return []
        seen = [self.seen()[row].indices if exclude_seen else np.zeros(0, np.int64) for row in rows]
        users = torch.tensor(rows, device=self.device)  # (B,)
        if hasattr(self.model, "retrieval_vectors"):
            with torch.no_grad():
                user_rows, _, offset = self.model.retrieval_vectors(users)  # (B, d), (B,)
            scores, ids = self._ip_index().search(user_rows.float().cpu().numpy(), k, [s.tolist() for s in seen])
            offsets = offset.double().cpu().numpy() if torch.is_tensor(offset) else np.asarray(offset, np.float64)
            return [(scores[b] + float(offsets[b]), ids[b]) for b in range(len(rows))]
        with torch.no_grad():
            table = self.model.score_all(users).double().cpu().numpy()  # (B, I)
        out = []
        for row, excluded in zip(table, seen):
            row[excluded] = -np.inf
            ids = np.argsort(-row, kind="stable")[:k]
            out.append((row[ids], ids))
        return out

    def similar_items(self, item: str, k: int = 10) -> list[tuple[str, float]]:
        """The `k` items whose embeddings are closest to `item`'s by cosine (FAISS), itself excluded."""
        from nlprec.index import VectorIndex
        from nlprec.vectors import Vectors

        index = self.train.item_index(item)
        if index is None:
            raise NlprecError(f"unknown item {item!r} (the model knows {self.train.n_items:,} items)")
        if k < 1:
            raise NlprecError(f"k={k}: expected at least 1")
        if self._cosine_index is None:
            with torch.no_grad():
                vectors = self.model.item_embeddings().float().cpu().numpy()
            keys = [str(i) for i in range(self.train.n_items)]
            self._cosine_index = (VectorIndex(Vectors(keys, vectors), kind="flat", metric="cosine"), vectors)
        faiss_index, vectors = self._cosine_index
        scores, ids = faiss_index.search(vectors[index:index + 1], k, [[index]])
        return [(self.item_ids[i], float(s)) for s, i in zip(scores[0], ids[0]) if i >= 0]

    # ----- evaluation ---------------------------------------------------------------------
    def evaluate(self, protocol: RankingProtocol | None = None, k: int | None = None,
                 ks: Sequence[int] | None = None) -> dict[str, Any]:
        """Metrics on the saved test split, with the protocol text.

        Args:
            protocol: ranking models: "sampled" (the saved negatives) or "full" (all items the
                user has not interacted with in training); default: the one chosen at training.
            k: cut-off of HR@k and NDCG@k; default: the one chosen at training.
            ks: ranking models: every cut-off to report (e.g. range(1, 51) for a curve), from the
                same scores; default: just k.
        """
        chosen = dataclasses.replace(self.protocol, **{key: value for key, value in
                                                       (("ranking", protocol), ("k", k)) if value is not None})
        if chosen.k < 1:
            raise NlprecError(f"k={chosen.k}: expected at least 1")
        if len(self.test) == 0:
            raise NlprecError("this model was trained without a test split (--split none): nothing to evaluate")
        started = time.perf_counter()
        if ks is not None and (not ks or min(ks) < 1):
            raise NlprecError(f"ks={list(ks)}: expected cut-offs of at least 1")
        metrics = evaluate_model(self.model, self.train, self.test, chosen, self.negatives, self.device, ks)
        return {"model": self.name, "task": self.task, "protocol": chosen.describe(self.task, len(self.test)),
                "protocol_options": dataclasses.asdict(chosen), "metrics": metrics,
                "seconds": round(time.perf_counter() - started, 3)}

    # ----- persistence --------------------------------------------------------------------
    def save(self, directory: str | os.PathLike) -> Path:
        """Write the model folder (see the module docstring); config.json last."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        for name, ids in (("users.json", self.user_ids), ("items.json", self.item_ids)):
            with atomic_write(directory / name, "w", encoding="utf-8") as handle:
                json.dump(ids, handle, ensure_ascii=False)
        arrays = {"train_users": self.train.users, "train_items": self.train.items,
                  "test_users": self.test.users, "test_items": self.test.items}
        for part, data in (("train", self.train), ("test", self.test)):
            if data.ratings is not None:
                arrays[f"{part}_ratings"] = data.ratings
        if self.negatives is not None:
            arrays["negative_users"], arrays["negatives"] = self.negatives
        with atomic_write(directory / "split.npz") as handle:  # stored, not deflated: 14 s -> under 1 s at 10M rows
            np.savez(handle, **{key: _narrow(np.asarray(value)) for key, value in arrays.items()})
        if self.titles is not None:
            with atomic_write(directory / ITEM_TITLES, "w", encoding="utf-8") as handle:
                json.dump(self.titles, handle, ensure_ascii=False)
        config = {"format": FORMAT, "model": self.name, "task": self.task,
                  "model_config": dataclasses.asdict(self.model.config),
                  "protocol": {**dataclasses.asdict(self.protocol),
                               "description": self.protocol.describe(self.task, len(self.test))},
                  **{key: value for key, value in self.info.items() if key not in ("format", "model", "task")}}
        write_model_folder(directory, config, self.model, self.metrics)
        return directory

    @classmethod
    def load(cls, directory: str | os.PathLike, device: str = "cpu") -> Recommender:
        """Read a model folder written by `train` / `Recommender.save`.

        Every file is checked before use (JSON types, id lists, index ranges, the weights' CRC and
        shapes), so a damaged folder is one `NlprecError` line naming the file, never a model that
        fails later; nothing in the folder can run code (JSON, `weights_only` torch, no-pickle npz).
        """
        directory = Path(directory)
        if not (directory / "config.json").is_file():
            raise NlprecError(f"{directory}: not a trained recommender folder (no config.json)")
        config = read_json(directory / "config.json", dict)
        if config.get("format") != FORMAT:
            raise NlprecError(f"{directory}/config.json: format {config.get('format')!r}, expected {FORMAT!r}")
        with config_errors(directory / "config.json", "recommender"):
            entry = get_model(config["model"])
            model_config = entry.config_cls(**typed_values(entry.config_cls, config["model_config"]))
            protocol = EvalProtocol(**{k: v for k, v in config["protocol"].items() if k != "description"})
            model = entry.model_cls(model_config)
        user_ids, item_ids = _read_ids(directory / "users.json"), _read_ids(directory / "items.json")
        sizes = (getattr(model_config, "n_users", len(user_ids)), getattr(model_config, "n_items", len(item_ids)))
        if sizes != (len(user_ids), len(item_ids)):
            raise NlprecError(f"{directory}: users.json/items.json hold {len(user_ids):,}/{len(item_ids):,} ids but the "
                              f"model was built for {sizes[0]:,}/{sizes[1]:,}: the folder is damaged")
        read_weights(model, directory / "model.pt", f"{config['model']} weights file")
        model.to(device)
        parts = _read_split(directory / "split.npz", len(user_ids), len(item_ids))
        source = str(config.get("data", {}).get("path", directory)) if isinstance(config.get("data"), dict) \
            else str(directory)
        train_part = Interactions(parts["train_users"], parts["train_items"], user_ids, item_ids,
                                  parts.get("train_ratings"), None, source)
        test_part = Interactions(parts["test_users"], parts["test_items"], user_ids, item_ids,
                                 parts.get("test_ratings"), None, source)
        negatives = (parts["negative_users"], parts["negatives"]) if "negatives" in parts else None
        info = {key: value for key, value in config.items() if key not in ("model_config", "protocol")}
        titles = _read_titles(directory / ITEM_TITLES, len(item_ids)) if (directory / ITEM_TITLES).is_file() else None
        recommender = cls(config["model"], model, train_part, test_part, protocol, negatives, info, titles)
        if (directory / "metrics.json").is_file():
            recommender.metrics = read_json(directory / "metrics.json", dict)
        return recommender


def _read_titles(path: Path, n_items: int) -> list[str | None]:
    titles = read_json(path, list)
    if len(titles) != n_items or not all(title is None or isinstance(title, str) for title in titles):
        raise NlprecError(f"{path}: expected a list of {n_items:,} titles (strings or null), one per item in items.json")
    return titles


def _read_ids(path: Path) -> list[str]:
    ids = read_json(path, list)
    if not all(isinstance(one, str) for one in ids) or len(set(ids)) != len(ids):
        raise NlprecError(f"{path}: expected a list of distinct string ids")
    return ids


def _narrow(array: np.ndarray) -> np.ndarray:
    """Row indices as int32 where they fit (half the bytes on disk); _read_split widens them back."""
    if array.dtype == np.int64 and (array.size == 0 or (array.min() >= -2**31 and array.max() < 2**31)):
        return array.astype(np.int32)
    return array


def _read_split(path: Path, n_users: int, n_items: int) -> dict[str, np.ndarray]:
    """split.npz's arrays, checked: aligned lengths, indices within the id lists, finite ratings."""
    from nlprec.io import ARCHIVE_ERRORS, check_npz_sizes

    if not path.is_file():
        raise NlprecError(f"{path}: missing from the model folder")
    check_npz_sizes(path, "split file")
    try:
        with np.load(path, allow_pickle=False) as arrays:
            parts = {key: arrays[key] for key in arrays.files}
        parts = {key: value.astype(np.int64) if value.dtype.kind in "iu" else value for key, value in parts.items()}
    except ARCHIVE_ERRORS as err:
        raise NlprecError(f"{path}: not a readable split file ({' '.join(str(err).split())[:120]})") from None
    for part in ("train", "test"):
        users, items = parts.get(f"{part}_users"), parts.get(f"{part}_items")
        ratings = parts.get(f"{part}_ratings")
        ok = (users is not None and items is not None and users.ndim == items.ndim == 1
              and len(users) == len(items) and users.dtype.kind in "iu" and items.dtype.kind in "iu"
              and (len(users) == 0 or (users.min() >= 0 and users.max() < n_users and items.min() >= 0
                                       and items.max() < n_items))
              and (ratings is None or (ratings.shape == users.shape and ratings.dtype.kind == "f"
                                       and bool(np.isfinite(ratings).all()))))
        if not ok:
            raise NlprecError(f"{path}: the {part} rows are missing or inconsistent with users.json/items.json")
    if ("negatives" in parts) != ("negative_users" in parts):
        raise NlprecError(f"{path}: negatives without their users (or the reverse)")
    if "negatives" in parts:
        users, negatives = parts["negative_users"], parts["negatives"]
        ok = (users.ndim == 1 and negatives.ndim == 2 and len(users) == len(negatives)
              and users.dtype.kind in "iu" and negatives.dtype.kind in "iu"
              and (negatives.size == 0 or (negatives.min() >= 0 and negatives.max() < n_items)))
        if not ok:
            raise NlprecError(f"{path}: the sampled negatives are inconsistent with items.json")
    return parts


# --- evaluation --------------------------------------------------------------------------------


def evaluate_model(model: nn.Module, train: Interactions, test: Interactions, protocol: EvalProtocol,
                   negatives: tuple[np.ndarray, np.ndarray] | None = None,
                   device: torch.device | str = "cpu", ks: Sequence[int] | None = None) -> dict[str, float]:
    """RMSE/MAE (rating models) or HR@k, NDCG@k, AUC (ranking models) of `test` rows.

    Sampled ranking needs `negatives` = (test users (T,), items (T, n)); each test row is
    ranked against its user's row. `ks`: the cut-offs reported (default: protocol.k alone).
    """
    cutoffs = tuple(ks) if ks is not None else (protocol.k,)
    was_training = model.training
    model.eval()
    try:
        if model.task == "rating":
            predictions = _predict(model, test.users, test.items, device)
            return {"rmse": rmse(predictions, test.ratings), "mae": mae(predictions, test.ratings), "n": len(test)}
        if protocol.ranking == "full":
            counts = full_counts(model.score_all, test.users, test.items, train.matrix(), test.matrix(), device)
            return ranking_metrics(*counts, ks=cutoffs)
        if negatives is None:
            raise NlprecError("this model was trained with the full-ranking protocol and has no sampled "
                              "negatives; evaluate with --protocol full")
        neg_users, neg_items = negatives
        rows = np.searchsorted(neg_users, test.users)
        if np.any(rows >= len(neg_users)) or np.any(neg_users[np.minimum(rows, len(neg_users) - 1)] != test.users):
            raise NlprecError("the saved negatives do not cover every test user; evaluate with --protocol full")
        n = neg_items.shape[1]
        positive = _predict(model, test.users, test.items, device)  # (T,)
        negative = _predict(model, np.repeat(test.users, n), neg_items[rows].reshape(-1), device).reshape(-1, n)
        return ranking_metrics(*sampled_counts(positive, negative), ks=cutoffs)
    finally:
        model.train(was_training)


def baseline_biases(train: Interactions) -> tuple[float, np.ndarray, np.ndarray]:
    """Surprise's BaselineOnly estimates by alternating least squares: (mu, b_u (U,), b_i (I,)).

    b_i = sum(r - mu - b_u) / (reg_i + n_i) and b_u = sum(r - mu - b_i) / (reg_u + n_u), each
    pass over all ratings at once (bincount), with Surprise's defaults reg_i 10, reg_u 15 and
    10 passes; users and items without training ratings keep a bias of 0.
    """
    ratings = train.ratings.astype(np.float64)
    mu = float(ratings.mean())
    user_bias, item_bias = np.zeros(train.n_users), np.zeros(train.n_items)
    user_counts = np.bincount(train.users, minlength=train.n_users)
    item_counts = np.bincount(train.items, minlength=train.n_items)
    for _ in range(_BASELINE_PASSES):
        residual = ratings - mu - user_bias[train.users]  # (N,)
        item_bias = np.bincount(train.items, residual, train.n_items) / (_BASELINE_REG_ITEMS + item_counts)
        residual = ratings - mu - item_bias[train.items]
        user_bias = np.bincount(train.users, residual, train.n_users) / (_BASELINE_REG_USERS + user_counts)
    return mu, user_bias, item_bias


def _predict(model: nn.Module, users: np.ndarray, items: np.ndarray, device: torch.device | str) -> np.ndarray:
    out = np.empty(len(users), dtype=np.float64)
    with torch.no_grad():
        for start in range(0, len(users), _PREDICT_BLOCK):
            u = torch.as_tensor(users[start:start + _PREDICT_BLOCK], device=device)
            i = torch.as_tensor(items[start:start + _PREDICT_BLOCK], device=device)
            out[start:start + _PREDICT_BLOCK] = model.predict(u, i).double().cpu().numpy()
    return out


def draw_negatives(all_data: Interactions, test: Interactions, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """For each test user, `n` distinct items never interacted with in `all_data`, drawn once with `seed`."""
    users = np.unique(test.users)
    return users, sample_eval_negatives(users, all_data.matrix().tocsr(), n, seed)


def refresh(model: nn.Module, train: Interactions, device: torch.device | str = "cpu") -> None:
    """Bring inference-time state up to date (AutoRec: the item codes from the training ratings)."""
    if not hasattr(model, "encode_items"):
        return
    rows = ItemRowsData(train, batch_size=1)
    for start in range(0, len(rows.rated), 1024):
        batch = rows.rows(rows.rated[start:start + 1024])
        model.encode_items(batch["items"].to(device), batch["ratings"].to(device))


def _or(index: int | None) -> int:
    return -1 if index is None else index


__all__ = ["EvalProtocol", "Recommendations", "Recommender", "ScoreResult", "evaluate_model", "baseline_biases",
           "draw_negatives", "refresh", "FORMAT"]
