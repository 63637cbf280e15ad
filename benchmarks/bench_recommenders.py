"""Recommenders on MovieLens 100K, side by side with scikit-surprise SVD and implicit's BPR.

    python benchmarks/bench_recommenders.py --corpora ../shared/corpora \
        --out benchmarks/results/recommenders.json

Explicit ratings (random 90/10 split, seed 0): Surprise SVD (its defaults), nlprec MF and
AutoRec (their defaults), RMSE and MAE of the test ratings.
Ranking (leave-one-out by latest timestamp, every rating an interaction): popularity,
implicit BPR (its defaults), nlprec NeuMF with BPR and with hinge loss (defaults), each test
item ranked against 99 sampled negatives (drawn once, seed 0, the same for every model) and
against every item the user has not interacted with in training (full ranking).
Every model sees the same split; fit time is the training alone (no data reading, no
evaluation). The peers are optional: missing ones are reported as skipped.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from nlprec import __version__
from nlprec.tasks import recommend
from nlprec.tasks.recommender import draw_negatives
from nlprec.data.interactions import read_interactions, split_leave_one_out, split_random
from nlprec.io import atomic_write
from nlprec.metrics import full_counts, mae, ranking_metrics, rmse, sampled_counts

K = 10


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpora", type=Path, required=True, help="folder holding ml-100k/u.data")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/recommenders.json"))
    parser.add_argument("--threads", type=int, default=1, help="CPU threads for torch and implicit (default 1)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    ratings = args.corpora / "ml-100k" / "u.data"
    if not ratings.is_file():
        parser.error(f"{ratings}: not found")
    torch.set_num_threads(args.threads)

    data = read_interactions(ratings)
    explicit = run_explicit(ratings, data, args)
    ranking = run_ranking(ratings, data, args)
    report = {"dataset": "MovieLens 100K (ml-100k/u.data)", "nlprec_version": __version__,
              "machine": {"cpu_count": os.cpu_count(), "threads": args.threads, "python": platform.python_version(),
                          "torch": torch.__version__, "platform": platform.platform()},
              "explicit": explicit, "ranking": ranking}
    with atomic_write(args.out, "w", encoding="utf-8") as handle:
        json.dump(report, handle, indent=2)
    print(markdown(report))
    print(f"\nwrote {args.out}", file=sys.stderr)
    return 0


# --- explicit ratings ----------------------------------------------------------------------------


def run_explicit(ratings: Path, data, args) -> dict:
    train, test = split_random(data, 0.1, args.seed)
    protocol = recommend.EvalProtocol(split="random", test_ratio=0.1, seed=args.seed)
    rows = []
    svd = surprise_svd(train, test, args.seed)
    if svd:
        rows.append(svd)
    for model in ("mf", "autorec"):
        rows.append(nlprec_explicit(ratings, model, protocol, args))
    return {"protocol": protocol.describe("rating", len(test)), "results": rows}


def surprise_svd(train, test, seed: int) -> dict | None:
    try:
        import pandas as pd
        from surprise import SVD, Dataset, Reader
    except ImportError as err:
        print(f"skipping Surprise SVD: {err}", file=sys.stderr)
        return None
    frame = pd.DataFrame({"user": np.array(train.user_ids)[train.users], "item": np.array(train.item_ids)[train.items],
                          "rating": train.ratings})
    trainset = Dataset.load_from_df(frame, Reader(rating_scale=(1, 5))).build_full_trainset()
    algo = SVD(random_state=seed)
    started = time.perf_counter()
    algo.fit(trainset)
    seconds = time.perf_counter() - started
    users, items = np.array(test.user_ids)[test.users], np.array(test.item_ids)[test.items]
    predictions = np.array([algo.predict(u, i).est for u, i in zip(users, items)])
    return {"name": "Surprise SVD (defaults)", "fit_seconds": round(seconds, 2),
            "rmse": rmse(predictions, test.ratings), "mae": mae(predictions, test.ratings)}


def nlprec_explicit(ratings: Path, model: str, protocol, args) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        options = recommend.RecommendOptions(model=model, protocol=protocol, seed=args.seed,
                                             trainer_options={"device": "cpu"}, progress=False)
        trained = recommend.train(ratings, Path(folder) / model, options)
    history = trained.metrics["history"]
    fit_seconds = sum(record["seconds"] for record in history)
    metrics = trained.metrics["metrics"]
    return {"name": f"nlprec {model}", "fit_seconds": round(fit_seconds, 2), "epochs": len(history),
            "epoch_seconds": round(fit_seconds / len(history), 3), "rmse": metrics["rmse"], "mae": metrics["mae"]}


# --- ranking --------------------------------------------------------------------------------------


def run_ranking(ratings: Path, data, args) -> dict:
    train, test = split_leave_one_out(data)
    protocol = recommend.EvalProtocol(split="leave_one_out", ranking="sampled", n_negatives=99, seed=args.seed, k=K)
    neg_users, negatives = draw_negatives(data, test, 99, args.seed)
    rows_of_test = np.searchsorted(neg_users, test.users)
    train_matrix, test_matrix = train.matrix().tocsr(), test.matrix().tocsr()

    def both_protocols(score_pairs, score_all) -> dict:
        """Sampled and full-ranking metrics of a scorer (internal indices)."""
        n = negatives.shape[1]
        positive = score_pairs(test.users, test.items)
        negative = score_pairs(np.repeat(test.users, n), negatives[rows_of_test].reshape(-1)).reshape(-1, n)
        sampled = ranking_metrics(*sampled_counts(positive, negative), ks=(K,))
        started = time.perf_counter()
        full = ranking_metrics(*full_counts(score_all, test.users, test.items, train_matrix, test_matrix), ks=(K,))
        return {**{k: v for k, v in sampled.items() if k != "n"},
                **{f"full_{k}": v for k, v in full.items() if k != "n"},
                "full_eval_seconds": round(time.perf_counter() - started, 3)}

    results = []
    counts = train.item_counts().astype(np.float64)
    results.append({"name": "popularity", "fit_seconds": 0.0, **both_protocols(
        lambda u, i: counts[i], lambda users: torch.as_tensor(counts).expand(len(users), -1))})
    bpr = implicit_bpr(train, args)
    if bpr:
        user_factors, item_factors, seconds = bpr
        results.append({"name": "implicit BPR (defaults)", "fit_seconds": round(seconds, 2), **both_protocols(
            lambda u, i: np.einsum("nd,nd->n", user_factors[u], item_factors[i]),
            lambda users: torch.as_tensor(user_factors[users.numpy()] @ item_factors.T))})
    for loss in ("bpr", "hinge"):
        with tempfile.TemporaryDirectory() as folder:
            options = recommend.RecommendOptions(model="neumf", protocol=protocol, seed=args.seed,
                                                 trainer_options={"device": "cpu"}, progress=False)
            trained = recommend.train(ratings, Path(folder) / "nm", options, {"loss": loss})
        history = trained.metrics["history"]
        fit_seconds = sum(record["seconds"] for record in history)
        row = both_protocols(trained.predict, trained.model.score_all)
        assert np.array_equal(trained.negatives[1], negatives)  # the same sampled negatives as the peers
        results.append({"name": f"nlprec NeuMF ({loss})", "fit_seconds": round(fit_seconds, 2),
                        "epochs": len(history), "epoch_seconds": round(fit_seconds / len(history), 3), **row})
    full = recommend.EvalProtocol(split="leave_one_out", ranking="full", seed=args.seed, k=K)
    return {"protocol": protocol.describe("ranking", len(test)), "protocol_full": full.describe("ranking", len(test)),
            "results": results}


def implicit_bpr(train, args) -> tuple[np.ndarray, np.ndarray, float] | None:
    try:
        from implicit.cpu.bpr import BayesianPersonalizedRanking
    except ImportError as err:
        print(f"skipping implicit BPR: {err}", file=sys.stderr)
        return None
    model = BayesianPersonalizedRanking(random_state=args.seed, num_threads=args.threads)
    user_items = train.matrix().tocsr()  # (users, items), implicit >= 0.5 takes user-item
    started = time.perf_counter()
    model.fit(user_items, show_progress=False)
    seconds = time.perf_counter() - started
    return np.asarray(model.user_factors), np.asarray(model.item_factors), seconds


# --- report ---------------------------------------------------------------------------------------


def markdown(report: dict) -> str:
    explicit, ranking = report["explicit"], report["ranking"]
    lines = [f"MovieLens 100K, {report['machine']['threads']} thread(s), nlprec {report['nlprec_version']}", "",
             f"Explicit: {explicit['protocol']}", "",
             "| model | fit (s) | s/epoch | RMSE | MAE |", "| --- | ---: | ---: | ---: | ---: |"]
    for row in explicit["results"]:
        lines.append(f"| {row['name']} | {row['fit_seconds']:.1f} | {row.get('epoch_seconds', '')} | "
                     f"{row['rmse']:.4f} | {row['mae']:.4f} |")
    lines += ["", f"Ranking, sampled: {ranking['protocol']}", f"Ranking, full: {ranking['protocol_full']}", "",
              f"| model | fit (s) | s/epoch | HR@{K} | NDCG@{K} | AUC | full HR@{K} | full NDCG@{K} | full AUC | "
              "full eval (s) |", "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for row in ranking["results"]:
        lines.append(f"| {row['name']} | {row['fit_seconds']:.1f} | {row.get('epoch_seconds', '')} | "
                     f"{row[f'hr@{K}']:.4f} | {row[f'ndcg@{K}']:.4f} | {row['auc']:.4f} | {row[f'full_hr@{K}']:.4f} | "
                     f"{row[f'full_ndcg@{K}']:.4f} | {row['full_auc']:.4f} | {row['full_eval_seconds']:.2f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
