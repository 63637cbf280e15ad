"""`nlprec embed similar | analogy | evaluate`: JSON shapes, tables, one-line errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from nlprec.vectors import Vectors
from nlprec_cli.main import main


@pytest.fixture()
def vector_file(tmp_path):
    """man : king :: woman : queen planted among random words, saved as word2vec binary."""
    rng = np.random.default_rng(0)
    person, royal, female = (rng.standard_normal(16) for _ in range(3))
    named = {"man": person, "woman": person + female, "king": person + royal, "queen": person + royal + female}
    keys = list(named) + [f"w{i}" for i in range(40)]
    matrix = np.vstack([np.array(list(named.values())) + 0.05 * rng.standard_normal((4, 16)),
                        rng.standard_normal((40, 16))])
    return Vectors(keys, matrix).save(tmp_path / "vectors.bin")


def run(capsys, *args: str) -> tuple[int, str, str]:
    """Exit status, stdout and stderr of `nlprec *args`."""
    try:
        main([str(arg) for arg in args])
        status = 0
    except SystemExit as exit_:
        status = exit_.code
    out, err = capsys.readouterr()
    return status, out, err


def assert_one_line_error(status: int, err: str) -> str:
    assert status == 2
    lines = err.strip().split("\n")
    assert len(lines) == 1 and lines[0].startswith("error: ")
    return lines[0]


def test_similar_json_for_one_word_is_a_plain_list(capsys, vector_file):
    status, out, _ = run(capsys, "embed", "similar", vector_file, "king", "--k", "3", "--json")
    results = json.loads(out)
    assert status == 0 and len(results) == 3
    assert all(set(item) == {"word", "score"} and item["word"] != "king" for item in results)
    assert [item["score"] for item in results] == sorted((item["score"] for item in results), reverse=True)


def test_similar_json_for_several_words_names_each_query(capsys, vector_file):
    status, out, _ = run(capsys, "embed", "similar", vector_file, "king", "man", "--k", "2", "--json")
    results = json.loads(out)
    assert status == 0 and [item["query"] for item in results] == ["king", "man"]
    assert all(len(item["results"]) == 2 and set(item["results"][0]) == {"word", "score"} for item in results)


def test_similar_table(capsys, vector_file):
    status, out, _ = run(capsys, "embed", "similar", vector_file, "queen", "-k", "2")
    lines = out.strip().split("\n")
    assert status == 0 and lines[0] == "nearest to 'queen':"
    assert lines[1].split() == ["rank", "word", "score"] and lines[2].split()[0] == "1" and len(lines) == 4


@pytest.mark.parametrize("method", ["3cosadd", "3cosmul"])
def test_analogy_json(capsys, vector_file, method):
    status, out, _ = run(capsys, "embed", "analogy", vector_file, "man", "king", "woman", "--json", "--method", method)
    results = json.loads(out)
    assert status == 0 and len(results) == 5 and results[0]["word"] == "queen"
    assert all(set(item) == {"word", "score"} for item in results)


def test_analogy_table(capsys, vector_file):
    status, out, _ = run(capsys, "embed", "analogy", vector_file, "man", "king", "woman", "--k", "1")
    assert status == 0 and out.split("\n")[0] == "man : king :: woman : ?  (3cosadd)"
    assert out.split("\n")[2].split()[:2] == ["1", "queen"]


def test_evaluate_json(capsys, tmp_path, vector_file):
    questions = tmp_path / "questions.txt"
    questions.write_text(": royalty\nman king woman queen\nwoman queen man king\nman king unknown queen\n")
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("# w1\tw2\tscore\nking\tqueen\t8\nman\tw1\t1\nking\tw2\t0.5\nman\tnobody\t3\n")
    status, out, _ = run(capsys, "embed", "evaluate", vector_file, "--analogies", questions,
                         "--pairs", pairs, "--restrict-vocab", "100", "--json")
    report = json.loads(out)
    assert status == 0 and set(report) == {"analogy", "pairs"}
    analogy = report["analogy"]
    assert analogy["file"] == "questions.txt" and analogy["accuracy"] == 1.0
    assert (analogy["used"], analogy["skipped"], analogy["total"]) == (2, 1, 3)
    assert analogy["sections"] == {"royalty": {"correct": 2, "used": 2, "skipped": 1}}
    assert set(report["pairs"]) == {"pairs.tsv"}
    assert set(report["pairs"]["pairs.tsv"]) == {"spearman", "pearson", "pairs", "used", "skipped", "oov_ratio"}
    assert report["pairs"]["pairs.tsv"]["used"] == 3


def test_evaluate_table_and_nothing_to_do(capsys, tmp_path, vector_file):
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("king\tqueen\t8\nman\tw1\t1\nking\tw2\t0.5\n")
    status, out, _ = run(capsys, "embed", "evaluate", vector_file, "--pairs", pairs)
    assert status == 0 and out.split("\n")[0] == "word pairs:" and "pairs.tsv" in out
    status, _, err = run(capsys, "embed", "evaluate", vector_file)
    assert "nothing to evaluate" in assert_one_line_error(status, err)


def test_unknown_word_is_one_error_line_with_suggestions(capsys, vector_file):
    status, out, err = run(capsys, "embed", "similar", vector_file, "kng")
    line = assert_one_line_error(status, err)
    assert line.startswith("error: unknown word 'kng' (not in the 44-word vocabulary); did you mean: king")
    assert out == ""
    status, _, err = run(capsys, "embed", "analogy", vector_file, "man", "king", "wman", "--json")
    assert "unknown word 'wman'" in assert_one_line_error(status, err)


def test_truncated_binary_is_one_error_line(capsys, vector_file):
    data = vector_file.read_bytes()
    vector_file.write_bytes(data[: len(data) - 30])
    status, _, err = run(capsys, "embed", "similar", vector_file, "king")
    line = assert_one_line_error(status, err)
    assert line == f"error: {vector_file} is truncated: expected 44 vectors of dim 16, found 43"


def test_missing_vectors_and_bad_k(capsys, tmp_path, vector_file):
    status, _, err = run(capsys, "embed", "similar", tmp_path / "nope.vec", "king")
    assert "does not exist" in assert_one_line_error(status, err)
    status, _, err = run(capsys, "embed", "similar", vector_file, "king", "--k", "0")
    assert "--k" in assert_one_line_error(status, err)
