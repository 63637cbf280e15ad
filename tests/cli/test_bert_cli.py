"""`nlprec bert pretrain/fill/evaluate/embed` end to end on a tiny corpus, and each bad input as a
one-line error with exit status 2 that writes nothing."""

from __future__ import annotations

import io
import json
import sys

import numpy as np
import pytest
import torch

from cli_support import run
from nlprec_cli.main import main

TINY = ["--set", "hidden=32", "--set", "layers=1", "--set", "heads=2", "--set", "d_ff=64"]
WORDS = "the cat dog bird fish runs sleeps eats small big red blue".split()


pytestmark = pytest.mark.usefixtures("one_thread")


def write_reviews(path, n: int = 60):
    """One document per line, several sentences each."""
    rng = np.random.default_rng(0)
    lines = [" ".join(" ".join(rng.choice(WORDS, rng.integers(3, 7))) + "." for _ in range(4)) for _ in range(n)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def pretrain_argv(corpus, out, *extra):
    return ["bert", "pretrain", str(corpus), "--out", str(out), "--max-steps", "3", "--vocab-size", "60",
            "--max-len", "32", "--batch-size", "8", "--threads", "1", "--device", "cpu", "-q", *TINY, *extra]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bert-cli")
    corpus = write_reviews(folder / "reviews.txt")
    torch.set_num_threads(1)
    main(pretrain_argv(corpus, folder / "bert", "--format", "documents", "--heldout-fraction", "0.1"))
    return folder / "bert", corpus


def test_pretrain_writes_a_model_folder(model_dir):
    folder, _ = model_dir
    config = json.loads((folder / "config.json").read_text())
    assert config["corpus_format"] == "documents" and config["options"]["max_steps"] == 3
    assert (folder / "spm.model").is_file() and (folder / "model.pt").is_file()


def test_fill_json_and_text(model_dir, capsys):
    code, out, _ = run(["bert", "fill", str(model_dir[0]), "the [MASK] runs [MASK] .", "--k", "2", "--json"], capsys)
    assert code == 0
    result = json.loads(out)
    assert len(result) == 1 and len(result[0]["masks"]) == 2 and all(len(m) == 2 for m in result[0]["masks"])
    code, out, _ = run(["bert", "fill", str(model_dir[0]), "a [MASK] cat ."], capsys)
    assert code == 0 and "[MASK] 1:" in out


def test_evaluate_json_keys(model_dir, capsys):
    code, out, _ = run(["bert", "evaluate", str(model_dir[0]), str(model_dir[1]), "--format", "documents", "--json"],
                       capsys)
    report = json.loads(out)
    assert code == 0 and {"mlm_accuracy", "mlm_perplexity", "nsp_accuracy", "examples", "masking_seed"} <= set(report)


def test_embed_stdin_to_stdout_npy_and_to_a_file(model_dir, capsys, monkeypatch, tmp_path):
    monkeypatch.setattr(sys, "stdout", io.TextIOWrapper(io.BytesIO(), encoding="utf-8"))
    monkeypatch.setattr(sys, "stdin", io.StringIO("the cat runs\nbig dog\n\n"))
    main(["bert", "embed", str(model_dir[0]), "--pooling", "mean"])
    sys.stdout.flush()
    vectors = np.load(io.BytesIO(sys.stdout.buffer.getvalue()))
    assert vectors.shape == (3, 32) and vectors.dtype == np.float32
    monkeypatch.undo()
    out = tmp_path / "v.npy"
    code, _, _ = run(["bert", "embed", str(model_dir[0]), "--out", str(out)], capsys, stdin="the cat runs\n",
                     monkeypatch=monkeypatch)
    assert code == 0 and np.load(out).shape == (1, 32)


def test_bad_inputs_exit_2_with_one_line_and_write_nothing(model_dir, capsys, monkeypatch, tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("\n", encoding="utf-8")
    single = tmp_path / "single.txt"
    single.write_text("Just one review. With two sentences.\n", encoding="utf-8")
    cases = [
        (pretrain_argv(empty, tmp_path / "o1"), "no text", tmp_path / "o1"),
        (pretrain_argv(single, tmp_path / "o2"), "--no-nsp", tmp_path / "o2"),
        (pretrain_argv(model_dir[1], tmp_path / "o3", "--max-len", "7"), "--max-len must be >= 8", tmp_path / "o3"),
        (["bert", "fill", str(model_dir[0]), "no mask in this text"], "no [MASK]", None),
        (["bert", "fill", str(tmp_path), "a [MASK] ."], "not a BERT model folder", None),
        (["bert", "evaluate", str(tmp_path / "missing"), str(model_dir[1])], "no such model folder", None),
    ]
    for argv, message, out in cases:
        code, stdout, err = run(argv, capsys)
        assert code == 2 and err.startswith("error: ") and message in err and err.count("\n") == 1, (argv, err)
        assert stdout == "" and (out is None or not out.exists())
    code, _, err = run(["bert", "embed", str(model_dir[0]), "--out", str(tmp_path / "v.npy")], capsys, stdin="",
                       monkeypatch=monkeypatch)
    assert code == 2 and "no sentences" in err and not (tmp_path / "v.npy").exists()


def test_classify_fine_tunes_a_pretrained_bert(model_dir, capsys, tmp_path):
    rng = np.random.default_rng(1)
    rows = [f"{label}\t{' '.join(rng.choice(words, 5))} ." for _ in range(40)
            for label, words in (("pos", ["small", "red", "cat"]), ("neg", ["big", "blue", "dog"]))]
    data = tmp_path / "train.tsv"
    data.write_text("\n".join(rows) + "\n", encoding="utf-8")
    out = tmp_path / "clf"
    code, _, err = run(["classify", "train", str(data), "--model", "bert", "--init", str(model_dir[0]), "--out",
                        str(out), "--epochs", "2", "--threads", "1", "--seed", "1", "--device", "cpu", "-q"], capsys)
    assert code == 0, err
    config = json.loads((out / "config.json").read_text())
    assert config["registry_name"] == "bert-classifier" and config["init"] == str(model_dir[0])
    assert config["encoder"]["kind"] == "bert-pieces" and (out / "spm.model").is_file()
    pretrained = torch.load(model_dir[0] / "model.pt", weights_only=True)
    assert config["model_config"]["hidden"] == 32 and pretrained["encoder.token_embed.weight"].shape[1] == 32
    code, stdout, _ = run(["classify", "predict", str(out), "small red cat .", "big blue dog ."], capsys)
    assert code == 0 and len(stdout.strip().split("\n")) == 2
    code, stdout, _ = run(["classify", "evaluate", str(out), str(data), "--json"], capsys)
    assert code == 0 and 0 <= json.loads(stdout)["accuracy"] <= 1
    code, _, err = run(["classify", "train", str(data), "--model", "bert", "--out", str(tmp_path / "x"), "-q"],
                       capsys)
    assert code == 2 and "--init" in err and not (tmp_path / "x").exists()
