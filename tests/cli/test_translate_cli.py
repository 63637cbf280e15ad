"""`nlprec translate train/run/evaluate` and `nlprec bleu` end to end on a tiny pairs file, and
each bad input as a one-line error with exit status 2."""

from __future__ import annotations

import json

import numpy as np
import pytest
import sacrebleu
import torch

from cli_support import run
from nlprec_cli.main import main

WORDS = "cat dog bird fish runs sleeps eats small big red blue the a".split()


pytestmark = pytest.mark.usefixtures("one_thread")


def write_pairs(path, n: int = 200):
    rng = np.random.default_rng(0)
    lines = []
    for _ in range(n):
        words = list(rng.choice(WORDS, rng.integers(1, 6)))
        lines.append(" ".join(words) + "\t" + " ".join(w.upper() for w in reversed(words)))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli")
    pairs = write_pairs(folder / "pairs.tsv")
    argv = ["translate", "train", str(pairs), "--out", str(folder / "tfm"), "--max-steps", "5", "--vocab-size", "500",
            "--valid-size", "20", "--max-tokens", "300", "--threads", "1", "--warmup", "2", "--device", "cpu", "-q",
            "--set", "d_model=32", "--set", "heads=2", "--set", "encoder_layers=1", "--set", "decoder_layers=1",
            "--set", "d_ff=64"]
    torch.set_num_threads(1)
    main(argv)
    return folder / "tfm", pairs


def test_train_writes_a_model_folder(model_dir):
    folder, _ = model_dir
    config = json.loads((folder / "config.json").read_text())
    assert config["model_config"]["d_model"] == 32 and config["options"]["max_steps"] == 5
    assert config["model_config"]["src_vocab"] < 500  # capped to what the tiny file supports


def test_run_from_stdin_one_line_per_line(model_dir, capsys, monkeypatch):
    code, out, _ = run(["translate", "run", str(model_dir[0]), "--beam", "2"], capsys,
                       stdin="the cat runs\n\na big dog\n", monkeypatch=monkeypatch)
    assert code == 0 and len(out.split("\n")) == 4 and out.split("\n")[1] == ""


def test_run_from_arguments_with_nbest(model_dir, capsys):
    code, out, _ = run(["translate", "run", str(model_dir[0]), "the cat runs", "a dog", "--beam", "3",
                        "--nbest", "3"], capsys)
    rows = [line.split("\t") for line in out.strip("\n").split("\n")]
    assert code == 0 and len(rows) == 6 and [r[0] for r in rows] == ["0", "0", "0", "1", "1", "1"]
    scores = [float(r[1]) for r in rows[:3]]
    assert scores == sorted(scores, reverse=True)
    code, _, err = run(["translate", "run", str(model_dir[0]), "x", "--beam", "2", "--nbest", "3"], capsys)
    assert code == 2 and err.startswith("error:") and "--nbest" in err


def test_evaluate_json_and_bleu(model_dir, capsys, tmp_path):
    folder, pairs = model_dir
    code, out, _ = run(["translate", "evaluate", str(folder), str(pairs), "--beam", "2", "--json"], capsys)
    report = json.loads(out)
    assert code == 0 and report["sentences"] == 200 and report["bleu_signature"].startswith("nrefs:1")
    assert {"bleu", "chrf", "chrf_signature", "sentences_per_s"} <= set(report)
    code, out, _ = run(["translate", "evaluate", str(folder), str(pairs), "--beam", "1"], capsys)
    assert code == 0 and out.startswith("BLEU = ") and "tok:13a" in out and "chrF = " in out
    hypotheses, references = ["a cat sat here", "hello world"], ["the cat sat here", "hello world"]
    (tmp_path / "h.txt").write_text("\n".join(hypotheses) + "\n", encoding="utf-8")
    (tmp_path / "r.txt").write_text("\n".join(references) + "\n", encoding="utf-8")
    code, out, _ = run(["bleu", str(tmp_path / "h.txt"), str(tmp_path / "r.txt")], capsys)
    expected = sacrebleu.corpus_bleu(hypotheses, [references]).score
    assert code == 0 and out.startswith(f"BLEU = {expected:.2f}  nrefs:1|case:mixed|eff:no|tok:13a")
    code, out, _ = run(["bleu", str(tmp_path / "h.txt"), str(tmp_path / "r.txt"), "--json"], capsys)
    assert json.loads(out)["bleu"] == expected


def test_show_attention_of_a_transformer(model_dir, capsys):
    code, out, _ = run(["translate", "run", str(model_dir[0]), "the cat", "--show-attention"], capsys)
    lines = out.strip("\n").split("\n")
    assert code == 0 and len(lines) >= 2 and lines[-1].startswith("</s>")
    code, _, err = run(["translate", "run", str(model_dir[0]), "the cat", "--show-attention", "--layer", "3"], capsys)
    assert code == 2 and err.startswith("error: --layer 3: this model has 1 decoder layers")


def test_gru_show_attention_table(tmp_path, capsys):
    pairs = write_pairs(tmp_path / "p.tsv", n=100)
    code, _, _ = run(["translate", "train", str(pairs), "--out", str(tmp_path / "gru"), "--arch", "gru-attention",
                      "--max-steps", "3", "--vocab-size", "60", "--valid-size", "10", "--threads", "1",
                      "--device", "cpu", "-q",
                      "--set", "embed_dim=16", "--set", "hidden=16", "--set", "decoder_hidden=16",
                      "--set", "attention_dim=16"], capsys)
    assert code == 0
    code, out, _ = run(["translate", "run", str(tmp_path / "gru"), "the cat", "--show-attention"], capsys)
    lines = out.strip("\n").split("\n")
    assert code == 0 and len(lines) >= 2 and lines[-1].startswith("</s>")


@pytest.mark.parametrize("content, message", [
    (b"the cat\tLE CHAT\nno tab\n", "line 2 has no TAB"),
    (b"the cat\t\n", "line 1 has an empty target side"),
    (b"\xff\xfeb\x00a\x00d\x00\n", "line 1 (byte 0) is not valid utf-8"),
])
def test_bad_pairs_file_is_one_line_error(tmp_path, capsys, content, message):
    bad = tmp_path / "bad.tsv"
    bad.write_bytes(content)
    code, _, err = run(["translate", "train", str(bad), "--out", str(tmp_path / "m"), "-q"], capsys)
    assert code == 2 and message in err and str(bad) in err and err.count("\n") == 1
    assert not (tmp_path / "m" / "config.json").exists()


def test_bad_model_folder_and_bleu_count_mismatch(tmp_path, capsys):
    code, _, err = run(["translate", "run", str(tmp_path), "hello"], capsys)
    assert code == 2 and "not a translation model folder" in err and err.count("\n") == 1
    (tmp_path / "h.txt").write_text("a\nb\n", encoding="utf-8")
    (tmp_path / "r.txt").write_text("a\n", encoding="utf-8")
    code, _, err = run(["bleu", str(tmp_path / "h.txt"), str(tmp_path / "r.txt")], capsys)
    assert code == 2 and "has 2 lines but" in err and err.count("\n") == 1
    code, _, err = run(["translate", "train", str(tmp_path / "h.txt"), "--arch", "lstm"], capsys)
    assert code == 2 and "--arch" in err
    code, _, err = run(["translate", "train", str(tmp_path / "h.txt"), "--set", "oops"], capsys)
    assert code == 2 and "key=value" in err
