"""`nlprec rec ...`: train recommenders on a ratings file, then score, recommend, find similar
items and evaluate. Thin: options are parsed here and handed to `nlprec.tasks.recommend`."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from nlprec.errors import NlprecError

app = typer.Typer(help="Recommenders: train, score, recommend, similar, evaluate.", no_args_is_help=True)

_SPLITS = {"random": "random", "loo": "leave_one_out", "leave_one_out": "leave_one_out",
           "leave-one-out": "leave_one_out", "temporal": "temporal", "none": "none"}


def _notice(message: str) -> None:
    print(f"notice: {message}", file=sys.stderr)


def _parse_value(text: str) -> Any:
    """`--set key=value` values: JSON when it parses (numbers, true/false, [lists]), else the string."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def _parse_sets(pairs: list[str]) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise NlprecError(f"--set {pair!r}: expected key=value, e.g. --set dim=64")
        options[key.strip()] = _parse_value(value.strip())
    return options


def _rating_range(text: str | None) -> tuple[float, float] | None:
    if text is None:
        return None
    parts = text.replace(":", ",").split(",")
    try:
        low, high = (float(p) for p in parts)
    except ValueError:
        raise NlprecError(f"--rating-range {text!r}: expected LOW,HIGH, e.g. 1,5") from None
    if low > high:
        raise NlprecError(f"--rating-range {text!r}: LOW must not exceed HIGH")
    return low, high


def _print_result(result: dict[str, Any]) -> None:
    print(f"protocol: {result['protocol']}")
    print("  ".join(f"{key} {value:.4f}" if isinstance(value, float) else f"{key} {value}"
                    for key, value in result["metrics"].items()))


