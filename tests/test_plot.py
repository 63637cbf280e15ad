"""nlprec.plot on tiny real runs: each picture is written at its expected pixel size, is not
blank, and shows exactly the numbers it was given (read back from the Figure's artists)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from matplotlib.image import imread

from nlprec import plot
from nlprec.tasks.embeddings import EmbedOptions, train
from nlprec.errors import NlprecError

WORDS = "cat dog bird fish runs sleeps eats small big red blue the a".split()


pytestmark = pytest.mark.usefixtures("one_thread")


def assert_picture(path, figure) -> np.ndarray:
    """The PNG exists, has the figure's size in pixels and is not one flat colour."""
    pixels = imread(path)  # (H, W, channels) floats in [0, 1]
    width, height = figure.get_size_inches() * plot.DPI
    assert pixels.shape[:2] == (round(height), round(width))
    assert pixels[..., :3].var() > 1e-3
    return pixels


@pytest.fixture(scope="module")
def w2v_run(tmp_path_factory):
    """word2vec, 3 epochs on 3,000 short sentences: its run folder and vectors."""
    folder = tmp_path_factory.mktemp("w2v")
    rng = np.random.default_rng(0)
    corpus = folder / "corpus.txt"
    corpus.write_text("\n".join(" ".join(rng.choice(WORDS, 8)) for _ in range(3000)) + "\n", encoding="utf-8")
    options = EmbedOptions(dim=16, epochs=3, min_count=1, threads=1, chunk_words=1000, progress=False, backend="numba",
                           device="cpu")
    vectors = train(corpus, folder / "v.bin", options, log=lambda *_: None)
    return folder / "v.bin.run", vectors


def test_curves_show_the_logged_numbers(w2v_run, tmp_path):
    run, _ = w2v_run
    records = plot.read_metrics(run)
    info = plot.run_info(run)
    assert info["model"] == "word2vec (skipgram/negative)" and len(info["data_sha256"]) == 64 and info["seed"] == 1
    figure = plot.curves_figure([("w2v", records)], plot.run_title(info, "w2v"))
    assert_picture(plot.save(figure, tmp_path / "curves.png"), figure)
    lines = {line.get_label(): line for ax in figure.axes for line in ax.get_lines()}
    steps = [r for r in records if r.get("event") != "epoch"]  # every 20th step: 3 here (24 steps per epoch)
    assert len(steps) >= 2
    assert list(lines["train loss"].get_xdata()) == [r["step"] for r in steps]
    assert list(lines["train loss"].get_ydata()) == [r["loss"] for r in steps]
    assert list(lines["words/s"].get_ydata()) == [r["words_per_s"] for r in steps]
    assert list(lines["lr"].get_ydata()) == [r["lr"] for r in steps]
    epochs_only = plot.curves_figure([("w2v", [r for r in records if r.get("event") == "epoch"])])
    loss = epochs_only.axes[0].get_lines()[0]
    assert list(loss.get_ydata()) == [r["loss"] for r in records if r.get("event") == "epoch"]
    assert "data " + info["data_sha256"][:8] in figure.get_suptitle()


def test_several_runs_overlay_and_svg_pdf_by_suffix(w2v_run, tmp_path):
    run, _ = w2v_run
    records = plot.read_metrics(run)
    figure = plot.curves_figure([("first", records), ("second", records[:2])])
    labels = [line.get_label() for line in figure.axes[0].get_lines()]
    assert labels[:2] == ["first: train loss", "second: train loss"]
    plot.save(figure, tmp_path / "c.svg")
    plot.save(figure, tmp_path / "c.pdf")
    assert (tmp_path / "c.svg").read_text().lstrip().startswith("<?xml")
    assert (tmp_path / "c.pdf").read_bytes()[:5] == b"%PDF-"
    with pytest.raises(NlprecError, match="expected .png, .svg or .pdf"):
        plot.save(figure, tmp_path / "c.jpg")
    assert not (tmp_path / "c.jpg").exists()


def test_resumed_run_keeps_each_step_once_and_a_half_written_line_is_skipped(tmp_path):
    lines = [{"step": 20, "epoch": 1, "lr": 0.1, "loss": 4.0}, {"step": 40, "epoch": 1, "lr": 0.09, "loss": 3.0},
             {"event": "epoch", "epoch": 1, "step": 50, "loss": 3.5, "val_bleu": 1.0},
             {"step": 60, "epoch": 2, "lr": 0.08, "loss": 2.0},  # logged, then the run died before a checkpoint
             {"step": 60, "epoch": 2, "lr": 0.08, "loss": 2.5},  # resumed from step 50: step 60 again
             {"step": 80, "epoch": 2, "lr": 0.07, "loss": 2.2}]
    text = "\n".join(json.dumps(r) for r in lines) + '\n{"step": 100, "lo'
    (tmp_path / "metrics.jsonl").write_text(text, encoding="utf-8")
    records = plot.read_metrics(tmp_path)
    assert [r["step"] for r in records] == [20, 40, 50, 60, 80]
    series = plot.curve_series(records)
    assert series["loss"]["train loss"] == ([20.0, 40.0, 60.0, 80.0], [4.0, 3.0, 2.5, 2.2])
    assert series["validation"]["val bleu"] == ([50.0], [1.0])


