"""Item metadata given at training time (`nlprec rec train --items u.item`): the reader's errors,
and titles kept in the folder and answered with recommendations and the user's history, on
MovieLens 100k's own u.item (latin-1)."""

from __future__ import annotations

import pytest

from nlprec.errors import NlprecError
from nlprec.tasks import recommend
from nlprec.tasks.recommend import read_item_titles
from nlprec.tasks.recommender import Recommender


def test_item_titles_file_errors_name_the_line(tmp_path):
    bad = tmp_path / "bad.item"
    bad.write_text("1|One\n2\n", encoding="utf-8")
    with pytest.raises(NlprecError, match=r"bad.item:2: expected 'id\|title\|...'"):
        read_item_titles(bad, ["1", "2"])
    twice = tmp_path / "twice.item"
    twice.write_text("1|One\n1|Uno\n", encoding="utf-8")
    with pytest.raises(NlprecError, match="twice.item:2: item '1' is listed twice"):
        read_item_titles(twice, ["1"])
    other = tmp_path / "other.item"
    other.write_text("a|A\n", encoding="utf-8")
    with pytest.raises(NlprecError, match="none of its 1 ids is an item"):
        read_item_titles(other, ["1"])
    with pytest.raises(NlprecError, match="cannot read it"):
        read_item_titles(tmp_path / "missing.item", ["1"])
    utf8 = tmp_path / "utf8.item"
    utf8.write_text("1|Amélie\n", encoding="utf-8")
    assert read_item_titles(utf8, ["1", "2"]) == ["Amélie", None]


def test_a_damaged_titles_file_is_one_line(tmp_path):
    ratings = tmp_path / "u.data"
    ratings.write_text("".join(f"{user}\t{item}\t{1 + (user + item) % 5}\t{user * 100 + item}\n"
                               for user in range(20) for item in range(10) if (user + item) % 3), encoding="utf-8")
    items = tmp_path / "u.item"
    items.write_bytes("".join(f"{item}|Film {item} (été)|01-Jan-1995\n" for item in range(10)).encode("latin-1"))
    options = recommend.RecommendOptions(model="mf", items=str(items), progress=False,
                                         trainer_options={"epochs": 1, "device": "cpu"})
    out = tmp_path / "mf"
    recommend.train(ratings, out, options)
    assert Recommender.load(out).item_titles(["3"]) == ["Film 3 (été)"]
    (out / "item_titles.json").write_text('["only one"]', encoding="utf-8")
    with pytest.raises(NlprecError, match="item_titles.json: expected a list of 10 titles"):
        Recommender.load(out)


@pytest.mark.corpora
def test_movielens_titles_come_back_with_recommendations_and_history(tmp_path, corpora_dir):
    ml = corpora_dir / "ml-100k"
    options = recommend.RecommendOptions(model="mf", items=str(ml / "u.item"), progress=False,
                                         trainer_options={"epochs": 1, "device": "cpu"})
    recommend.train(ml / "u.data", tmp_path / "mf", options)
    model = Recommender.load(tmp_path / "mf")
    assert model.item_titles(["1", "543", "1104"]) == ["Toy Story (1995)", "Misérables, Les (1995)",
                                                       "C'est arrivé près de chez vous (1992)"]
    assert all(title for title in model.titles)  # u.item names every item of u.data
    assert model.info["items_file"]["titled"] == 1682
    answer = model.recommend("196", 5).to_dict()
    assert [row["title"] for row in answer["items"]] == model.item_titles([row["item"] for row in answer["items"]])
    history = model.history("196")
    assert len(history) == 39 and history[0][1] == 5.0  # user 196 rated 39 films in u.data
    assert {item for item, _ in history}.isdisjoint(row["item"] for row in answer["items"])
