"""`nlprec rec` end to end on a slice of MovieLens u.data: train -> score -> recommend -> evaluate,
JSON shapes, one-line errors with exit status 2 and nothing written, the popularity notice."""

from __future__ import annotations

import json

import pytest
import torch

from nlprec_cli.main import main


@pytest.fixture(scope="module")
def udata_slice(corpora_dir, tmp_path_factory):
    """The first 4,000 lines of ml-100k u.data, written to a temporary folder (never the repo)."""
    with open(corpora_dir / "ml-100k" / "u.data", encoding="utf-8") as handle:
        lines = [next(handle) for _ in range(4000)]
    path = tmp_path_factory.mktemp("cli") / "ratings.tsv"
    path.write_text("".join(lines), encoding="utf-8")
    return path


def run(capsys, *argv):
    """Run the CLI; returns (exit status, stdout, stderr)."""
    capsys.readouterr()
    try:
        main(list(map(str, argv)))
        code = 0
    except SystemExit as exit_:
        code = exit_.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def neumf_dir(udata_slice, tmp_path_factory):
    out = tmp_path_factory.mktemp("models") / "nm"
    main(["rec", "train", str(udata_slice), "--model", "neumf", "--loss", "bpr", "--out", str(out), "--epochs", "2",
          "--eval-negatives", "50", "--recent", "2", "--recent-copies", "1", "--quiet", "--device", "cpu"])
    return out


@pytest.mark.corpora
def test_train_score_recommend_evaluate_neumf(neumf_dir, tmp_path, capsys):
    for name in ("config.json", "model.pt", "users.json", "items.json", "split.npz", "metrics.json"):
        assert (neumf_dir / name).is_file()
    assert json.loads((neumf_dir / "config.json").read_text())["recent"] == [2, 1]  # the recency weight recorded
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("user\titem\n196\t242\n186\t302\nstranger\t242\n22\t377\n")
    code, out, err = run(capsys, "rec", "score", neumf_dir, pairs, "--out", tmp_path / "scores.tsv")
    assert code == 0
    rows = [line.split("\t") for line in (tmp_path / "scores.tsv").read_text().splitlines()]
    assert rows[0] == ["user", "item", "score"]
    assert [row[:2] for row in rows[1:]] == [["196", "242"], ["186", "302"], ["stranger", "242"], ["22", "377"]]
    assert all(float(row[2]) == float(row[2]) for row in rows[1:])  # no NaN
    assert "notice:" in err and "'stranger'" in err and "popularity" in err

    code, out, err = run(capsys, "rec", "recommend", neumf_dir, "--user", "196", "--k", "5", "--json")
    answer = json.loads(out)
    assert code == 0 and answer["user"] == "196" and answer["source"] == "model" and len(answer["items"]) == 5
    assert set(answer["items"][0]) == {"item", "score"}
    scores = [entry["score"] for entry in answer["items"]]
    assert scores == sorted(scores, reverse=True)

    code, out, err = run(capsys, "rec", "recommend", neumf_dir, "--user", "stranger", "--k", "3")
    assert code == 0 and "(popularity)" in out and err.startswith("notice: user 'stranger' is not in the training data")

    code, out, err = run(capsys, "rec", "evaluate", neumf_dir, "--json")
    result = json.loads(out)
    assert code == 0 and set(result["metrics"]) == {"hr@10", "ndcg@10", "auc", "n"}
    assert "leave-one-out" in result["protocol"] and "50 items the user never interacted with" in result["protocol"]
    saved = json.loads((neumf_dir / "metrics.json").read_text())
    assert result["metrics"] == pytest.approx(saved["metrics"])  # the saved negatives reproduce the protocol

    code, out, err = run(capsys, "rec", "evaluate", neumf_dir, "--protocol", "full", "--k", "20")
    assert code == 0 and out.startswith("protocol: leave-one-out") and "full ranking" in out and "hr@20" in out

    code, out, err = run(capsys, "rec", "similar", neumf_dir, "--item", "242", "--k", "4", "--json")
    assert code == 0 and len(json.loads(out)["similar"]) == 4


@pytest.mark.corpora
def test_explicit_models_train_and_score(udata_slice, tmp_path, capsys):
    for model in ("mf", "autorec"):
        out = tmp_path / model
        code, stdout, err = run(capsys, "rec", "train", udata_slice, "--model", model, "--out", out, "--epochs", "2",
                                "--quiet", "--device", "cpu")
        assert code == 0 and "random split: 10% of interactions as test (seed 0)" in stdout and "rmse" in stdout
        pairs = tmp_path / "pairs.tsv"
        pairs.write_text("196\t242\n186\t302\n")
        code, _, _ = run(capsys, "rec", "score", out, pairs, "--out", tmp_path / f"{model}.tsv")
        values = [float(line.split("\t")[2]) for line in (tmp_path / f"{model}.tsv").read_text().splitlines()[1:]]
        assert code == 0 and len(values) == 2 and all(1.0 <= v <= 5.0 for v in values)  # predicted ratings
        code, stdout, _ = run(capsys, "rec", "evaluate", out, "--json")
        assert code == 0 and set(json.loads(stdout)["metrics"]) == {"rmse", "mae", "n"}


def assert_one_line_error(code, out, err, pattern):
    assert code == 2, (code, out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and pattern in lines[0], err


@pytest.mark.corpora
def test_bad_input_is_one_error_line_exit_2_and_nothing_written(udata_slice, neumf_dir, tmp_path, capsys):
    bad = tmp_path / "bad.tsv"
    bad.write_text("1\t2\t5\t881250949\n1\t3\t9\t881250950\n")
    out = tmp_path / "never"
    code, stdout, err = run(capsys, "rec", "train", bad, "--out", out, "--rating-range", "1,5")
    assert_one_line_error(code, stdout, err, "bad.tsv line 2: rating 9 is outside the range [1, 5]")
    assert not out.exists()

    bad.write_text("1\t2\t5\t881250949\n1\t2\t4\t881250950\n")
    assert_one_line_error(*run(capsys, "rec", "train", bad, "--out", out), "line 2: duplicate pair")
    assert_one_line_error(*run(capsys, "rec", "train", udata_slice, "--model", "nope", "--out", out),
                          "unknown model 'nope'")
    assert_one_line_error(*run(capsys, "rec", "train", udata_slice, "--out", out, "--set", "dim"),
                          "expected key=value")
    assert not out.exists()

    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("196\t242\n196\tno-such-item\n")
    target = tmp_path / "scores.tsv"
    assert_one_line_error(*run(capsys, "rec", "score", neumf_dir, pairs, "--out", target),
                          "pairs.tsv line 2: unknown item 'no-such-item'")
    assert not target.exists()
    code, _, err = run(capsys, "rec", "score", neumf_dir, pairs, "--out", target, "--unknown-items", "nan")
    assert code == 0 and target.read_text().splitlines()[2] == "196\tno-such-item\tnan" and "scored nan" in err

    pairs.write_text("196 242\n")
    assert_one_line_error(*run(capsys, "rec", "score", neumf_dir, pairs, "--out", target), "expected user<TAB>item")
    assert_one_line_error(*run(capsys, "rec", "evaluate", tmp_path), "not a trained recommender folder")
    assert_one_line_error(*run(capsys, "rec", "recommend", neumf_dir, "--user", "196", "--k", "0"), "k=0")