@app.command()
def train(
    ratings: Annotated[Path, typer.Argument(help="Ratings file: CSV, TSV (MovieLens u.data as it is) or Parquet.")],
    model: Annotated[str, typer.Option(
        help="mf (explicit, RMSE), autorec (explicit, RMSE) or neumf (implicit, ranking).")] = "mf",
    out: Annotated[Optional[Path], typer.Option(help="Model folder to write (new or empty).")] = None,
    user_col: Annotated[Optional[str], typer.Option(
        help="User column: name, or 0-based position. Default: a user-like header name, else 0.")] = None,
    item_col: Annotated[Optional[str], typer.Option(help="Item column (default: an item-like name, else 1).")] = None,
    rating_col: Annotated[Optional[str], typer.Option(
        help="Rating column (default: a rating-like name, else 2; ignored by neumf).")] = None,
    time_col: Annotated[Optional[str], typer.Option(
        help="Timestamp column, numbers or ISO-8601 (default: a time-like name, else 3).")] = None,
    sep: Annotated[Optional[str], typer.Option(help="Field separator (default: comma for .csv, else tab).")] = None,
    header: Annotated[Optional[bool], typer.Option("--header/--no-header",
        help="Whether line 1 is a header (default: detect).")] = None,
    rating_range: Annotated[Optional[str], typer.Option(help="LOW,HIGH: reject ratings outside it, e.g. 1,5.")] = None,
    items: Annotated[Optional[Path], typer.Option(
        help="Item metadata, id|title|... per line (MovieLens u.item; UTF-8 or latin-1): the titles are kept in the "
             "folder and shown by rec recommend and nlprec serve.")] = None,
    duplicates: Annotated[str, typer.Option(
        help="Repeated (user, item) pairs: error, or last (keep the last).")] = "error",
    loss: Annotated[Optional[str], typer.Option(help="neumf: bpr or hinge.")] = None,
    margin: Annotated[Optional[float], typer.Option(help="neumf hinge margin (> 0).")] = None,
    pretrain: Annotated[Optional[bool], typer.Option("--pretrain/--no-pretrain",
        help="neumf: fit the GMF and MLP towers alone first and start from them (default: the model's).")] = None,
    set_: Annotated[list[str], typer.Option("--set",
        help="Model option key=value (repeatable), e.g. --set dim=64.")] = [],
    epochs: Annotated[Optional[int], typer.Option(help="Training epochs (default: the model's).")] = None,
    lr: Annotated[Optional[float], typer.Option(help="Learning rate (default: the model's).")] = None,
    weight_decay: Annotated[Optional[float], typer.Option(
        help="Optimizer weight decay (default: the model's; neumf 0.1 with adamw, else 0).")] = None,
    batch_size: Annotated[Optional[int], typer.Option(help="Examples per batch (ratings, triples or items).")] = None,
    negatives: Annotated[Optional[int], typer.Option(help="neumf: sampled negatives per positive per epoch.")] = None,
    recent: Annotated[Optional[int], typer.Option(
        help="neumf: each user's latest N interactions get --recent-copies more copies per epoch (default: the "
             "model's).")] = None,
    recent_copies: Annotated[Optional[int], typer.Option(
        help="neumf: extra copies of the --recent latest interactions (0: no recency weight).")] = None,
    split: Annotated[Optional[str], typer.Option(
        help="random, loo (leave-one-out by latest timestamp), temporal or none. Default: random for mf/autorec, loo "
             "for neumf.")] = None,
    test_ratio: Annotated[float, typer.Option(help="Test share for the random and temporal splits.")] = 0.1,
    val_ratio: Annotated[float, typer.Option(help="> 0: carve a validation part from train for early stopping.")] = 0.0,
    patience: Annotated[int, typer.Option(help="Early stopping: epochs without improvement (with --val-ratio).")] = 3,
    protocol: Annotated[str, typer.Option(
        help="Ranking evaluation: sampled (N negatives drawn once, saved) or full (all unseen items).")] = "sampled",
    eval_negatives: Annotated[int, typer.Option(help="Sampled negatives per test user.")] = 99,
    k: Annotated[int, typer.Option(help="Cut-off of HR@k and NDCG@k.")] = 10,
    seed: Annotated[int, typer.Option(
        help="Seed of the split, the initial weights, the batches and the negatives.")] = 0,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N.")] = "auto",
    precision: Annotated[str, typer.Option(
        help="Autocast: fp32 (the rates were tuned in it), bf16, fp16 (CUDA) or auto (bf16 on CUDA that supports "
             "it and on CPUs with bf16 units, else fp32).")] = "fp32",
    threads: Annotated[Optional[int], typer.Option(
        help="Torch CPU threads (default: torch's; 1 is often fastest on small shared CPUs).")] = None,
    resume: Annotated[bool, typer.Option(help="Continue from OUT/checkpoints/last.pt.")] = False,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing model folder.")] = False,
    quiet: Annotated[bool, typer.Option(help="No progress line.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print the test result as JSON.")] = False,
) -> None:
    """Train a recommender, evaluate it on the held-out split and save it to --out."""
    from nlprec.tasks import recommend

    if split is not None and split not in _SPLITS:
        raise NlprecError(f"--split {split!r}: expected random, loo, temporal or none")
    model_options = _parse_sets(set_)
    for key, value in (("loss", loss), ("margin", margin), ("pretrain", pretrain)):
        if value is not None:
            model_options[key] = value
    trainer_options: dict[str, Any] = {"device": device, "patience": patience, "progress": not quiet}
    for key, value in (("epochs", epochs), ("lr", lr), ("weight_decay", weight_decay)):
        if value is not None:
            trainer_options[key] = value
    from nlprec.registry import get_model

    task = get_model(model).model_cls.task
    chosen_split = _SPLITS[split] if split else ("random" if task == "rating" else "leave_one_out")
    options = recommend.RecommendOptions(
        model=model,
        read=recommend.ReadOptions(user_col, item_col, rating_col, time_col, sep, header, _rating_range(rating_range),
                                   duplicates),  # type: ignore[arg-type]
        protocol=recommend.EvalProtocol(chosen_split, test_ratio, seed, protocol,  # type: ignore[arg-type]
                                        eval_negatives, k),
        val_ratio=val_ratio, trainer_options=trainer_options, batch_size=batch_size, n_negatives=negatives,
        recent=recent, recent_copies=recent_copies, precision=precision, seed=seed,  # type: ignore[arg-type]
        overwrite=overwrite, threads=threads, progress=not quiet, items=str(items) if items is not None else None)
    result = recommend.train(ratings, out, options, model_options, resume=resume)
    metrics = result.metrics
    if json_out:
        print(json.dumps({key: value for key, value in (metrics or {}).items() if key != "history"}, indent=2))
        return
    if metrics:
        _print_result(metrics)
    if out is not None:
        print(f"saved {result.name} to {out}")


