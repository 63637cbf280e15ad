"""The picture commands end to end on tiny real runs: `nlprec plot curves`, `nlprec embed map`,
`nlprec translate run --show-attention --plot`, `nlprec rec evaluate --plot`. Each writes a
picture of the expected size that shows the model's own numbers; each bad input is a one-line
error with exit status 2 and no file."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.image import imread

from nlprec import plot
from nlprec_cli.main import main

WORDS = "cat dog bird fish runs sleeps eats small big red blue the a".split()


pytestmark = pytest.mark.usefixtures("one_thread")


def run(capsys, *args) -> tuple[int, str, str]:
    try:
        main([str(arg) for arg in args])
        code = 0
    except SystemExit as exit_:
        code = exit_.code
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code: int, err: str, text: str) -> None:
    lines = err.strip().split("\n")
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: ") and text in lines[0], err


@pytest.fixture()
def figures(monkeypatch):
    """Every figure the commands save, in order (the file is still written)."""
    saved = []
    real_save = plot.save

    def recording_save(figure, path):
        saved.append(figure)
        return real_save(figure, path)

    monkeypatch.setattr(plot, "save", recording_save)
    return saved


def assert_picture(path, figure) -> None:
    pixels = imread(path)
    width, height = figure.get_size_inches() * plot.DPI
    assert pixels.shape[:2] == (round(height), round(width)) and pixels[..., :3].var() > 1e-3


@pytest.fixture(scope="module")
def vectors(tmp_path_factory):
    folder = tmp_path_factory.mktemp("embed")
    rng = np.random.default_rng(0)
    corpus = folder / "corpus.txt"
    corpus.write_text("\n".join(" ".join(rng.choice(WORDS, 8)) for _ in range(2000)) + "\n", encoding="utf-8")
    main(["embed", "train", str(corpus), "--out", str(folder / "v.bin"), "--dim", "16", "--epochs", "2",
          "--min-count", "1", "--threads", "1", "--device", "cpu", "-q"])
    return folder / "v.bin"


def test_plot_curves_of_an_embedding_run(vectors, tmp_path, capsys, figures):
    out = tmp_path / "curves.png"
    code, stdout, _ = run(capsys, "plot", "curves", f"{vectors}.run", "--out", out)
    assert code == 0 and stdout.strip() == f"wrote {out}"
    assert_picture(out, figures[0])
    epochs = [r for r in plot.read_metrics(f"{vectors}.run") if r.get("event") == "epoch"]
    loss = figures[0].axes[0].get_lines()[0]
    assert list(loss.get_ydata()) == [r["loss"] for r in epochs]
    assert "word2vec (skipgram/negative)" in figures[0].get_suptitle()


def test_plot_curves_bad_input_writes_nothing(tmp_path, capsys):
    out = tmp_path / "curves.png"
    code, _, err = run(capsys, "plot", "curves", tmp_path, "--out", out)
    assert_one_line_error(code, err, "no metrics.jsonl")
    code, _, err = run(capsys, "plot", "curves", tmp_path, "--out", tmp_path / "curves.gif")
    assert_one_line_error(code, err, "expected .png, .svg or .pdf")
    assert list(tmp_path.iterdir()) == []


def test_embed_map(vectors, tmp_path, capsys, figures):
    out = tmp_path / "map.svg"
    code, stdout, err = run(capsys, "embed", "map", vectors, "--words", "cat", "dog", "bird", "fish", "zzz",
                            "--out", out)
    assert code == 0 and "(4 words)" in stdout and "zzz" in err
    assert out.read_text().lstrip().startswith("<?xml")
    ax = figures[0].axes[0]
    assert [t.get_text() for t in ax.texts] == ["cat", "dog", "bird", "fish"]
    from nlprec.vectors import Vectors

    loaded = Vectors.load(vectors)
    expected = plot.project_2d(loaded.matrix[[loaded.key_to_index[w] for w in ("cat", "dog", "bird", "fish")]])
    assert np.allclose(ax.collections[0].get_offsets(), expected)
    code, _, err = run(capsys, "embed", "map", vectors, "--words", "zzz", "qqq", "--out", tmp_path / "none.png")
    assert_one_line_error(code, err, "none of the words zzz, qqq is in the vocabulary")
    assert not (tmp_path / "none.png").exists()


def test_translate_attention_plot(tmp_path, capsys, figures):
    rng = np.random.default_rng(0)
    lines = []
    for _ in range(200):
        words = list(rng.choice(WORDS, rng.integers(1, 6)))
        lines.append(" ".join(words) + "\t" + " ".join(w.upper() for w in reversed(words)))
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("\n".join(lines) + "\n", encoding="utf-8")
    model = tmp_path / "tfm"
    code, _, _ = run(capsys, "translate", "train", pairs, "--out", model, "--max-steps", "4", "--vocab-size", "60",
                     "--valid-size", "20", "--max-tokens", "300", "--threads", "1", "--warmup", "2",
                     "--device", "cpu", "-q",
                     "--set", "d_model=32", "--set", "heads=2", "--set", "encoder_layers=1",
                     "--set", "decoder_layers=2", "--set", "d_ff=64")
    assert code == 0
    out = tmp_path / "att.png"
    code, stdout, _ = run(capsys, "translate", "run", model, "the cat runs", "--show-attention", "--plot", out)
    assert code == 0 and stdout.strip().split("\n")[-1].startswith("</s>")
    assert_picture(out, figures[0])
    from nlprec.tasks.translate import Translator

    source, output, weights = Translator.load(model).attention("the cat runs")
    ax = figures[0].axes[0]
    assert np.allclose(ax.images[0].get_array(), weights)
    assert [t.get_text() for t in ax.get_xticklabels()] == source
    assert [t.get_text() for t in ax.get_yticklabels()] == output
    code, _, _ = run(capsys, "translate", "run", model, "the cat", "--show-attention", "--head", "all",
                     "--layer", "0", "--plot", tmp_path / "heads.pdf")
    assert code == 0 and [ax.get_title() for ax in figures[1].axes if ax.images] == ["head 0", "head 1"]
    code, _, err = run(capsys, "translate", "run", model, "", "--show-attention", "--plot", tmp_path / "empty.png")
    assert_one_line_error(code, err, "needs a non-empty sentence")
    assert not (tmp_path / "empty.png").exists()


def test_rec_evaluate_plot(tmp_path, capsys, figures):
    rng = np.random.default_rng(0)
    rows = [f"{100 + u}\t{500 + i}\t{int(rng.integers(1, 6))}\t{880000000 + int(rng.integers(0, 10**6))}"
            for u in range(60) for i in rng.choice(50, 15, replace=False)]
    ratings = tmp_path / "u.data"
    ratings.write_text("\n".join(rows) + "\n", encoding="utf-8")
    model = tmp_path / "nm"
    code, _, _ = run(capsys, "rec", "train", ratings, "--model", "neumf", "--out", model, "--epochs", "1",
                     "--set", "factors=4", "--no-pretrain", "--eval-negatives", "30", "--threads", "1",
                     "--device", "cpu", "--quiet")
    assert code == 0
    out = tmp_path / "hr.png"
    code, stdout, _ = run(capsys, "rec", "evaluate", model, "--plot", out)
    assert code == 0 and "hr@10" in stdout and "hr@11" not in stdout
    assert_picture(out, figures[0])
    from nlprec.tasks.recommender import Recommender

    metrics = Recommender.load(model).evaluate(ks=range(1, 51))["metrics"]
    hr, ndcg = figures[0].axes[0].get_lines()
    assert list(hr.get_xdata()) == list(range(1, 51))
    assert list(hr.get_ydata()) == [metrics[f"hr@{k}"] for k in range(1, 51)]
    assert list(ndcg.get_ydata()) == [metrics[f"ndcg@{k}"] for k in range(1, 51)]
    assert "leave-one-out" in figures[0].axes[0].get_title()