def test_loss_axis_is_logarithmic_when_the_loss_spans_decades(tmp_path):
    records = [{"step": s, "lr": 0.1, "loss": 10.0 ** (1 - s / 10)} for s in range(1, 31)]
    figure = plot.curves_figure([("run", records)])
    assert figure.axes[0].get_yscale() == "log"
    flat = plot.curves_figure([("run", [{"step": s, "loss": 2.0 + s / 100} for s in range(1, 31)])])
    assert flat.axes[0].get_yscale() == "linear"


def test_bad_metrics_are_one_line_errors(tmp_path):
    with pytest.raises(NlprecError, match="no metrics.jsonl"):
        plot.read_metrics(tmp_path)
    (tmp_path / "metrics.jsonl").write_text('{"step": 1}\nnot json\n{"step": 2}\n', encoding="utf-8")
    with pytest.raises(NlprecError, match="line 2: not JSON"):
        plot.read_metrics(tmp_path)


def test_word_map_places_every_word_at_its_pca_point_without_overlaps(w2v_run, tmp_path):
    _, vectors = w2v_run
    words = WORDS
    matrix = vectors.matrix[[vectors.key_to_index[w] for w in words]]
    points = plot.project_2d(matrix)
    centred = matrix - matrix.mean(axis=0)
    assert np.allclose(np.abs(points), np.abs(centred @ np.linalg.svd(centred)[2][:2].T), atol=1e-4)
    figure = plot.word_map_figure(words, points)
    assert_picture(plot.save(figure, tmp_path / "map.png"), figure)
    ax = figure.axes[0]
    assert np.allclose(ax.collections[0].get_offsets(), points)
    labels = [text for text in ax.texts if (text.get_gid() or "").startswith("word-label-")]
    assert [text.get_text() for text in labels] == words
    assert all(np.allclose(text.xy, point) for text, point in zip(labels, points))
    renderer = figure.canvas.get_renderer()
    boxes = [text.get_window_extent(renderer) for text in labels]
    assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1:])


def test_attention_heat_map_shows_the_weights_with_token_labels(tmp_path):
    source, target = ["▁the", "▁cat", "▁sat"], ["▁le", "▁chat", "</s>"]
    weights = np.array([[0.8, 0.1, 0.1], [0.1, 0.7, 0.2], [0.2, 0.2, 0.6]])
    figure = plot.attention_figure(source, target, weights, "t")
    assert_picture(plot.save(figure, tmp_path / "att.png"), figure)
    ax = figure.axes[0]
    assert np.array_equal(ax.images[0].get_array(), weights)
    assert [t.get_text() for t in ax.get_xticklabels()] == source
    assert [t.get_text() for t in ax.get_yticklabels()] == target
    panels = plot.attention_figure(source, target, np.stack([weights, weights.T]), "t", ["head 0", "head 1"])
    assert [ax.get_title() for ax in panels.axes if ax.images] == ["head 0", "head 1"]
    with pytest.raises(NlprecError, match="do not match"):
        plot.attention_figure(source, target[:2], weights)


def test_ranking_curve_and_confusion_matrix(tmp_path):
    ks = list(range(1, 51))
    hit = [min(1.0, 0.1 + 0.02 * k) for k in ks]
    ndcg = [h / 2 for h in hit]
    figure = plot.ranking_figure(ks, hit, ndcg, "neumf")
    assert_picture(plot.save(figure, tmp_path / "hr.png"), figure)
    hr_line, ndcg_line = figure.axes[0].get_lines()
    assert list(hr_line.get_xdata()) == ks and list(hr_line.get_ydata()) == hit
    assert list(ndcg_line.get_ydata()) == ndcg
    labels, matrix = ["negative", "positive"], [[40, 10], [5, 45]]
    figure = plot.confusion_figure(labels, matrix)
    assert_picture(plot.save(figure, tmp_path / "cm.png"), figure)
    ax = figure.axes[0]
    assert np.array_equal(ax.images[0].get_array(), np.array(matrix, float))
    assert [t.get_text() for t in ax.texts] == ["40", "10", "5", "45"]
    share = plot.confusion_figure(labels, matrix, normalize=True).axes[0]
    assert [t.get_text() for t in share.texts] == ["0.80", "0.20", "0.10", "0.90"]
    with pytest.raises(NlprecError, match="expected \\(2, 2\\)"):
        plot.confusion_figure(labels, [[1, 2, 3]])


def test_missing_matplotlib_is_a_one_line_install_hint(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_matplotlib(name, *args, **kwargs):
        if name.split(".")[0] == "matplotlib":
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    with pytest.raises(NlprecError, match=r"pip install 'nlprec\[plot\]'"):
        plot.ranking_figure([1], [0.5], [0.5])