@app.command()
def score(
    model_dir: Annotated[Path, typer.Argument(help="Model folder written by `nlprec rec train`.")],
    pairs: Annotated[Path, typer.Argument(
        help="user<TAB>item per line (a header line allowed; more columns ignored).")],
    out: Annotated[Path, typer.Option(help="TSV to write: header user, item, score (and known with --unknown-items "
                                           "baseline); one row per input row, in order.")],
    unknown_items: Annotated[str, typer.Option(
        help="An item the model does not know: error (one line naming it, nothing written), nan (score NaN, count "
             "on stderr) or baseline (cold users and items: global mean + the known side's bias for rating models, "
             "training popularity for ranking models; a known column says which rows the model scored).")] = "error",
) -> None:
    """Score user-item pairs: predicted rating (mf, autorec) or ranking score (neumf).

    Unknown users are scored by popularity (the item's mean training rating for rating
    models, its training interaction count for ranking models), with a notice on stderr;
    with --unknown-items baseline, rows with an unknown user or item get the baseline
    (mu + b_u + b_i with the unknown side's bias 0, as Surprise does; for ranking models the
    item's training count, 0 for an unknown item) and known = false.
    """
    from nlprec.io import atomic_write
    from nlprec.tasks.recommender import Recommender

    if unknown_items not in ("error", "nan", "baseline"):
        raise NlprecError(f"--unknown-items {unknown_items!r}: expected error, nan or baseline")
    recommender = Recommender.load(model_dir)
    users, items, lines = _read_pairs(pairs)
    result = recommender.score(users, items, unknown_items, lines, str(pairs))  # type: ignore[arg-type]
    baseline = unknown_items == "baseline"
    with atomic_write(out, "w", encoding="utf-8") as handle:
        handle.write("user\titem\tscore\tknown\n" if baseline else "user\titem\tscore\n")
        for user, item, value, known in zip(users, items, result.scores.tolist(), result.known.tolist()):
            handle.write(f"{user}\t{item}\t{value:.6g}\t{str(known).lower()}\n" if baseline
                         else f"{user}\t{item}\t{value:.6g}\n")
    if baseline and not result.known.all():
        _notice(f"{int((~result.known).sum())} row(s) with users or items not in the training data were scored by "
                f"the baseline (known = false)")
    elif len(result.popularity_rows):
        first = int(result.popularity_rows[0])
        _notice(f"{len(result.popularity_rows)} row(s) with users not in the training data (first: user "
                f"{users[first]!r}, line {lines[first]}) were scored by popularity")
    if len(result.unknown_item_rows) and not baseline:
        first = int(result.unknown_item_rows[0])
        _notice(f"{len(result.unknown_item_rows)} row(s) with unknown items (first: item {items[first]!r}, "
                f"line {lines[first]}) were scored nan")
    print(f"wrote {len(users):,} scores to {out}", file=sys.stderr)


def _read_pairs(path: Path) -> tuple[list[str], list[str], list[int]]:
    """user<TAB>item lines; line 1 is a header when it names the columns (user..., item...)."""
    from nlprec.data.interactions import ITEM_NAMES, USER_NAMES

    if not path.is_file():
        raise NlprecError(f"{path}: no such file")
    users: list[str] = []
    items: list[str] = []
    lines: list[int] = []
    with open(path, encoding="utf-8", newline="") as handle:
        try:
            for number, line in enumerate(handle, start=1):
                line = line.rstrip("\r\n")
                if not line.strip():
                    continue
                fields = line.split("\t")
                if number == 1 and (fields[0].strip().lower() in USER_NAMES
                                    or (len(fields) > 1 and fields[1].strip().lower() in ITEM_NAMES)):
                    continue
                if len(fields) < 2 or not fields[0].strip() or not fields[1].strip():
                    raise NlprecError(f"{path} line {number}: {line[:60]!r}: expected user<TAB>item")
                users.append(fields[0].strip())
                items.append(fields[1].strip())
                lines.append(number)
        except UnicodeDecodeError:
            raise NlprecError(f"{path}: not UTF-8 text") from None
    if not users:
        raise NlprecError(f"{path}: no user<TAB>item lines")
    return users, items, lines


