"""`nlprec embed train` end to end: the demo corpus, a user corpus, resume, and bad input."""

from __future__ import annotations

import json

import pytest

from nlprec.vectors import Vectors
from cli_support import run


def test_demo_corpus_trains_and_prints_neighbours(tmp_path, capsys):
    out = tmp_path / "demo.bin"
    code, stdout, _ = run(["embed", "train", "--out", str(out), "--epochs", "2", "--dim", "32", "--device", "cpu",
                           "-q"], capsys)
    assert code == 0
    assert "built-in demo corpus" in stdout and "nearest neighbours:" in stdout
    cat_line = next(line for line in stdout.splitlines() if line.strip().startswith("cat ->"))
    assert any(animal in cat_line for animal in ("dog", "rabbit", "hamster", "parrot"))
    assert Vectors.load(out).dim == 32


def test_user_corpus_then_query_and_evaluate(tmp_path, capsys, corpora_dir):
    out = tmp_path / "ptb.vec"
    corpus = corpora_dir / "ptb" / "ptb.valid.txt"
    code, _, _ = run(["embed", "train", str(corpus), "--out", str(out), "--epochs", "1", "--dim", "20",
                      "--arch", "cbow", "--objective", "hierarchical", "--min-count", "3", "--device", "cpu", "-q"],
                     capsys)
    assert code == 0
    code, stdout, _ = run(["embed", "similar", str(out), "market", "--k", "3", "--json"], capsys)
    assert code == 0 and len(json.loads(stdout)) == 3
    code, stdout, _ = run(["embed", "evaluate", str(out), "--pairs", str(corpora_dir / "wordeval" / "wordsim353.tsv"),
                           "--json"], capsys)
    assert code == 0 and "wordsim353.tsv" in json.loads(stdout)["pairs"]


def test_resume_of_a_finished_run_keeps_its_vectors(tmp_path, capsys):
    out = tmp_path / "v.npz"
    args = ["embed", "train", "--out", str(out), "--epochs", "1", "--dim", "16", "--device", "cpu", "-q"]
    assert run(args, capsys)[0] == 0
    written = out.read_bytes()
    code, stdout, _ = run([*args, "--resume"], capsys)
    assert code == 0 and "nothing to resume" in stdout and out.read_bytes() == written
    code, _, stderr = run([*args, "--dim", "8", "--resume"], capsys)  # other options: not this run's result
    assert code == 2 and "--resume: no checkpoint at" in stderr


@pytest.mark.parametrize("extra, message", [
    (["--dim", "0"], "error: --dim must be >= 1, got 0"),
    (["--arch", "glovey"], "error: --arch must be one of"),
    (["--min-count", "1000000"], "no word occurs at least 1000000 times"),
    (["--resume"], "--resume: no checkpoint at"),
])
def test_bad_options_are_one_line_errors(tmp_path, capsys, extra, message):
    code, _, stderr = run(["embed", "train", "--out", str(tmp_path / "v.bin"), "-q", *extra], capsys)
    assert code == 2
    assert len(stderr.strip().splitlines()) == 1 and message in stderr
    assert not (tmp_path / "v.bin").exists()


def test_empty_corpus_is_one_line_error(tmp_path, capsys):
    corpus = tmp_path / "empty.txt"
    corpus.write_text("")
    code, _, stderr = run(["embed", "train", str(corpus), "--out", str(tmp_path / "v.bin")], capsys)
    assert code == 2 and stderr.strip() == f"error: {corpus} has no tokens; expected text with at least one word"


def test_list_shows_registered_models(capsys):
    code, stdout, _ = run(["list"], capsys)
    assert code == 0 and "word2vec" in stdout



def test_chunk_words_is_for_word2vec_and_fasttext(tmp_path, capsys):
    code, _, err = run(["embed", "train", "--arch", "glove", "--chunk-words", "5000", "--out", tmp_path / "g.vec"],
                       capsys)
    assert code == 2 and "--chunk-words applies to word2vec and fastText" in err
    code, _, _ = run(["embed", "train", "--chunk-words", "2000", "--epochs", "1", "--dim", "8", "--threads", "1",
                      "--device", "cpu", "-q", "--out", tmp_path / "v.npz"], capsys)
    assert code == 0 and Vectors.load(tmp_path / "v.npz").meta["options"]["chunk_words"] == 2000



def test_a_resume_where_auto_picks_another_backend_is_refused_in_one_line(tmp_path, capsys, monkeypatch):
    """A run whose --backend auto became the torch backend (on a GPU) resumed where auto picks
    numba (a CPU): its chunks and optimizer state belong to the other backend, so the resume
    names the backend to ask for instead of training on with mismatched state."""
    from nlprec.tasks import embeddings

    from nlprec.errors import NlprecError

    def full_disk(self, path):
        raise NlprecError(f"{path}: disk full")

    out = tmp_path / "v.npz"
    with monkeypatch.context() as patch:
        patch.setattr(embeddings, "_resolve_backend", lambda backend, device: "torch")  # as on a GPU
        patch.setattr(Vectors, "save", full_disk)  # the vectors are not written: the training stays in last.pt
        code, _, err = run(["embed", "train", "--device", "cpu", "--epochs", "1", "--dim", "8", "--threads", "1",
                            "-q", "--out", out], capsys)
    assert code == 2 and "rerun with --resume" in err
    code, _, err = run(["embed", "train", "--device", "cpu", "--epochs", "1", "--dim", "8", "--threads", "1", "-q",
                        "--out", out, "--resume"], capsys)
    assert code == 2 and "trained with the torch backend" in err and "--backend torch" in err
    assert err.count("\n") == 1, err
