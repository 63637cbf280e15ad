"""`nlprec plot ...`: pictures of runs. `curves` draws any run folder's metrics.jsonl (the trainer's
log), so every model family gets its loss, validation, learning-rate and throughput curves.

The other pictures hang off the commands that compute their numbers: `nlprec translate run
--show-attention --plot`, `nlprec embed map`, `nlprec rec evaluate --plot`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

app = typer.Typer(help="Pictures: training curves of one or more runs.", no_args_is_help=True)

PictureOut = Annotated[Path, typer.Option(
    "--out", "-o", help="Picture to write: .png (default), .svg or .pdf.")]


@app.command()
def curves(
    runs: Annotated[list[Path], typer.Argument(
        help="Run folders holding a metrics.jsonl: vectors.bin.run/ (or vectors.bin), a translation or recommender "
             "model folder.",
        show_default=False)],
    out: PictureOut = Path("curves.png"),
    title: Annotated[Optional[str], typer.Option(help="Figure title (default: model, data sha256, seed).")] = None,
) -> None:
    """Loss, validation metrics, learning rate and throughput against the optimizer step; several
    runs overlaid. A resumed run shows each step once; a run still going shows what it has logged."""
    from nlprec import plot

    plot.check_output(out)
    infos = [plot.run_info(run) for run in runs]
    loaded = [(_label(run, info, len(runs)), plot.read_metrics(run)) for run, info in zip(runs, infos)]
    heading = title or " | ".join(plot.run_title(info, run.name) for run, info in zip(runs, infos))
    plot.save(plot.curves_figure(loaded, heading), out)
    print(f"wrote {out}")


def _label(run: Path, info: dict, count: int) -> str:
    name = run.resolve().name
    return name if count > 1 or not info.get("model") else str(info["model"])