@app.command()
def recommend(
    model_dir: Annotated[Path, typer.Argument(help="Model folder written by `nlprec rec train`.")],
    user: Annotated[list[str], typer.Option(help="User id (repeatable).")],
    k: Annotated[int, typer.Option(help="How many items.")] = 10,
    include_seen: Annotated[bool, typer.Option(help="Also recommend items the user already interacted with.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Top-k unseen items for a user, with scores (predicted rating, unclipped, for mf and
    autorec; ranking score for neumf). Unknown users get the most popular items and a notice."""
    from nlprec.tasks.recommender import Recommender

    recommender = Recommender.load(model_dir)
    answers = [recommender.recommend(one, k, exclude_seen=not include_seen) for one in user]
    for answer in answers:
        if answer.notice:
            _notice(answer.notice)
    if json_out:
        payload = [answer.to_dict() for answer in answers]
        print(json.dumps(payload[0] if len(payload) == 1 else payload, indent=2))
        return
    for answer in answers:
        print(f"user {answer.user} ({answer.source}):")
        titles = answer.titles or [None] * len(answer.items)
        for rank, ((item, value), title) in enumerate(zip(answer.items, titles), start=1):
            print(f"{rank:>4}  {item}\t{value:.4f}" + (f"\t{title}" if title else ""))


@app.command()
def similar(
    model_dir: Annotated[Path, typer.Argument(help="Model folder written by `nlprec rec train`.")],
    item: Annotated[str, typer.Option(help="Item id.")],
    k: Annotated[int, typer.Option(help="How many items.")] = 10,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Items closest to an item by cosine of the learned item vectors (FAISS)."""
    from nlprec.tasks.recommender import Recommender

    neighbours = Recommender.load(model_dir).similar_items(item, k)
    if json_out:
        print(json.dumps({"item": item, "similar": [{"item": i, "cosine": s} for i, s in neighbours]}, indent=2))
        return
    for rank, (other, value) in enumerate(neighbours, start=1):
        print(f"{rank:>4}  {other}\t{value:.4f}")


@app.command()
def evaluate(
    model_dir: Annotated[Path, typer.Argument(help="Model folder written by `nlprec rec train`.")],
    protocol: Annotated[Optional[str], typer.Option(
        help="Ranking models: sampled (the saved negatives) or full. Default: as trained.")] = None,
    k: Annotated[Optional[int], typer.Option(help="Cut-off of HR@k and NDCG@k. Default: as trained.")] = None,
    threads: Annotated[Optional[int], typer.Option(help="Torch CPU threads.")] = None,
    plot: Annotated[Optional[Path], typer.Option(
        "--plot", help="Ranking models: also draw HR@k and NDCG@k for k = 1..--plot-max-k (.png, .svg or .pdf).",
        show_default=False)] = None,
    plot_max_k: Annotated[int, typer.Option(help="Largest cut-off on the --plot curve.", min=1)] = 50,
    json_out: Annotated[bool, typer.Option("--json",
        help="Print JSON: model, task, protocol, metrics, seconds.")] = False,
) -> None:
    """Evaluate on the saved test split; the protocol is printed with the metrics."""
    if protocol is not None and protocol not in ("sampled", "full"):
        raise NlprecError(f"--protocol {protocol!r}: expected sampled or full")
    if plot is not None:
        from nlprec.plot import check_output

        check_output(plot)
    import torch

    from nlprec.tasks.recommender import Recommender

    if threads is not None:
        torch.set_num_threads(max(1, threads))
    recommender = Recommender.load(model_dir)
    if plot is not None and recommender.task != "ranking":
        raise NlprecError(f"--plot draws HR@k and NDCG@k of ranking models (neumf); {model_dir} is a "
                          f"{recommender.name} rating model (its metrics are RMSE and MAE)")
    if plot is None:
        result = recommender.evaluate(protocol, k)  # type: ignore[arg-type]
    else:
        result = _plot_ranking(recommender, protocol, k, plot, plot_max_k)
    if json_out:
        print(json.dumps(result, indent=2))
        return
    _print_result(result)


def _plot_ranking(recommender, protocol: str | None, k: int | None, out: Path, max_k: int) -> dict[str, Any]:
    """Draw HR@k and NDCG@k for k = 1..max_k from one scoring of the test split (titled with the
    protocol); returns the evaluation at the chosen k, as `evaluate` prints it."""
    from nlprec import plot

    chosen = k or recommender.protocol.k
    ks = list(range(1, max_k + 1))
    result = recommender.evaluate(protocol, k, ks=sorted({chosen, *ks}))  # type: ignore[arg-type]
    metrics = result["metrics"]
    info = plot.describe(recommender.info | {"model": recommender.name})
    title = f"{plot.run_title(info, recommender.name)}\n{result['protocol']}"
    figure = plot.ranking_figure(ks, [metrics[f"hr@{c}"] for c in ks], [metrics[f"ndcg@{c}"] for c in ks], title)
    plot.save(figure, out)
    kept = {f"hr@{chosen}", f"ndcg@{chosen}"}
    result["metrics"] = {key: value for key, value in metrics.items() if "@" not in key or key in kept}
    print(f"wrote {out}", file=sys.stderr)
    return result
