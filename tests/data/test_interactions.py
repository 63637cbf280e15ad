"""Ratings files: formats, column options, one-line errors; splits; negative sampling; batches."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nlprec.data.interactions import (
    SeenPairs,
    ItemRowsData,
    PairwiseData,
    RatingsData,
    latest_rows,
    pair_keys,
    read_interactions,
    sample_eval_negatives,
    sample_negatives,
    split_leave_one_out,
    split_random,
    split_temporal,
)
from nlprec.errors import NlprecError

UDATA = "196\t242\t3\t881250949\n186\t302\t3\t891717742\n196\t377\t1\t878887116\n244\t51\t2\t880606923\n"


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# --- reading -------------------------------------------------------------------------------


def test_reads_movielens_udata_layout(tmp_path):
    data = read_interactions(write(tmp_path, "u.data", UDATA))
    assert (len(data), data.n_users, data.n_items) == (4, 3, 4)
    assert data.user_ids == ["196", "186", "244"] and data.item_ids == ["242", "302", "377", "51"]
    assert data.ratings.tolist() == [3, 3, 1, 2] and data.timestamps[0] == 881250949
    assert data.user_index("244") == 2 and data.item_index("nope") is None


def test_reads_csv_with_header_and_named_columns(tmp_path):
    path = write(tmp_path, "r.csv", "ts,movieId,stars,userId\n5,a,4.5,u1\n6,b,3,u2\n")
    data = read_interactions(path)  # found by name
    assert data.user_ids == ["u1", "u2"] and data.ratings.tolist() == [4.5, 3.0] and data.timestamps.tolist() == [5, 6]
    chosen = read_interactions(path, user_col="movieId", item_col="userId", rating_col="ts", time_col="stars")
    assert chosen.user_ids == ["a", "b"] and chosen.ratings.tolist() == [5, 6]


def test_positional_columns_and_separator_sniffing(tmp_path):
    data = read_interactions(write(tmp_path, "r.txt", "x,1,u,4\ny,2,v,5\n"), user_col="2", item_col="0",
                             rating_col="3", time_col="1")
    assert data.user_ids == ["u", "v"] and data.item_ids == ["x", "y"] and data.ratings.tolist() == [4, 5]
    ml1m = read_interactions(write(tmp_path, "ratings.dat", "1::1193::5::978300760\n1::661::3::978302109\n"))
    assert len(ml1m) == 2 and ml1m.item_ids == ["1193", "661"]


def test_iso_timestamps_and_blank_lines(tmp_path):
    data = read_interactions(write(tmp_path, "r.tsv", "u\ti\t5\t2020-01-01T00:00:00\n\nv\ti\t4\t2020-01-02\n"))
    assert len(data) == 2 and data.timestamps[1] - data.timestamps[0] == 86400
    assert data.lines.tolist() == [1, 3]


def test_parquet(tmp_path):
    import pandas as pd

    path = tmp_path / "r.parquet"
    pd.DataFrame({"user": [1, 2], "item": [10, 11], "rating": [4.0, 5.0]}).to_parquet(path)
    data = read_interactions(path)
    assert data.user_ids == ["1", "2"] and data.ratings.tolist() == [4, 5]


def test_integer_parquet_ids_match_the_same_file_as_text(tmp_path):
    """Integer id columns are factorized as numbers: the same ids and indices as their text."""
    import pandas as pd

    frame = pd.DataFrame({"user": [30, 7, 30, 12], "item": [5, 5, 9, 100], "rating": [4, 3, 5, 1],
                          "timestamp": [3, 1, 2, 4]})
    frame.to_parquet(tmp_path / "r.parquet")
    frame.to_csv(tmp_path / "r.csv", index=False)
    binary, text = read_interactions(tmp_path / "r.parquet"), read_interactions(tmp_path / "r.csv")
    assert binary.user_ids == text.user_ids == ["30", "7", "12"] and binary.item_ids == text.item_ids
    for name in ("users", "items", "ratings", "timestamps"):
        assert np.array_equal(getattr(binary, name), getattr(text, name)), name
    frame.loc[1, "user"] = 30
    frame.loc[1, "item"] = 9
    frame.to_parquet(tmp_path / "d.parquet")
    with pytest.raises(NlprecError, match="duplicate pair"):
        read_interactions(tmp_path / "d.parquet")


def test_implicit_ignores_ratings(tmp_path):
    data = read_interactions(write(tmp_path, "r.tsv", "u\ti\tnot-a-number\n"), implicit=True)
    assert data.ratings is None and len(data) == 1


@pytest.mark.parametrize("text, options, message", [
    ("", {}, r"r\.tsv: empty file"),
    ("\n\n", {}, r"r\.tsv: empty file"),
    ("u\t1\t5\t10\nv\t2\tfive\t11\n", {}, r"r\.tsv line 2: rating 'five' is not a finite number"),
    ("u\t1\t5\t10\nv\t2\tnan\t11\n", {}, r"line 2: rating 'nan' is not a finite number"),
    ("u\t1\t5\t10\nv\t2\t4\tlater\n", {}, r"line 2: timestamp 'later' is not a number or an ISO-8601 date"),
    ("u\t1\t5\t10\nv\t2\t7\t11\n", {"rating_range": (1, 5)}, r"line 2: rating 7 is outside the range \[1, 5\]"),
    ("u\t1\t5\t10\nv\t2\t4\t11\nu\t1\t3\t12\n", {}, r"line 3: duplicate pair \(user u, item 1\) first seen on line 1"),
    ("u\t1\t5\t10\nv\t2\t4\t11\t99\n", {}, r"line 2: 5 fields, expected 4"),
    ("u\t1\t5\t10\nv\t2\n", {}, r"line 2: rating missing"),
    ("u\t1\t5\t10\n\t2\t4\t11\n", {}, r"line 2: empty user id"),
    ("user\titem\n1\t2\n", {"rating_col": "stars"}, r"no rating column 'stars'; columns: user, item"),
    ("u\t1\t5\n", {"user_col": "7"}, r"user column 7 requested but the file has 3 columns"),
])
def test_bad_input_is_one_line_naming_the_line(tmp_path, text, options, message):
    path = write(tmp_path, "r.tsv", text)
    with pytest.raises(NlprecError, match=message) as caught:
        read_interactions(path, **options)
    assert "\n" not in str(caught.value)


def test_missing_file_and_non_utf8(tmp_path):
    with pytest.raises(NlprecError, match="no such file"):
        read_interactions(tmp_path / "absent.tsv")
    path = tmp_path / "latin.tsv"
    path.write_bytes("caf\xe9\t1\t5\n".encode("latin-1"))
    with pytest.raises(NlprecError, match="not UTF-8"):
        read_interactions(path)


def test_duplicates_last_keeps_the_last_occurrence(tmp_path):
    data = read_interactions(write(tmp_path, "r.tsv", "u\t1\t5\t10\nv\t2\t4\t11\nu\t1\t3\t12\n"), duplicates="last")
    assert len(data) == 2 and sorted(data.ratings.tolist()) == [3, 4] and sorted(data.lines.tolist()) == [2, 3]


# --- splits --------------------------------------------------------------------------------


def synthetic(n_users=30, n_items=40, per_user=8, seed=0, tmp_path=None):
    rng = np.random.default_rng(seed)
    rows = []
    for user in range(n_users):
        for item in rng.choice(n_items, per_user, replace=False):
            rows.append(f"u{user}\ti{item}\t{rng.integers(1, 6)}\t{rng.integers(0, 10**6)}")
    path = tmp_path / "synthetic.tsv"
    path.write_text("\n".join(rows) + "\n")
    return read_interactions(path)


def test_random_split_is_seeded_and_disjoint(tmp_path):
    data = synthetic(tmp_path=tmp_path)
    train, test = split_random(data, 0.25, seed=3)
    again, _ = split_random(data, 0.25, seed=3)
    other, _ = split_random(data, 0.25, seed=4)
    assert len(test) == round(0.25 * len(data)) and len(train) + len(test) == len(data)
    assert np.array_equal(train.lines, again.lines) and not np.array_equal(train.lines, other.lines)
    assert not set(train.lines) & set(test.lines)


def test_leave_one_out_takes_each_users_latest(tmp_path):
    data = synthetic(tmp_path=tmp_path)
    train, test = split_leave_one_out(data)
    assert len(test) == data.n_users and len(np.unique(test.users)) == data.n_users
    for user, timestamp in zip(test.users, test.timestamps):
        assert timestamp >= data.timestamps[data.users == user].max()
    train_pairs = set(zip(train.users.tolist(), train.items.tolist()))
    assert not train_pairs & set(zip(test.users.tolist(), test.items.tolist()))


def test_leave_one_out_ties_and_single_interaction_users(tmp_path):
    data = read_interactions(write(tmp_path, "r.tsv", "a\t1\t5\t9\na\t2\t5\t9\na\t3\t5\t1\nb\t1\t4\t3\n"))
    train, test = split_leave_one_out(data)
    assert test.lines.tolist() == [2]  # tie on the latest time: the later line; b keeps its only row
    assert sorted(train.lines.tolist()) == [1, 3, 4]


def test_temporal_split_cuts_at_a_global_time(tmp_path):
    data = synthetic(tmp_path=tmp_path)
    train, test = split_temporal(data, 0.2)
    assert len(test) == round(0.2 * len(data)) and test.timestamps.min() >= train.timestamps.max()


def test_time_splits_need_timestamps(tmp_path):
    data = read_interactions(write(tmp_path, "r.tsv", "a\t1\t5\nb\t2\t4\n"))
    with pytest.raises(NlprecError, match="needs a time column"):
        split_leave_one_out(data)


# --- negatives and batches -----------------------------------------------------------------


def test_sampler_never_returns_a_seen_item(tmp_path):
    data = synthetic(n_users=50, n_items=12, per_user=10, tmp_path=tmp_path)  # 10 of 12 items seen
    seen = np.unique(pair_keys(data.users, data.items, data.n_items))
    users = np.repeat(np.arange(data.n_users), 40)
    pairs = SeenPairs.of(data.users, data.items, data.n_users, data.n_items)
    negatives = sample_negatives(users, pairs, np.random.default_rng(0), n=3)  # (N, 3)
    assert negatives.shape == (len(users), 3)
    keys = pair_keys(np.repeat(users, 3), negatives.reshape(-1), data.n_items)
    assert not np.isin(keys, seen).any()
    assert len(np.unique(negatives)) == data.n_items or len(np.unique(negatives)) > 2


def test_sampler_reports_users_who_saw_everything(tmp_path):
    data = read_interactions(write(tmp_path, "r.tsv", "a\t1\t5\na\t2\t5\nb\t1\t5\n"))
    pairs = SeenPairs.of(data.users, data.items, data.n_users, data.n_items)
    with pytest.raises(NlprecError, match="seen \\(nearly\\) every item"):
        sample_negatives(np.array([0]), pairs, np.random.default_rng(0), max_rounds=5)


def test_eval_negatives_are_distinct_unseen_and_seeded(tmp_path):
    data = synthetic(tmp_path=tmp_path)
    matrix = data.matrix().tocsr()
    users = np.arange(data.n_users)
    negatives = sample_eval_negatives(users, matrix, 20, seed=1)
    assert np.array_equal(negatives, sample_eval_negatives(users, matrix, 20, seed=1))
    for user, row in zip(users, negatives):
        assert len(set(row)) == 20 and not set(row) & set(matrix[user].indices)
    with pytest.raises(NlprecError, match="only 32 unseen items"):
        sample_eval_negatives(users, matrix, 33)


def test_data_modules_shapes_and_determinism(tmp_path):
    data = synthetic(tmp_path=tmp_path)
    ratings = RatingsData(data, batch_size=64, seed=0)
    batches = list(ratings.train_dataloader(epoch=0))
    assert len(batches) == ratings.steps_per_epoch() and batches[0]["ratings"].dtype == torch.float32
    assert torch.equal(batches[0]["users"], next(iter(ratings.train_dataloader(epoch=0)))["users"])
    pairwise = PairwiseData(data, batch_size=50, n_negatives=2, seed=0)
    triples = list(pairwise.train_dataloader(epoch=1))
    assert sum(len(b["users"]) for b in triples) == 2 * len(data) and len(triples) == pairwise.steps_per_epoch()
    users, positives = (torch.cat([b[key] for b in triples]).tolist() for key in ("users", "pos_items"))
    pairs = sorted(zip(users, positives))
    assert pairs == sorted(2 * list(zip(data.users.tolist(), data.items.tolist())))  # each interaction twice
    again = list(pairwise.train_dataloader(epoch=1))
    assert all(torch.equal(a["neg_items"], b["neg_items"]) for a, b in zip(triples, again))
    halves = [list(pairwise.train_dataloader(epoch=1, rank=rank, world_size=2)) for rank in (0, 1)]
    assert [len(half) for half in halves] == [pairwise.steps_per_epoch(2)] * 2
    assert torch.equal(halves[1][0]["pos_items"], triples[1]["pos_items"])  # rank 1 takes every second batch
    seen = set(zip(data.users.tolist(), data.items.tolist()))
    assert all((u, n) not in seen for b in triples for u, n in zip(b["users"].tolist(), b["neg_items"].tolist()))
    rows = ItemRowsData(data, batch_size=16)
    batch = next(iter(rows.train_dataloader(epoch=0)))
    assert batch["ratings"].shape == batch["mask"].shape == (16, data.n_users)
    assert torch.all((batch["ratings"] > 0) == (batch["mask"] > 0))


def test_latest_rows_are_each_users_newest_with_file_order_for_ties(tmp_path):
    text = "a\t1\t5\t9\na\t2\t5\t9\na\t3\t5\t1\nb\t1\t4\t3\nb\t4\t4\t7\na\t4\t5\t5\n"
    data = read_interactions(write(tmp_path, "r.tsv", text))
    assert latest_rows(data, 2).tolist() == [0, 1, 3, 4]  # a: the two at time 9; b: both
    assert latest_rows(data, 1).tolist() == [1, 4]  # a's tie at time 9 goes to the later line
    assert latest_rows(data, 0).tolist() == []
    untimed = read_interactions(write(tmp_path, "u.tsv", "a\t1\na\t2\nb\t1\n"), implicit=True)
    assert latest_rows(untimed, 1).tolist() == [1, 2]  # no timestamps: file order


def test_pairwise_recency_copies_the_latest_interactions(tmp_path):
    data = synthetic(tmp_path=tmp_path)
    plain = PairwiseData(data, batch_size=50, n_negatives=2, seed=0)
    boosted = PairwiseData(data, batch_size=50, n_negatives=2, seed=0, recent=3, recent_copies=2)
    latest = latest_rows(data, 3)
    assert len(boosted.users) == len(plain.users) + 2 * len(latest)
    counts = np.bincount(boosted.users, minlength=data.n_users) - np.bincount(plain.users, minlength=data.n_users)
    assert (counts == 2 * np.bincount(data.users[latest], minlength=data.n_users)).all()
    listed = np.concatenate([b["users"].numpy() for b in boosted.train_dataloader(epoch=0)])
    assert (np.bincount(listed, minlength=data.n_users) == 2 * np.bincount(boosted.users, minlength=data.n_users)).all()
    assert boosted.state_dict()["recent"] == 3
    with pytest.raises(NlprecError, match="recent -1"):
        PairwiseData(data, recent=-1, recent_copies=1)


def test_eval_negatives_of_a_large_catalogue_are_distinct_unseen_seeded_and_uniform():
    import scipy.sparse as sp

    from nlprec.data.interactions import DENSE_DRAW_ITEMS

    rng = np.random.default_rng(0)
    n_users, n_items = 300, DENSE_DRAW_ITEMS + 5000  # the rejection draw
    rows = [rng.choice(n_items, rng.integers(0, 500), replace=False) for _ in range(n_users - 1)]
    rows.append(np.arange(n_items - 150))  # a user who saw nearly everything: the dense fallback
    users = np.repeat(np.arange(n_users), [len(r) for r in rows])
    seen = sp.csr_matrix((np.ones(len(users)), (users, np.concatenate(rows))), shape=(n_users, n_items))
    everyone = np.arange(n_users)
    negatives = sample_eval_negatives(everyone, seen, 99, seed=3)
    assert np.array_equal(negatives, sample_eval_negatives(everyone, seen, 99, seed=3))
    for user, row in zip(everyone, negatives):
        assert len(set(row)) == 99 and not set(row) & set(seen[user].indices) and (np.diff(row) > 0).all()
    fresh = sp.csr_matrix((1, n_items))  # nothing seen: each tenth of the catalogue gets a tenth of the draws
    draws = np.concatenate([sample_eval_negatives(np.array([0]), fresh, 99, seed=s)[0] for s in range(300)])
    shares = np.bincount(draws * 10 // n_items, minlength=10) / len(draws)
    assert np.abs(shares - 0.1).max() < 0.01, shares
