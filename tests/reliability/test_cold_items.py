"""Cold users and items in `nlprec rec score --unknown-items baseline`: rating models give the
global mean plus the known side's bias (Surprise's rule), ranking models the item's training
popularity; a `known` column says which rows fell back; `error` stays the default."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from reliability_support import run_in_process, write_ratings
from nlprec.tasks.recommender import Recommender, baseline_biases


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("cold")
    torch.set_num_threads(1)
    ratings = write_ratings(root / "r.tsv")
    for name, extra in (("mf", ["--set", "dim=4"]), ("autorec", ["--set", "hidden=8"]),
                        ("neumf", ["--eval-negatives", "5"])):
        from nlprec_cli.main import main

        main(["rec", "train", str(ratings), "--model", name, "--out", str(root / name), "--epochs", "1", *extra,
              "--threads", "1", "--quiet", "--device", "cpu"])
    return root


def _score(capsys, folder, rows, tmp_path, *options):
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("".join(f"{user}\t{item}\n" for user, item in rows), encoding="utf-8")
    code, _, err = run_in_process(capsys, "rec", "score", folder, pairs, "--out", tmp_path / "s.tsv", *options)
    lines = [line.split("\t") for line in (tmp_path / "s.tsv").read_text().splitlines()] if code == 0 else []
    return code, err, lines


ROWS = [("u1", "i1"), ("stranger", "i1"), ("u1", "new-item"), ("stranger", "new-item")]


def test_mf_falls_back_on_its_own_biases(models, tmp_path, capsys):
    rec = Recommender.load(models / "mf")
    known_user, known_item = rec.user_ids[0], rec.item_ids[0]
    rows = [(known_user, known_item), ("stranger", known_item), (known_user, "new-item"), ("stranger", "new-item")]
    code, err, lines = _score(capsys, models / "mf", rows, tmp_path, "--unknown-items", "baseline")
    assert code == 0 and lines[0] == ["user", "item", "score", "known"]
    assert [line[3] for line in lines[1:]] == ["true", "false", "false", "false"]
    mu, user_bias, item_bias = rec.model.biases()
    u, i = rec.train.user_index(known_user), rec.train.item_index(known_item)
    expected = [rec.predict(np.array([u]), np.array([i]))[0], mu + float(item_bias[i]), mu + float(user_bias[u]), mu]
    np.testing.assert_allclose([float(line[2]) for line in lines[1:]], expected, rtol=1e-5)
    assert "3 row(s)" in err and "baseline" in err


def test_models_without_biases_use_surprises_baseline_estimates(models):
    import surprise

    rec = Recommender.load(models / "autorec")
    mu, user_bias, item_bias = baseline_biases(rec.train)
    frame = [(rec.user_ids[u], rec.item_ids[i], float(r)) for u, i, r in
             zip(rec.train.users, rec.train.items, rec.train.ratings)]
    import pandas as pd

    data = surprise.Dataset.load_from_df(pd.DataFrame(frame, columns=["u", "i", "r"]),
                                         surprise.Reader(rating_scale=(1, 5)))
    algo = surprise.BaselineOnly(bsl_options={"method": "als"}, verbose=False)
    algo.fit(data.build_full_trainset())
    trainset = algo.trainset
    rated_users = sorted(set(rec.train.users.tolist()))
    rated_items = sorted(set(rec.train.items.tolist()))
    theirs_u = [algo.bu[trainset.to_inner_uid(rec.user_ids[k])] for k in rated_users]
    theirs_i = [algo.bi[trainset.to_inner_iid(rec.item_ids[k])] for k in rated_items]
    ours_u, ours_i = user_bias[rated_users], item_bias[rated_items]
    assert mu == pytest.approx(trainset.global_mean)
    np.testing.assert_allclose(ours_u, theirs_u, atol=1e-9)
    np.testing.assert_allclose(ours_i, theirs_i, atol=1e-9)
    scored = rec.score(["stranger", rec.user_ids[0]], [rec.item_ids[0], "new-item"], unknown_items="baseline")
    assert scored.scores[0] == pytest.approx(mu + item_bias[0])
    assert scored.scores[1] == pytest.approx(mu + user_bias[rec.train.user_index(rec.user_ids[0])])
    assert scored.known.tolist() == [False, False]


def test_ranking_models_fall_back_on_popularity(models, tmp_path, capsys):
    rec = Recommender.load(models / "neumf")
    known_user, item = rec.user_ids[0], rec.item_ids[0]
    rows = [(known_user, item), ("stranger", item), (known_user, "new-item")]
    code, _, lines = _score(capsys, models / "neumf", rows, tmp_path, "--unknown-items", "baseline")
    assert code == 0 and [line[3] for line in lines[1:]] == ["true", "false", "false"]
    assert float(lines[2][2]) == rec.popularity()[rec.train.item_index(item)] and float(lines[3][2]) == 0.0


@pytest.mark.parametrize("model", ["mf", "neumf"])
def test_error_stays_the_default(model, models, tmp_path, capsys):
    code, err, _ = _score(capsys, models / model, ROWS, tmp_path)
    assert code == 2 and err.count("\n") == 1 and "line 3: unknown item 'new-item'" in err
    assert "--unknown-items baseline" in err and not (tmp_path / "s.tsv").exists()
