"""`nlprec classify train/predict/evaluate/cv` end to end on tiny files, and each bad input of
issue 12 as one `error:` line with exit status 2 and nothing written."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from nlprec.vectors import Vectors
from cli_support import run
from nlprec_cli.main import main

POS = "good great fine superb lovely".split()
NEG = "bad awful poor dull boring".split()
NOISE = "the a film movie plot actor scene it was and".split()
TINY = ["--set", "dim=16", "--set", "maps=8", "--epochs", "3", "--threads", "1", "--batch-size", "16",
        "--lr", "0.01", "--device", "cpu", "-q"]


pytestmark = pytest.mark.usefixtures("one_thread")


def lines(n: int = 160, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        label, pool = ("pos", POS) if i % 2 == 0 else ("neg", NEG)
        words = list(rng.choice(NOISE, rng.integers(3, 8))) + list(rng.choice(pool, 2))
        rng.shuffle(words)
        out.append(f"{label}\t{' '.join(words)}")
    return out


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cls")
    (folder / "train.tsv").write_text("\n".join(lines()) + "\n", encoding="utf-8")
    (folder / "test.tsv").write_text("\n".join(lines(60, seed=1)) + "\n", encoding="utf-8")
    torch.set_num_threads(1)
    main(["classify", "train", str(folder / "train.tsv"), "--out", str(folder / "clf"), "--seed", "1", *TINY])
    return folder


def test_predict_reads_stdin_and_writes_one_row_per_line(files, capsys, monkeypatch):
    texts = "a good superb film\nawful\u0085dull plot\nthe movie was lovely\n"
    code, out, err = run(["classify", "predict", files / "clf"], capsys, stdin=texts, monkeypatch=monkeypatch)
    assert code == 0, err
    rows = [row.split("\t") for row in out.splitlines()]
    assert [row[0] for row in rows] == ["pos", "neg", "pos"]
    assert all(0.5 <= float(row[1]) <= 1.0 for row in rows)


def test_predict_arguments_json_has_all_class_probabilities(files, capsys):
    code, out, _ = run(["classify", "predict", files / "clf", "great fine", "poor boring", "--json"], capsys)
    report = json.loads(out)
    assert code == 0 and report["classes"] == ["neg", "pos"]
    first = report["predictions"][0]
    assert first["label"] == "pos" and abs(sum(first["probabilities"].values()) - 1) < 1e-5
    assert first["probability"] == first["probabilities"]["pos"]


def test_evaluate_json_and_text(files, capsys):
    code, out, _ = run(["classify", "evaluate", files / "clf", files / "test.tsv", "--json"], capsys)
    report = json.loads(out)
    assert code == 0 and report["accuracy"] >= 0.9 and report["examples"] == 60
    assert sum(map(sum, report["confusion_matrix"])) == 60 and set(report["per_class"]) == {"neg", "pos"}
    code, out, _ = run(["classify", "evaluate", files / "clf", files / "test.tsv"], capsys)
    assert code == 0 and out.startswith("accuracy ") and "confusion matrix" in out


def test_evaluate_plot_draws_the_reported_confusion_matrix(files, tmp_path, capsys, monkeypatch):
    import numpy as np
    from matplotlib.image import imread

    from nlprec import plot

    saved = []
    real_save = plot.save
    monkeypatch.setattr(plot, "save", lambda figure, path: saved.append(figure) or real_save(figure, path))
    out = tmp_path / "confusion.png"
    code, stdout, _ = run(["classify", "evaluate", files / "clf", files / "test.tsv", "--json", "--plot", out], capsys)
    report = json.loads(stdout)
    assert code == 0 and len(saved) == 1 and imread(out)[..., :3].var() > 1e-3
    ax = saved[0].axes[0]
    assert np.array_equal(ax.images[0].get_array(), np.array(report["confusion_matrix"], float))
    assert [t.get_text() for t in ax.get_yticklabels()] == report["classes"]
    code, _, err = run(["classify", "evaluate", files / "clf", files / "test.tsv", "--plot", tmp_path / "c.gif"],
                       capsys)
    assert code == 2 and "expected .png, .svg or .pdf" in err and not (tmp_path / "c.gif").exists()


def test_same_seed_same_predictions(files, tmp_path, capsys):
    code, _, err = run(["classify", "train", files / "train.tsv", "--out", tmp_path / "again", "--seed", "1", *TINY],
                       capsys)
    assert code == 0, err
    probe = ["classify", "predict", "--json"]
    first = run([*probe[:2], files / "clf", "good plot", "the dull actor", "--json"], capsys)[1]
    second = run([*probe[:2], tmp_path / "again", "good plot", "the dull actor", "--json"], capsys)[1]
    assert first == second


def test_class_files_with_encoding_and_cv_json(tmp_path, capsys):
    pos = [line.split("\t")[1] for line in lines() if line.startswith("pos")]
    neg = [line.split("\t")[1] for line in lines() if line.startswith("neg")]
    (tmp_path / "p.txt").write_bytes(("\n".join(pos) + "\ncaf\xe9 good\n").encode("latin-1"))
    (tmp_path / "n.txt").write_bytes(("\n".join(neg) + "\n").encode("latin-1"))
    classes = ["--class-file", f"pos={tmp_path / 'p.txt'}", "--class-file", f"neg={tmp_path / 'n.txt'}",
               "--encoding", "latin-1"]
    code, out, err = run(["classify", "cv", *classes, "--folds", "3", "--seed", "0", "--json", *TINY], capsys)
    assert code == 0, err
    report = json.loads(out)
    assert len(report["per_fold"]) == 3 and report["accuracy"]["mean"] >= 0.8 and report["examples"] == 161


def write(path, text: str):
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("content, extra, message", [
    ("pos\tgood film\nneg awful film\n", [], r"bad.tsv: line 2 has 1 field\(s\), no column 1"),
    ("pos\tgood film\nneg\t \n", [], r"bad.tsv: line 2 has an empty text"),
    ("pos\tgood film\npos\tfine film\n", [], r"bad.tsv: only one class \('pos'\)"),
    ("label\ttext\npos\tgood\nneg\tbad\n", ["--label-col", "sentiment", "--text-col", "text"],
     r"bad.tsv: no column named 'sentiment' for --label-col"),
])
def test_bad_training_files_are_one_line_errors_and_write_nothing(tmp_path, capsys, content, extra, message):
    data = write(tmp_path / "bad.tsv", content)
    code, out, err = run(["classify", "train", data, "--out", tmp_path / "out", *extra, *TINY], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and err.startswith("error: ")
    import re

    assert re.search(message, err), err
    assert not (tmp_path / "out").exists()


def test_embeddings_whose_dim_disagrees_with_set_dim(files, tmp_path, capsys):
    rng = np.random.default_rng(0)
    Vectors(POS + NEG, rng.standard_normal((10, 12))).save(tmp_path / "v.bin")
    code, _, err = run(["classify", "train", files / "train.tsv", "--embeddings", tmp_path / "v.bin", "--out",
                        tmp_path / "out", *TINY], capsys)
    assert code == 2 and "--set dim=16 disagrees with the embeddings' dimension 12" in err
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "out").exists()


@pytest.mark.parametrize("command", ["predict", "evaluate"])
def test_a_folder_that_is_not_a_classifier(tmp_path, files, capsys, command):
    write(tmp_path / "config.json", '{"format": "nlprec-translation-v1"}')
    extra = ["some text"] if command == "predict" else [files / "test.tsv"]
    code, out, err = run(["classify", command, tmp_path, *extra], capsys)
    assert code == 2 and out == "" and "not a classifier config" in err and len(err.strip().splitlines()) == 1
    code, _, err = run(["classify", command, files, *extra], capsys)
    assert code == 2 and "not a classifier folder (no config.json)" in err


def test_empty_text_to_predict_and_unknown_label_to_evaluate(files, tmp_path, capsys, monkeypatch):
    code, out, err = run(["classify", "predict", files / "clf"], capsys, stdin="good\n\nbad\n", monkeypatch=monkeypatch)
    assert code == 2 and out == "" and "text 2 is empty" in err
    data = write(tmp_path / "t.tsv", "pos\tgood\nmeh\tso so\n")
    code, _, err = run(["classify", "evaluate", files / "clf", data], capsys)
    assert code == 2 and "label 'meh', which the model does not know" in err
