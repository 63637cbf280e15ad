"""The recommender API: metrics by hand, the model folder, FAISS retrieval against exact search,
fallbacks, seeds, resume and the evaluation protocols."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from nlprec.tasks import recommend
from nlprec.tasks.recommender import EvalProtocol, Recommender
from nlprec.errors import NlprecError
from nlprec.metrics import full_counts, mae, ranking_metrics, rmse, sampled_counts

FAST = {"epochs": 2, "device": "cpu"}


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def ratings_file(tmp_path_factory):
    """60 users x 50 items with two taste groups, ratings 1-5 and timestamps, as u.data."""
    rng = np.random.default_rng(0)
    lines = []
    for user in range(60):
        group = user % 2
        for item in rng.choice(50, 15, replace=False):
            liked = (item % 2) == group
            rating = int(np.clip(rng.normal(4.2 if liked else 2.0, 0.7), 1, 5).round())
            lines.append(f"{100 + user}\t{500 + item}\t{rating}\t{880000000 + int(rng.integers(0, 10**6))}")
    path = tmp_path_factory.mktemp("data") / "u.data"
    path.write_text("\n".join(lines) + "\n")
    return path


def train(ratings_file, model, out=None, model_options=None, resume=False, **kwargs):
    kwargs.setdefault("trainer_options", dict(FAST))
    kwargs.setdefault("progress", False)
    if model == "neumf":  # 50 items: fewer sampled negatives than the default 99
        kwargs.setdefault("protocol", EvalProtocol(split="leave_one_out", n_negatives=20))
    options = recommend.RecommendOptions(model=model, **kwargs)
    return recommend.train(ratings_file, out, options, model_options, resume=resume)


# --- metrics against hand-computed values ----------------------------------------------------


def test_rmse_and_mae_by_hand():
    predictions, targets = np.array([3.0, 4.0, 1.0]), np.array([2.0, 4.0, 3.0])
    assert math.isclose(rmse(predictions, targets), math.sqrt((1 + 0 + 4) / 3))
    assert math.isclose(mae(predictions, targets), (1 + 0 + 2) / 3)


def test_hit_rate_ndcg_auc_by_hand():
    positives = np.array([0.9, 0.5, 0.1])
    negatives = np.array([[0.1, 0.2, 0.3, 0.4],    # positive on top: rank 0
                          [0.9, 0.5, 0.3, 0.1],    # one above, one tie (counts against): rank 2
                          [0.8, 0.7, 0.6, 0.5]])   # last: rank 4
    ranks, below, ties, n = sampled_counts(positives, negatives)
    assert ranks.tolist() == [0, 2, 4] and ties.tolist() == [0, 1, 0]
    metrics = ranking_metrics(ranks, below, ties, n, ks=(1, 3))
    assert metrics["hr@1"] == pytest.approx(1 / 3) and metrics["hr@3"] == pytest.approx(2 / 3)
    assert metrics["ndcg@3"] == pytest.approx((1 + 1 / math.log2(4)) / 3)
    assert metrics["auc"] == pytest.approx((4 / 4 + 2.5 / 4 + 0 / 4) / 3)


def test_full_ranking_matches_a_per_user_loop():
    rng = np.random.default_rng(1)
    scores = torch.tensor(rng.normal(size=(6, 12)), dtype=torch.float32)
    train = sp.random(6, 12, density=0.3, random_state=1, format="csr")
    train.data[:] = 1
    test_users = np.array([0, 0, 3, 5])
    test_items = np.array([int(np.setdiff1d(np.arange(12), train[u].indices)[j]) for u, j in
                           zip(test_users, [0, 1, 0, 2])])
    test = sp.csr_matrix((np.ones(4), (test_users, test_items)), shape=(6, 12))
    ranks, below, ties, n = full_counts(lambda users: scores[users], test_users, test_items, train, test)
    for j, (user, item) in enumerate(zip(test_users, test_items)):
        candidates = [i for i in range(12) if train[user, i] == 0 and test[user, i] == 0]
        assert ranks[j] == sum(scores[user, i] >= scores[user, item] for i in candidates)
        assert n[j] == len(candidates) and below[j] == len(candidates) - ranks[j]


# --- the model folder ------------------------------------------------------------------------


def test_model_folder_round_trips(ratings_file, tmp_path):
    trained = train(ratings_file, "mf", tmp_path / "mf")
    folder = tmp_path / "mf"
    for name in ("config.json", "model.pt", "users.json", "items.json", "split.npz", "metrics.json", "metrics.jsonl"):
        assert (folder / name).is_file(), name
    config = json.loads((folder / "config.json").read_text())
    assert config["model"] == "mf" and config["seed"] == 0 and config["nlprec_version"]
    assert config["data"]["sha256"] and config["trainer_config"]["epochs"] == 2
    assert "random split" in config["protocol"]["description"]
    state = torch.load(folder / "model.pt", weights_only=True)
    assert set(state) >= {"user_factors.weight", "item_bias.weight"}
    assert json.loads((folder / "users.json").read_text())[0] == "100"
    loaded = Recommender.load(folder)
    users, items = trained.test.users, trained.test.items
    assert np.allclose(loaded.predict(users, items), trained.predict(users, items))
    saved = json.loads((folder / "metrics.json").read_text())
    assert loaded.evaluate()["metrics"] == pytest.approx(saved["metrics"])
    assert saved["protocol"].startswith("random split: 10% of interactions as test (seed 0)")


def test_same_seed_same_model_other_seed_differs(ratings_file):
    first, second = train(ratings_file, "neumf"), train(ratings_file, "neumf")
    other = train(ratings_file, "neumf", seed=1)
    for key, value in first.model.state_dict().items():
        assert torch.equal(value, second.model.state_dict()[key]), key
    assert first.metrics["metrics"] == second.metrics["metrics"]
    assert not torch.equal(first.model.item_gmf.weight, other.model.item_gmf.weight)


@pytest.mark.parametrize("model", ["mf", "neumf"])
def test_resume_continues_to_the_same_result(ratings_file, tmp_path, model):
    """Sparse tables: SparseAdam's (mf) or SparseRowsAdam's (neumf) state comes back with the weights."""
    options = {"device": "cpu", "schedule": "constant"}  # 3 epochs = 2 epochs + 1 with the same rates
    straight = train(ratings_file, model, tmp_path / "straight", trainer_options={"epochs": 3, **options})
    train(ratings_file, model, tmp_path / "resumed", trainer_options={"epochs": 2, **options})
    resumed = train(ratings_file, model, tmp_path / "resumed", resume=True, trainer_options={"epochs": 3, **options})
    for key, value in straight.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[key]), key


def test_resume_refuses_another_file(ratings_file, tmp_path):
    train(ratings_file, "mf", tmp_path / "run")
    other = tmp_path / "other.tsv"
    other.write_text(ratings_file.read_text().replace("\t5\t", "\t4\t", 1))
    with pytest.raises(NlprecError, match="different ratings file"):
        train(other, "mf", tmp_path / "run", resume=True)


def test_bad_input_writes_nothing_and_full_folders_are_kept(ratings_file, tmp_path):
    bad = tmp_path / "bad.tsv"
    bad.write_text("1\t2\t5\t9\n1\t3\tfive\t9\n")
    with pytest.raises(NlprecError, match="line 2: rating 'five'"):
        train(bad, "mf", tmp_path / "out")
    assert not (tmp_path / "out").exists()
    train(ratings_file, "mf", tmp_path / "kept")
    with pytest.raises(NlprecError, match="not empty; pass --overwrite"):
        train(ratings_file, "mf", tmp_path / "kept")
    with pytest.raises(NlprecError, match="option 'n_users' is set from the data"):
        train(ratings_file, "mf", model_options={"n_users": 3})
    with pytest.raises(NlprecError, match="MFConfig has no option 'depth'"):
        train(ratings_file, "mf", model_options={"depth": 3})


# --- retrieval -------------------------------------------------------------------------------


@pytest.mark.parametrize("model", ["mf", "autorec", "neumf"])
def test_recommend_matches_exact_scoring_and_skips_seen(ratings_file, model):
    trained = train(ratings_file, model)
    seen = trained.seen()
    for user in ("100", "117", "159"):
        index = trained.train.user_index(user)
        got = trained.recommend(user, k=7)
        with torch.no_grad():
            exact = trained.model.score_all(torch.tensor([index]))[0].double().numpy()
        exact[seen[index].indices] = -np.inf
        best = np.argsort(-exact, kind="stable")[:7]
        assert [item for item, _ in got.items] == [trained.item_ids[i] for i in best]
        assert np.allclose([score for _, score in got.items], exact[best], atol=1e-4)
        assert not {trained.train.item_index(item) for item, _ in got.items} & set(seen[index].indices)


@pytest.mark.parametrize("model", ["mf", "neumf"])
def test_similar_items_match_exact_cosine(ratings_file, model):
    trained = train(ratings_file, model)
    vectors = trained.model.item_embeddings().detach().numpy().astype(np.float64)
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    index = trained.train.item_index("510")
    cosine = unit @ unit[index]
    cosine[index] = -np.inf
    best = np.argsort(-cosine)[:5]
    got = trained.similar_items("510", k=5)
    assert [item for item, _ in got] == [trained.item_ids[i] for i in best]
    assert np.allclose([score for _, score in got], cosine[best], atol=1e-5)


def test_unknown_users_get_popularity_and_unknown_items_error_or_nan(ratings_file):
    trained = train(ratings_file, "mf")
    answer = trained.recommend("nobody", k=3)
    counts = trained.popularity()
    assert answer.source == "popularity" and "not in the training data" in answer.notice
    assert [score for _, score in answer.items] == sorted(counts, reverse=True)[:3]
    result = trained.score(["100", "nobody"], ["510", "510"])
    assert result.popularity_rows.tolist() == [1]
    assert result.scores[1] == pytest.approx(trained.item_means()[trained.train.item_index("510")])
    with pytest.raises(NlprecError, match="pairs.tsv line 7: unknown item 'zzz'"):
        trained.score(["100"], ["zzz"], lines=[7], source="pairs.tsv")
    flagged = trained.score(["100", "100"], ["zzz", "510"], unknown_items="nan")
    assert np.isnan(flagged.scores[0]) and flagged.unknown_item_rows.tolist() == [0]


def test_ranking_protocols_are_saved_and_described(ratings_file, tmp_path):
    trained = train(ratings_file, "neumf", tmp_path / "nm",
                    protocol=EvalProtocol(split="leave_one_out", n_negatives=20, seed=3))
    loaded = Recommender.load(tmp_path / "nm")
    users, negatives = loaded.negatives
    assert negatives.shape == (60, 20) and np.array_equal(negatives, trained.negatives[1])
    sampled = loaded.evaluate()
    assert sampled["metrics"] == pytest.approx(trained.metrics["metrics"])
    assert "against 20 items the user never interacted with, sampled once (seed 3)" in sampled["protocol"]
    full = loaded.evaluate("full", k=5)
    assert full["protocol"].count("full ranking") == 1 and set(full["metrics"]) == {"hr@5", "ndcg@5", "auc", "n"}
    assert full["metrics"]["n"] == 60


def test_validation_split_drives_early_stopping(ratings_file, tmp_path):
    trained = train(ratings_file, "mf", tmp_path / "val", val_ratio=0.2,
                    trainer_options={"epochs": 4, "device": "cpu", "patience": 1})
    history = trained.metrics["history"]
    assert all("val_rmse" in record for record in history)
    assert (tmp_path / "val" / "checkpoints" / "best.pt").is_file()
    assert len(trained.train) + len(trained.test) == 900  # validation rows stay in the training part


def test_torchrun_on_gpus_trains_dense_tables(monkeypatch):
    """NCCL cannot all-reduce sparse gradients: DDP on GPUs gets dense tables and AdamW, unless
    --set sparse was given; gloo (CPU) and single-process runs keep sparse tables."""
    import dataclasses

    from nlprec.models.neumf import NeuMFConfig
    from nlprec.tasks.recommend import _dense_tables
    from nlprec.train import TrainerConfig
    from nlprec.train.distributed import sparse_gradients_supported

    assert sparse_gradients_supported(torch.device("cuda"))
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert not sparse_gradients_supported(torch.device("cuda")) and sparse_gradients_supported(torch.device("cpu"))
    config, trainer = _dense_tables(NeuMFConfig(), TrainerConfig(optimizer="sparse_adam", weight_decay=0.1), {})
    assert not config.sparse and trainer.optimizer == "adamw" and trainer.weight_decay == 0.1
    kept = _dense_tables(NeuMFConfig(), TrainerConfig(optimizer="sparse_adam"), {"sparse": True})
    assert kept[0].sparse and kept[1].optimizer == "sparse_adam"
    assert dataclasses.asdict(_dense_tables(NeuMFConfig(sparse=False), TrainerConfig(), {})[0])["sparse"] is False
