"""`nlprec rec train --items`: item titles from a u.item-style file, kept in the folder and
printed by `rec recommend`; a bad file is one error line, exit status 2, nothing written."""

from __future__ import annotations

import json

from tests.cli_support import run


def _ratings(tmp_path):
    ratings = tmp_path / "u.data"
    ratings.write_text("".join(f"{user}\t{item}\t{1 + (user + item) % 5}\t{user * 100 + item}\n"
                               for user in range(20) for item in range(10) if (user + item) % 3), encoding="utf-8")
    return ratings


def test_titles_are_kept_and_printed(tmp_path, capsys):
    items = tmp_path / "u.item"
    items.write_bytes("".join(f"{item}|Film {item} (été)|01-Jan-1995||\n" for item in range(9)).encode("latin-1"))
    out = tmp_path / "mf"
    code, _, err = run(["rec", "train", _ratings(tmp_path), "--out", out, "--items", items, "--epochs", "1",
                        "--device", "cpu", "--quiet"], capsys)
    assert code == 0, err
    config = json.loads((out / "config.json").read_text())
    assert config["items_file"]["path"] == str(items) and config["items_file"]["titled"] == 9
    code, printed, _ = run(["rec", "recommend", out, "--user", "1", "--k", "10", "--json"], capsys)
    rows = json.loads(printed)["items"]
    assert code == 0 and rows and all(row["title"] == (f"Film {row['item']} (été)" if row["item"] != "9" else None)
                                      for row in rows)
    code, printed, _ = run(["rec", "recommend", out, "--user", "1", "--k", "3"], capsys)
    lines = printed.splitlines()[1:]  # "rank  item<TAB>score<TAB>title" under "user 1 (model):"
    assert code == 0 and len(lines) == 3
    for line in lines:
        rank_item, _, *title = line.split("\t")
        item = rank_item.split()[1]
        assert title == ([f"Film {item} (été)"] if item != "9" else [])


def test_a_bad_items_file_is_one_line_exit_2_and_nothing_written(tmp_path, capsys):
    items = tmp_path / "u.item"
    items.write_text("1|One\n2 Two\n", encoding="utf-8")
    out = tmp_path / "mf"
    code, _, err = run(["rec", "train", _ratings(tmp_path), "--out", out, "--items", items, "--epochs", "1",
                        "--device", "cpu", "--quiet"], capsys)
    assert code == 2 and err.strip().splitlines() == [f"error: {items}:2: expected 'id|title|...' (MovieLens "
                                                      "u.item), got '2 Two'"]
    assert not out.exists() or not any(out.iterdir())
