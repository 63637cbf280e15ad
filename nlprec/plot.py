"""Pictures of runs and models: training curves, attention heat maps, word maps, ranking curves,
confusion matrices.

Each `*_figure` function takes plain data (metrics records, an attention matrix with its tokens,
a few vectors, a metrics-by-k table, a labels list with a matrix) and returns a matplotlib
`Figure`; `save` writes it (PNG, or SVG/PDF by the suffix) atomically. No model code here: the
CLI reads the model through nlprec's API and hands the numbers over. matplotlib is the `plot`
extra, imported on first use with the Agg backend (no display needed).

Sizes are fixed in inches at `DPI` dots per inch so that a figure's pixel size is known in
advance, and labels are at least `FONT_SIZE` points: legible at 100% zoom.
"""

from __future__ import annotations

import json
import math
import os
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Sequence

import numpy as np

from nlprec.errors import NlprecError
from nlprec.io import atomic_write

if TYPE_CHECKING:
    from matplotlib.figure import Figure

DPI = 100  # pixels per inch of a saved figure (a PNG of W x H inches is 100 W x 100 H pixels)
FONT_SIZE = 10  # points; tick labels never go below 8
FORMATS = {".png": "png", ".svg": "svg", ".pdf": "pdf"}
_NOT_CURVES = {"step", "epoch", "event", "seconds", "lr"}


def _pyplot() -> Any:
    """matplotlib.pyplot on the Agg backend, or a one-line error saying how to install it."""
    try:
        import matplotlib
    except ImportError:
        raise NlprecError("plots need matplotlib: pip install 'nlprec[plot]' (or pip install matplotlib)") from None
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    plt.rcParams.update({"font.size": FONT_SIZE, "axes.titlesize": FONT_SIZE + 1, "figure.titlesize": FONT_SIZE + 2,
                         "xtick.labelsize": FONT_SIZE - 1, "ytick.labelsize": FONT_SIZE - 1,
                         "legend.fontsize": FONT_SIZE - 1})
    return plt


def _new_figure(width: float, height: float) -> Figure:
    """A figure of width x height inches that lays itself out (labels never clipped)."""
    _pyplot()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)  # a renderer to measure labels with; no pyplot state, nothing to close
    return figure


def _wrapped(title: str, figure: Figure) -> str:
    """`title` broken into lines that fit the figure's width (about 11 characters per inch at 11 points)."""
    width = max(20, int(figure.get_figwidth() * 11))
    return "\n".join(textwrap.fill(line, width) for line in title.split("\n"))


def check_output(path: str | os.PathLike) -> str:
    """The matplotlib format of an output path (.png, .svg, .pdf), or a one-line error; call it
    before any work so that a bad --out costs nothing."""
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise NlprecError(f"{path}: unknown picture format {suffix or '(no suffix)'!r}; expected .png, .svg or .pdf")
    return FORMATS[suffix]


def save(figure: Figure, path: str | os.PathLike) -> Path:
    """Write `figure` to `path` in the format its suffix names, atomically (nothing on error)."""
    fmt = check_output(path)
    path = Path(path)
    with atomic_write(path, "wb") as handle:
        figure.savefig(handle, format=fmt, dpi=DPI)
    return path


# ----- training curves -----------------------------------------------------------------------
def read_metrics(run: str | os.PathLike) -> list[dict[str, Any]]:
    """The records of a run's metrics.jsonl (the trainer's log), as the run stands now.

    `run` is the run folder (or the metrics.jsonl itself, or a vectors file beside its `.run/`). A resumed run appends from its last
    checkpoint, so records whose step comes again later were superseded: each time a record's
    step does not increase over the previous one of its kind (step or epoch), the earlier
    records from that step on are dropped. A half-written last line (a run still going) is skipped.
    """
    path = _run_folder(run)
    path = path / "metrics.jsonl" if path.is_dir() else path
    if not path.is_file():
        raise NlprecError(f"{run}: no metrics.jsonl (expected a run folder written by the trainer, e.g. "
                          "vectors.bin.run/ or a model folder)")
    kept: dict[str, list[dict[str, Any]]] = {"step": [], "epoch": []}
    lines = path.read_text(encoding="utf-8").split("\n")
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            if number >= len(lines) - 1:  # the line being written right now
                continue
            raise NlprecError(f"{path} line {number}: not JSON: {line[:60]!r}") from None
        if not isinstance(record, dict) or not isinstance(record.get("step"), (int, float)):
            raise NlprecError(f"{path} line {number}: expected a JSON object with a numeric 'step'")
        series = kept["epoch" if record.get("event") == "epoch" else "step"]
        while series and series[-1]["step"] >= record["step"]:
            series.pop()
        series.append(record)
    records = sorted(kept["step"] + kept["epoch"], key=lambda r: (r["step"], r.get("event") == "epoch"))
    if not records:
        raise NlprecError(f"{path}: no metrics records yet (the run has not logged a step)")
    return records


