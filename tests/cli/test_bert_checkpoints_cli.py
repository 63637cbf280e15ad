"""`nlprec bert import / embed / export` and `classify train --model bert --init <imported>` end to end
on small random transformers and sentence-transformers checkpoints (tests/hf_bert_support.py), and
the bad inputs as one-line errors with exit status 2 that write nothing."""

from __future__ import annotations

import io
import json
import sys

import numpy as np
import pytest

pytest.importorskip("sentence_transformers", reason="the checkpoints are built with sentence-transformers (dev extra)")

from cli_support import run  # noqa: E402
from hf_bert_support import imdb_texts, write_bert, write_sentence_transformer  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def texts(corpora_dir):
    return imdb_texts(corpora_dir, 300)


def embed_stdout(argv, lines, monkeypatch):
    """`nlprec bert embed` with `lines` on stdin; the .npy it writes to stdout, loaded."""
    from nlprec_cli.main import main

    monkeypatch.setattr(sys, "stdin", io.StringIO("\n".join(lines) + "\n"))
    monkeypatch.setattr(sys, "stdout", io.TextIOWrapper(io.BytesIO(), encoding="utf-8"))
    main([str(arg) for arg in argv])
    sys.stdout.flush()
    vectors = np.load(io.BytesIO(sys.stdout.buffer.getvalue()))
    monkeypatch.undo()
    return vectors


def test_import_a_sentence_transformer_and_embed_as_it_does(tmp_path, texts, capsys, monkeypatch):
    model = write_sentence_transformer(tmp_path / "st", texts, "mean", True, max_seq_length=32, hidden=16, heads=2,
                                       d_ff=24, layers=1)
    code, _, err = run(["bert", "import", tmp_path / "st", "--out", tmp_path / "ours"], capsys)
    assert code == 0 and "mean pooling, normalised, at most 32 tokens" in err, err
    sentences = texts[:20]
    vectors = embed_stdout(["bert", "embed", tmp_path / "ours"], sentences, monkeypatch)
    assert vectors.dtype == np.float32 and vectors.shape == (20, 16)
    np.testing.assert_allclose(vectors, model.encode(sentences, convert_to_numpy=True), atol=1e-4, rtol=0)
    raw = embed_stdout(["bert", "embed", tmp_path / "ours", "--pooling", "cls", "--no-normalize"], sentences[:2],
                       monkeypatch)
    assert not np.allclose(np.linalg.norm(raw, axis=1), 1.0)


def test_import_fill_export_and_fine_tune_on_rt_polarity(tmp_path, texts, corpora_dir, capsys):
    write_bert(tmp_path / "hf", texts, "pretraining", hidden=16, heads=2, d_ff=24, layers=1, positions=64)
    assert run(["bert", "import", tmp_path / "hf", "--out", tmp_path / "bert", "-q"], capsys)[0] == 0
    code, out, _ = run(["bert", "fill", tmp_path / "bert", "the movie was [MASK] .", "--k", "3", "--json"], capsys)
    assert code == 0 and len(json.loads(out)[0]["masks"][0]) == 3
    (tmp_path / "heldout.txt").write_text("\n".join(texts[200:220]) + "\n", encoding="utf-8")
    code, out, err = run(["bert", "evaluate", tmp_path / "bert", tmp_path / "heldout.txt", "--format", "documents"],
                         capsys)
    assert code == 0 and "MLM accuracy at [MASK]" in out and "NSP accuracy" in out, err
    assert run(["bert", "export", tmp_path / "bert", "--out", tmp_path / "back", "-q"], capsys)[0] == 0
    assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"} <= {
        p.name for p in (tmp_path / "back").iterdir()}
    for label in ("pos", "neg"):  # a slice of rt-polarity, one class per file
        lines = (corpora_dir / "rt-polarity" / f"rt-polarity.{label}").read_bytes().split(b"\n")[:150]
        (tmp_path / f"{label}.txt").write_bytes(b"\n".join(lines) + b"\n")
    code, _, err = run(["classify", "train", "--class-file", f"pos={tmp_path / 'pos.txt'}", "--class-file",
                        f"neg={tmp_path / 'neg.txt'}", "--encoding", "latin-1", "--model", "bert", "--init",
                        tmp_path / "bert", "--out", tmp_path / "clf", "--epochs", "1", "--max-len", "48",
                        "--threads", "1", "--device", "cpu", "-q"], capsys)
    assert code == 0, err
    config = json.loads((tmp_path / "clf" / "config.json").read_text())
    assert config["encoder"]["file"] == "tokenizer.json" and config["init_imported"]["layout"] == "transformers"
    code, out, _ = run(["classify", "predict", tmp_path / "clf", "a gorgeous film", "a tedious mess"], capsys)
    assert code == 0 and len(out.strip().split("\n")) == 2


def test_bad_inputs_exit_2_with_one_line_and_write_nothing(tmp_path, texts, capsys):
    write_bert(tmp_path / "hf", texts, "masked", hidden=8, heads=2, d_ff=8, layers=1)
    (tmp_path / "hf" / "vocab.txt").unlink()
    (tmp_path / "notbert").mkdir()
    (tmp_path / "notbert" / "config.json").write_text(json.dumps({"model_type": "gpt2"}))
    capsys.readouterr()  # transformers' progress lines
    cases = [(["bert", "import", tmp_path / "hf", "--out", tmp_path / "o1"], "no vocabulary", tmp_path / "o1"),
             (["bert", "import", tmp_path / "notbert", "--out", tmp_path / "o2"], "no weights", tmp_path / "o2"),
             (["bert", "export", tmp_path / "hf", "--out", tmp_path / "o3"], "not a BERT model config", tmp_path / "o3")]
    for argv, message, out in cases:
        code, stdout, err = run(argv, capsys)
        assert code == 2 and err.startswith("error: ") and message in err and err.count("\n") == 1, (argv, err)
        assert stdout == "" and not out.exists()
