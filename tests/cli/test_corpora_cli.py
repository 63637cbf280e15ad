"""`nlprec corpora list | path | verify` through the CLI entry point."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nlprec_cli.main import main


@pytest.fixture(autouse=True)
def empty_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An empty cache and no mirror unless the test sets one."""
    monkeypatch.setenv("NLPREC_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("NLPREC_CORPORA", raising=False)


def test_list_shows_every_corpus_found_in_the_mirror(corpora_dir: Path, monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setenv("NLPREC_CORPORA", str(corpora_dir))
    main(["corpora", "list"])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["name", "files", "size", "licence", "where"]
    rows = {line.split()[0]: line for line in lines[1:]}
    assert set(rows) == {"fra-eng", "imdb", "ml-100k", "ptb", "rt-polarity", "wikitext-2", "wordeval"}
    assert rows["ptb"].split()[1:3] == ["4", "5.7"] and rows["ptb"].endswith("mirror")


def test_list_json_without_mirror_says_missing(capsys: pytest.CaptureFixture) -> None:
    main(["corpora", "list", "--json"])
    rows = json.loads(capsys.readouterr().out)
    assert {row["where"] for row in rows} == {"missing"}
    wikitext = next(row for row in rows if row["name"] == "wikitext-2")
    assert wikitext["licence"] == "CC BY-SA 3.0" and len(wikitext["files"]) == 2


def test_path_prints_mirror_paths(corpora_dir: Path, monkeypatch: pytest.MonkeyPatch,
                                  capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setenv("NLPREC_CORPORA", str(corpora_dir))
    main(["corpora", "path", "ptb"])
    main(["corpora", "path", "ptb", "ptb.valid.txt"])
    expected = [str(corpora_dir / "ptb"), str(corpora_dir / "ptb" / "ptb.valid.txt")]
    assert capsys.readouterr().out.splitlines() == expected


def test_verify_prints_ok_per_file(corpora_dir: Path, monkeypatch: pytest.MonkeyPatch,
                                   capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setenv("NLPREC_CORPORA", str(corpora_dir))
    main(["corpora", "verify", "ptb", "wordeval"])
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 8 and all(line.startswith("ok  ") for line in lines)


def test_verify_exits_1_when_files_are_missing(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["corpora", "verify", "--sizes-only", "wordeval"])
    assert caught.value.code == 1
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 4 and all(line.startswith("bad wordeval/") and "missing" in line for line in lines)


@pytest.mark.parametrize("argv, message", [
    (["corpora", "verify", "nope"], "error: unknown corpus 'nope'; known corpora: fra-eng, imdb"),
    (["corpora", "path", "ptb", "nope.txt"], "error: corpus 'ptb' has no file 'nope.txt'"),
    (["corpora", "path", "imdb", "--no-download"], "error: imdb/imdb_train.tsv.gz is neither in NLPREC_CORPORA"),
])
def test_bad_input_is_one_error_line_and_status_2(argv: list[str], message: str, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as caught:
        main(argv)
    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(message) and err.count("\n") == 1