def _run_folder(run: str | os.PathLike) -> Path:
    """`run` itself, or for a trained vectors file (vectors.bin) its run folder vectors.bin.run/."""
    path = Path(run)
    beside = path.with_name(path.name + ".run")
    return beside if path.is_file() and path.suffix != ".jsonl" and beside.is_dir() else path


def run_info(run: str | os.PathLike) -> dict[str, Any]:
    """Model name, data sha256 and seed of a run, from the JSON written beside its log: the
    folder's config.json (translation, recommenders) or, for `OUT.run/`, OUT.meta.json
    (embeddings). Missing fields are None."""
    folder = _run_folder(run)
    folder = folder.parent if folder.is_file() else folder
    candidates = [folder / "config.json"]
    if folder.name.endswith(".run"):
        out = folder.with_name(folder.name[: -len(".run")])
        candidates += [out.with_name(out.name + ".meta.json")]
    for path in candidates:
        if path.is_file():
            try:
                meta = json.loads(path.read_text(encoding="utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError):
                continue
            if isinstance(meta, dict):
                return describe(meta)
    return {"model": None, "data_sha256": None, "seed": None}


def describe(meta: dict[str, Any]) -> dict[str, Any]:
    """{"model", "data_sha256", "seed"} of an artifact's provenance (config.json or vectors meta)."""
    options = meta.get("options") if isinstance(meta.get("options"), dict) else {}
    model = meta.get("model") or meta.get("arch")
    variant = [options[key] for key in ("arch", "objective") if isinstance(options.get(key), str)]
    if model and variant and variant != [model]:
        model = f"{model} ({'/'.join(variant)})"
    data = meta.get("data") if isinstance(meta.get("data"), dict) else {}
    return {"model": model, "data_sha256": meta.get("data_sha256") or data.get("sha256"),
            "seed": meta.get("seed", options.get("seed"))}


def run_title(info: dict[str, Any], fallback: str) -> str:
    """'model · data 1a2b3c4d · seed 1', from `run_info` (fields that are missing are left out)."""
    parts = [str(info.get("model") or fallback)]
    if info.get("data_sha256"):
        parts.append(f"data {str(info['data_sha256'])[:8]}")
    if info.get("seed") is not None:
        parts.append(f"seed {info['seed']}")
    return " · ".join(parts)


def curve_series(records: Sequence[dict[str, Any]]) -> dict[str, dict[str, tuple[list[float], list[float]]]]:
    """Panel -> series name -> (steps, values) of one run's records.

    Panels: "loss" (training loss per logged step, else per epoch, plus val_loss), "validation"
    (the other numbers only epoch records carry: val BLEU, HR@k, ...), "lr" and "throughput"
    (the `<unit>_per_s` the trainer logs). Empty panels are left out.
    """
    steps = [r for r in records if r.get("event") != "epoch"]
    epochs = [r for r in records if r.get("event") == "epoch"]
    train = steps if sum("loss" in r for r in steps) >= 2 else epochs  # one logged step makes no curve
    speed = steps if sum(any(k.endswith("_per_s") for k in r) for r in steps) >= 2 else epochs
    step_keys = {key for r in steps for key in r}
    panels: dict[str, dict[str, tuple[list[float], list[float]]]] = {"loss": {}, "validation": {}, "lr": {},
                                                                     "throughput": {}}

    def series(rows: Sequence[dict[str, Any]], key: str) -> tuple[list[float], list[float]]:
        picked = [(float(r["step"]), float(r[key])) for r in rows if _is_number(r.get(key))]
        return [s for s, _ in picked], [v for _, v in picked]

    panels["loss"]["train loss"] = series(train, "loss")
    panels["loss"]["val loss"] = series(epochs, "val_loss")
    panels["lr"]["lr"] = series(steps, "lr")
    for key in sorted({k for r in speed for k in r if k.endswith("_per_s")}):
        panels["throughput"][key.replace("_per_s", "/s")] = series(speed, key)
    for key in sorted({k for r in epochs for k in r} - step_keys - _NOT_CURVES - {"loss", "val_loss"}):
        if not key.endswith("_per_s"):
            panels["validation"][key.replace("val_", "val ")] = series(epochs, key)
    return {panel: {name: xy for name, xy in named.items() if xy[0]} for panel, named in panels.items()
            if any(xy[0] for xy in named.values())}


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def spans_decades(values: Sequence[float], decades: float = 2.0) -> bool:
    """True when positive `values` span at least `decades` powers of ten (then a log axis reads better)."""
    positive = [v for v in values if v > 0]
    return len(positive) == len(values) and len(positive) > 1 and max(positive) / min(positive) >= 10 ** decades


_PANEL_LABELS = {"loss": ("loss", "Loss"), "validation": ("metric value", "Validation metrics"),
                 "lr": ("learning rate", "Learning rate"), "throughput": ("units per second", "Throughput")}


def curves_figure(runs: Sequence[tuple[str, Sequence[dict[str, Any]]]], title: str | None = None) -> Figure:
    """Training curves of one or more runs, overlaid: one panel per kind of number, x = optimizer step.

    runs: (label, records) pairs, records as `read_metrics` returns them. The loss axis is
    logarithmic when the losses span two decades or more.
    """
    if not runs:
        raise NlprecError("no runs to plot")
    per_run = [(label, curve_series(records)) for label, records in runs]
    panels = [p for p in _PANEL_LABELS if any(p in s for _, s in per_run)]
    if not panels:
        raise NlprecError("the runs' metrics hold no loss, learning rate, throughput or validation numbers")
    columns = min(2, len(panels))
    rows = math.ceil(len(panels) / columns)
    figure = _new_figure(6.0 * columns, 3.6 * rows + 0.4)
    axes = figure.subplots(rows, columns, squeeze=False).ravel()
    colours = [f"C{i}" for i in range(10)]
    for ax, panel in zip(axes, panels):
        ylabel, heading = _PANEL_LABELS[panel]
        values = []
        for run_index, (label, series) in enumerate(per_run):
            for series_index, (name, (xs, ys)) in enumerate(series.get(panel, {}).items()):
                style = ["-", "--", ":", "-."][series_index % 4]
                marker = "o" if len(xs) <= 30 else None
                ax.plot(xs, ys, style, color=colours[run_index % 10], marker=marker, markersize=4,
                        label=f"{label}: {name}" if len(per_run) > 1 else name)
                values += ys
        units = {name.split("/")[0] for _, series in per_run for name in series.get(panel, {})}
        if panel == "throughput":
            ylabel = f"{units.pop()} per second" if len(units) == 1 else ylabel
            ax.yaxis.set_major_formatter(lambda value, _: f"{value:,.0f}")
        if panel == "loss" and spans_decades(values):
            ax.set_yscale("log")
            ylabel += " (log scale)"
        ax.set_title(heading)
        ax.set_xlabel("optimizer step")
        ax.set_ylabel(ylabel)
        ax.grid(True, alpha=0.3)
        ax.legend(loc="best")
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    figure.suptitle(_wrapped(title or " | ".join(label for label, _ in runs), figure))
    return figure


# ----- attention ---------------------------------------------------------------------------
def attention_figure(source: Sequence[str], target: Sequence[str], weights: np.ndarray, title: str = "Attention",
                     panel_titles: Sequence[str] | None = None) -> Figure:
    """Heat map of attention weights: rows = output tokens, columns = source tokens.

    weights: (len(target), len(source)), or (P, len(target), len(source)) for P panels side by
    side (e.g. one per head) with `panel_titles`.
    """
    grid = np.asarray(weights, dtype=np.float64)
    grid = grid[None] if grid.ndim == 2 else grid
    if grid.ndim != 3 or grid.shape[1:] != (len(target), len(source)):
        raise NlprecError(f"attention weights of shape {np.shape(weights)} do not match {len(target)} output x "
                          f"{len(source)} source tokens")
    if grid.shape[1] == 0 or grid.shape[2] == 0:
        raise NlprecError("no tokens to show attention for")
    panels = grid.shape[0]
    cell = 0.32  # inches per token: room for a 10-point label
    label_room = 0.09 * max(len(token) for token in [*source, *target]) + 0.6
    columns = min(panels, 4)
    rows = math.ceil(panels / columns)
    width = columns * (cell * len(source) + label_room) + 1.2
    height = rows * (cell * len(target) + label_room) + 0.6
    figure = _new_figure(max(4.0, width), max(3.0, height))
    axes = figure.subplots(rows, columns, squeeze=False).ravel()
    for index, ax in enumerate(axes):
        if index >= panels:
            ax.set_visible(False)
            continue
        image = ax.imshow(grid[index], cmap="viridis", vmin=0.0, vmax=max(float(grid.max()), 1e-9), aspect="equal",
                          interpolation="nearest")
        ax.set_xticks(range(len(source)), labels=list(source), rotation=90)
        ax.set_yticks(range(len(target)), labels=list(target))
        ax.set_xlabel("source tokens")
        ax.set_ylabel("output tokens")
        if panel_titles is not None:
            ax.set_title(panel_titles[index])
    figure.colorbar(image, ax=axes[:panels].tolist(), label="attention weight", shrink=0.8)
    figure.suptitle(_wrapped(title, figure))
    return figure


# ----- word maps ---------------------------------------------------------------------------
def project_2d(matrix: np.ndarray, method: Literal["pca", "tsne"] = "pca", seed: int = 0) -> np.ndarray:
    """(N, d) vectors -> (N, 2): PCA on the centred rows (SVD, signs fixed so the largest
    loading of each component is positive), or t-SNE (scikit-learn, optional)."""
    data = np.asarray(matrix, dtype=np.float64)
    if data.ndim != 2 or len(data) < 2:
        raise NlprecError(f"a word map needs at least 2 words with vectors, got {len(data)}")
    if method == "tsne":
        try:
            from sklearn.manifold import TSNE
        except ImportError:
            raise NlprecError("--method tsne needs scikit-learn: pip install scikit-learn (or use --method pca)") from None
        perplexity = float(min(30.0, max(1.0, (len(data) - 1) / 3)))
        return TSNE(2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(data)
    centred = data - data.mean(axis=0)
    _, _, components = np.linalg.svd(centred, full_matrices=False)  # (min(N, d), d)
    components = components[:2]
    signs = np.sign(components[np.arange(len(components)), np.abs(components).argmax(axis=1)])
    projected = centred @ (components * signs[:, None]).T  # (N, <=2)
    if projected.shape[1] < 2:
        projected = np.hstack([projected, np.zeros((len(projected), 2 - projected.shape[1]))])
    return projected


def word_map_figure(words: Sequence[str], points: np.ndarray, title: str = "Word map",
                    xlabel: str = "component 1", ylabel: str = "component 2") -> Figure:
    """Scatter of 2-D points labelled with their words, labels moved apart so none overlap."""
    points = np.asarray(points, dtype=np.float64)
    if points.shape != (len(words), 2):
        raise NlprecError(f"{len(words)} words but points of shape {points.shape}; expected ({len(words)}, 2)")
    side = min(10.0, 5.0 + 0.08 * len(words))
    figure = _new_figure(side + 1.0, side)
    ax = figure.subplots()
    ax.scatter(points[:, 0], points[:, 1], s=18, color="C0", zorder=2)
    ax.set_title(_wrapped(title, figure))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    span = np.ptp(points, axis=0)
    span[span == 0] = 1.0
    low, high = points.min(axis=0) - 0.12 * span, points.max(axis=0) + 0.12 * span
    ax.set_xlim(low[0], high[0])
    ax.set_ylim(low[1], high[1])
    _place_labels(figure, ax, words, points)
    return figure


def _place_labels(figure: Figure, ax: Any, words: Sequence[str], points: np.ndarray) -> None:
    """Each label at the first of a ring of offsets (growing outward) around its point where its
    box overlaps no label placed before it nor any point; a thin line joins a moved label to its point."""
    renderer = figure.canvas.get_renderer()
    figure.canvas.draw()  # final layout, so that display coordinates are settled
    frame = ax.get_window_extent(renderer)
    marker_boxes = [_box_around(ax.transData.transform(p), 4.0) for p in points]
    placed: list[Any] = []
    for index, (word, point) in enumerate(zip(words, points)):
        others = placed + marker_boxes[:index] + marker_boxes[index + 1:]
        chosen = _OFFSETS[-1]  # crowded: the outermost spot rather than dropping the word
        for offset in _OFFSETS:
            probe = _annotate(ax, word, point, offset, joined=False)
            box = probe.get_window_extent(renderer)
            probe.remove()
            if _inside(box, frame) and not any(box.overlaps(other) for other in others):
                chosen = offset
                break
        label = _annotate(ax, word, point, chosen, joined=chosen not in _OFFSETS[:8])
        label.set_gid(f"word-label-{index}")
        placed.append(label.get_window_extent(renderer))


# Label offsets in points: 8 directions on rings of growing radius.
_OFFSETS = [(dx, dy) for radius in (6, 14, 24, 36, 50, 66) for dx, dy in
            ((radius, radius * 0.4), (-radius, radius * 0.4), (radius, -radius), (-radius, -radius),
             (0, radius), (0, -radius * 1.4), (radius * 1.5, 0), (-radius * 1.5, 0))]


def _annotate(ax: Any, word: str, point: np.ndarray, offset: tuple[float, float], joined: bool) -> Any:
    dx, dy = offset
    arrow = {"arrowstyle": "-", "color": "0.6", "linewidth": 0.6} if joined else None
    return ax.annotate(word, point, xytext=(dx, dy), textcoords="offset points", ha="left" if dx >= 0 else "right",
                       va="bottom" if dy >= 0 else "top", fontsize=FONT_SIZE, zorder=3, arrowprops=arrow)


def _box_around(xy: np.ndarray, radius: float) -> Any:
    from matplotlib.transforms import Bbox

    return Bbox([[xy[0] - radius, xy[1] - radius], [xy[0] + radius, xy[1] + radius]])


def _inside(box: Any, frame: Any) -> bool:
    return box.x0 >= frame.x0 and box.x1 <= frame.x1 and box.y0 >= frame.y0 and box.y1 <= frame.y1


# ----- recommenders and classifiers --------------------------------------------------------
def ranking_figure(ks: Sequence[int], hit_rate: Sequence[float], ndcg: Sequence[float],
                   title: str = "Ranking quality by cut-off") -> Figure:
    """HR@k and NDCG@k against k (e.g. k = 1..50), on one axis from 0 to 1."""
    if not (len(ks) == len(hit_rate) == len(ndcg)) or not ks:
        raise NlprecError(f"ks, hit_rate and ndcg must be equal, non-empty lists; got {len(ks)}, {len(hit_rate)}, "
                          f"{len(ndcg)}")
    figure = _new_figure(6.5, 4.2)
    ax = figure.subplots()
    ax.plot(list(ks), list(hit_rate), "-", color="C0", label="HR@k")
    ax.plot(list(ks), list(ndcg), "--", color="C1", label="NDCG@k")
    ax.set_xlabel("cut-off k (items recommended)")
    ax.set_ylabel("score (0-1)")
    ax.set_ylim(0.0, 1.0)
    ax.set_xlim(min(ks), max(ks))
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower right")
    ax.set_title(_wrapped(title, figure))
    return figure


def confusion_figure(labels: Sequence[str], matrix: Sequence[Sequence[float]] | np.ndarray,
                     title: str = "Confusion matrix", normalize: bool = False) -> Figure:
    """Confusion matrix: rows = true label, columns = predicted label, each cell its count (or,
    with `normalize`, its share of the row), written in the cell."""
    counts = np.asarray(matrix, dtype=np.float64)
    if counts.shape != (len(labels), len(labels)) or not len(labels):
        raise NlprecError(f"{len(labels)} labels but a matrix of shape {counts.shape}; expected "
                          f"({len(labels)}, {len(labels)})")
    shown = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1e-12) if normalize else counts
    side = 2.5 + 0.55 * len(labels) + 0.08 * max(len(label) for label in labels)
    figure = _new_figure(side + 1.2, side)
    ax = figure.subplots()
    image = ax.imshow(shown, cmap="Blues", interpolation="nearest")
    ax.set_xticks(range(len(labels)), labels=list(labels), rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels=list(labels))
    ax.set_xlabel("predicted label")
    ax.set_ylabel("true label")
    threshold = shown.max() / 2 if shown.size else 0
    for (row, column), value in np.ndenumerate(shown):
        ax.text(column, row, f"{value:.2f}" if normalize else f"{value:,.0f}", ha="center", va="center",
                color="white" if value > threshold else "black", fontsize=FONT_SIZE)
    figure.colorbar(image, ax=ax, label="share of the true label" if normalize else "examples", shrink=0.8)
    ax.set_title(_wrapped(title, figure))
    return figure


__all__ = ["attention_figure", "check_output", "confusion_figure", "curves_figure", "project_2d", "ranking_figure",
           "describe", "read_metrics", "run_info", "run_title", "save", "word_map_figure"]
