"""Train a recommender on a ratings file and write its model folder: the API behind
`nlprec rec train`. The trained model is a `Recommender` (nlprec.tasks.recommender), which
`Recommender.load(folder)` reads back for scoring, recommending and evaluation.

    from nlprec.tasks import recommend
    rec = recommend.train("u.data", "nm/", recommend.RecommendOptions(model="neumf"), {"loss": "bpr"})
    rec.recommend("196", k=10)

The ratings are read (CSV, TSV or Parquet; `ReadOptions`), split under the evaluation protocol
(`EvalProtocol`: random, leave-one-out or temporal; sampled negatives drawn once with the seed),
trained through the shared trainer with the model's `training_defaults`, evaluated on the test
split, and saved with the split and negatives, so `evaluate` repeats the exact protocol.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from nlprec.data.interactions import Interactions, ItemRowsData, PairwiseData, RatingsData, read_interactions, split
from nlprec.errors import NlprecError
from nlprec.io import sha256_file, to_plain
from nlprec.registry import build_config, get_model
from nlprec.tasks.recommender import EvalProtocol, Recommender, draw_negatives, evaluate_model, refresh
from nlprec.train import Trainer, TrainerConfig, distributed, load_checkpoint
from nlprec.train.trainer import Precision, resolve_device, resolve_precision, seed_everything

# Config fields filled from the data, never from user options.
_DATA_FIELDS = ("n_users", "n_items", "global_mean", "rating_min", "rating_max")
# Trainer options a caller may set (the rest is fixed here: out_dir, seed, precision, early stopping).
_TRAINER_OPTIONS = {f.name for f in dataclasses.fields(TrainerConfig)} - {
    "out_dir", "seed", "precision", "early_stopping_metric", "early_stopping_mode"}
_FILES = ("config.json", "model.pt", "users.json", "items.json", "split.npz", "metrics.json")


# --- options -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReadOptions:
    """How to read the ratings file (see `nlprec.data.interactions.read_interactions`)."""

    user_col: str | None = None  # column name or 0-based position; None: "user"-like name or position 0
    item_col: str | None = None  # ... or position 1
    rating_col: str | None = None  # ... or position 2 (ignored by ranking models)
    time_col: str | None = None  # ... or position 3 (needed by leave-one-out and temporal splits)
    sep: str | None = None  # field separator; None: from the suffix (comma for .csv, else tab)
    header: bool | None = None  # first line is a header; None: detect
    rating_range: tuple[float, float] | None = None  # inclusive bounds every rating must lie in
    duplicates: Literal["error", "last"] = "error"  # a repeated (user, item) pair: error or keep the last


@dataclass(frozen=True)
class RecommendOptions:
    """Everything `nlprec rec train` sets besides the model config (`overrides`, --set)."""

    model: str = "mf"  # any registered recommender: "mf", "autorec", "neumf"
    read: ReadOptions = ReadOptions()  # columns and format of the ratings file
    protocol: EvalProtocol | None = None  # None: random 10% test (rating models), leave-one-out + 99 negatives
    val_ratio: float = 0.0  # > 0: a validation part of the training part (same split kind) for early stopping
    trainer_options: dict[str, Any] = field(default_factory=dict)  # TrainerConfig overrides (epochs, lr, device)
    batch_size: int | None = None  # examples per batch, >= 1 (None: the model's training_defaults)
    n_negatives: int | None = None  # pairwise models: negatives per positive (None: the model's default)
    recent: int | None = None  # pairwise models: each user's latest interactions listed again (None: default)
    recent_copies: int | None = None  # ... this many more times per epoch (0: off; None: the model's default)
    precision: Precision = "fp32"  # autocast; the models' rates were tuned in fp32 ("auto": resolve_precision)
    seed: int = 0  # seeds the initialisation, the split, the batches and the sampled negatives
    overwrite: bool = False  # replace an existing model folder
    threads: int | None = None  # torch CPU threads, >= 1 (None: torch's default)
    progress: bool = True  # the trainer's progress line on stderr
    items: str | None = None  # item metadata, `id|title|...` per line (MovieLens u.item): titles kept in the folder


# --- training ----------------------------------------------------------------------------------


def train(ratings: str | os.PathLike, out: str | os.PathLike | None = None,
          options: RecommendOptions = RecommendOptions(), overrides: dict[str, Any] | None = None, *,
          resume: bool = False) -> Recommender:
    """Read, split, train (nlprec.train.Trainer), evaluate on the test split and save to `out`.

    ratings: CSV, TSV or Parquet ratings file (MovieLens u.data as it is). out: the model folder
    (None: nothing written); new or empty unless `options.overwrite` or `resume` (continue from
    out/checkpoints/last.pt, same data file and options). overrides: model config values (--set,
    e.g. {"dim": 64}, {"loss": "hinge"}). Validation (options.val_ratio) early-stops on val RMSE
    or val NDCG@k and keeps the best epoch's weights.
    """
    model, read, threads, seed = options.model, options.read, options.threads, options.seed
    entry = get_model(model)
    if entry.family != "recommender":
        raise NlprecError(f"model {model!r} is a {entry.family} model; recommenders: "
                          "mf, autorec, neumf")
    model_cls = entry.model_cls
    task = model_cls.task
    protocol = options.protocol or EvalProtocol(split="random" if task == "rating" else "leave_one_out")
    out_dir = Path(out) if out is not None else None
    checkpoint = _check_out_dir(out_dir, resume, options.overwrite)
    if threads is not None:
        if threads < 1:
            raise NlprecError(f"threads={threads}: expected >= 1")
        torch.set_num_threads(threads)

    # Everything that can fail on bad input happens before anything is written.
    data = read_interactions(ratings, read.user_col, read.item_col, read.rating_col, read.time_col, sep=read.sep,
                             header=read.header, implicit=task == "ranking", rating_range=read.rating_range,
                             duplicates=read.duplicates)
    checksum = sha256_file(ratings)
    titles = read_item_titles(options.items, data.item_ids) if options.items is not None else None
    train_part, test_part = split(data, protocol.split, protocol.test_ratio, protocol.seed)
    fit_part, val_part = train_part, None
    val_ratio = options.val_ratio
    if val_ratio:
        if not 0 < val_ratio < 1:
            raise NlprecError(f"val ratio {val_ratio}: expected a number strictly between 0 and 1")
        how = "random" if protocol.split == "none" else protocol.split
        fit_part, val_part = split(train_part, how, val_ratio, protocol.seed + 1)
    if len(fit_part) == 0:
        raise NlprecError(f"{ratings}: no training interactions left after the split")
    negatives = None
    sampled = task == "ranking" and protocol.ranking == "sampled"
    if sampled and len(test_part):
        negatives = draw_negatives(data, test_part, protocol.n_negatives, protocol.seed)
    val_negatives = draw_negatives(data, val_part, protocol.n_negatives, protocol.seed + 1) \
        if sampled and val_part is not None and len(val_part) else None

    defaults = dict(model_cls.training_defaults)  # trainer settings plus the data's batch size and negatives
    default_batch, default_negatives = defaults.pop("batch_size", 1024), defaults.pop("n_negatives", 1)
    default_recent, default_copies = defaults.pop("recent", 0), defaults.pop("recent_copies", 0)
    batch_size = options.batch_size or default_batch
    n_negatives = options.n_negatives or default_negatives
    recent = default_recent if options.recent is None else options.recent
    recent_copies = default_copies if options.recent_copies is None else options.recent_copies
    model_config = _model_config(entry, fit_part, overrides or {})
    trainer_config = _trainer_config(defaults, options, out_dir, task, protocol.k,
                                     val_part is not None and len(val_part) > 0)
    if not distributed.sparse_gradients_supported(resolve_device(trainer_config.device)):
        model_config, trainer_config = _dense_tables(model_config, trainer_config, overrides or {})
    if task == "ranking" and model_cls.input_type == "pairwise":
        data_module: Any = PairwiseData(fit_part, batch_size, n_negatives, seed, recent=recent,
                                        recent_copies=recent_copies)
    elif model_cls.input_type == "item_rows":
        data_module = ItemRowsData(fit_part, batch_size, seed)
    else:
        data_module = RatingsData(fit_part, batch_size, seed)

    seed_everything(seed)  # the initial weights come from the seed too
    network = model_cls(model_config)
    data_info = {"path": str(ratings), "sha256": checksum, "rows": len(data), "users": data.n_users,
                 "items": data.n_items, "read_options": to_plain(dataclasses.asdict(read))}
    info = {"model": model, "trainer_config": to_plain(dataclasses.asdict(trainer_config)), "seed": seed,
            "batch_size": batch_size, "n_negatives": n_negatives if model_cls.input_type == "pairwise" else None,
            "recent": [recent, recent_copies] if model_cls.input_type == "pairwise" else None,
            "val_ratio": val_ratio, "precision": trainer_config.precision, "data": data_info}
    if options.items is not None:
        info["items_file"] = {"path": str(options.items), "sha256": sha256_file(options.items),
                              "titled": sum(title is not None for title in titles or [])}

    def evaluator(trained: nn.Module) -> dict[str, float]:
        device = next(trained.parameters()).device
        refresh(trained, fit_part, device)
        metrics = evaluate_model(trained, fit_part, val_part, protocol, val_negatives, device)
        return {f"val_{key}": value for key, value in metrics.items() if key != "n"}

    evaluate_val = evaluator if val_part is not None else None
    if getattr(model_config, "pretrain", False) and checkpoint is None:
        network = _from_pretrained_towers(model_cls, model_config, data_module, trainer_config, evaluate_val, seed)
    trainer = Trainer(network, data_module, trainer_config, evaluator=evaluate_val,
                      meta={"model": model, "data_sha256": checksum, "protocol": dataclasses.asdict(protocol)})
    if checkpoint is not None:
        _check_resumable(checkpoint, checksum, model, out_dir)
        trainer.restore(checkpoint)
    trainer.fit()
    best = out_dir / "checkpoints" / "best.pt" if out_dir is not None else None
    if val_part is not None and best is not None and best.is_file():
        network.load_state_dict(load_checkpoint(best)["model"])  # keep the best validation epoch
    device = next(network.parameters()).device
    refresh(network, fit_part, device)

    # The validation rows (if any) belong to the training part: masked and never recommended.
    recommender = Recommender(model, network, train_part, test_part, protocol, negatives, info, titles)
    if len(test_part):
        recommender.metrics = recommender.evaluate()
        recommender.metrics["history"] = trainer.history
    network.cpu()
    if out_dir is not None:
        recommender.save(out_dir)
    return recommender


def read_item_titles(path: str | os.PathLike, item_ids: list[str]) -> list[str | None]:
    """Titles of `item_ids` from an item metadata file, `id|title|...` per line (MovieLens
    u.item, which is latin-1: the file is read as UTF-8 when it is valid UTF-8, else latin-1).
    Items the file does not name get None; ids the ratings never mention are ignored."""
    try:
        raw = Path(path).read_bytes()
    except OSError as err:
        raise NlprecError(f"--items {path}: cannot read it ({err.strerror or type(err).__name__})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    titles: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split("|")
        if len(fields) < 2 or not fields[0].strip() or not fields[1].strip():
            raise NlprecError(f"{path}:{number}: expected 'id|title|...' (MovieLens u.item), got {line[:80]!r}")
        item = fields[0].strip()
        if item in titles:
            raise NlprecError(f"{path}:{number}: item {item!r} is listed twice")
        titles[item] = fields[1].strip()
    if not titles:
        raise NlprecError(f"{path}: no 'id|title|...' lines")
    named = [titles.get(item) for item in item_ids]
    if not any(title is not None for title in named):
        raise NlprecError(f"{path}: none of its {len(titles):,} ids is an item of the ratings file (e.g. "
                          f"{next(iter(titles))!r} vs {item_ids[0]!r}): is it the right file?")
    return named


def _from_pretrained_towers(model_cls: type, config: Any, data_module: Any, trainer_config: TrainerConfig,
                            evaluator: Any, seed: int) -> nn.Module:
    """Train each tower alone (same data, schedule and seed; nothing written), then fuse them.

    NeuMF's pretraining (He et al. 2017, 3.4.1): GMF and MLP are fitted separately and the
    fused model starts from their weights. The paper found it ranks better; on ml-100k it did
    not (BENCHMARKS.md), so it is an option, off by default.
    """
    towers = {}
    for tower in ("gmf", "mlp"):
        seed_everything(seed)
        towers[tower] = model_cls(dataclasses.replace(config, towers=tower, pretrain=False))
        Trainer(towers[tower], data_module, dataclasses.replace(trainer_config, out_dir=None),
                evaluator=evaluator).fit()
    return model_cls.from_towers(config, towers["gmf"], towers["mlp"])


def _check_out_dir(out_dir: Path | None, resume: bool, overwrite: bool) -> Path | None:
    """The checkpoint to resume from, after checking `out_dir` may be written."""
    if out_dir is None:
        if resume:
            raise NlprecError("--resume needs --out, the folder holding the checkpoints")
        return None
    if out_dir.exists() and not out_dir.is_dir():
        raise NlprecError(f"{out_dir}: exists and is not a folder")
    last = out_dir / "checkpoints" / "last.pt"
    if resume:
        if not last.is_file():
            raise NlprecError(f"{out_dir}: nothing to resume (no checkpoints/last.pt)")
        return last
    if out_dir.is_dir() and any(out_dir.iterdir()):
        if not overwrite:
            raise NlprecError(f"{out_dir}: folder is not empty; pass --overwrite to replace it or --resume to continue")
        for name in (*_FILES, "metrics.jsonl"):
            (out_dir / name).unlink(missing_ok=True)
        shutil.rmtree(out_dir / "checkpoints", ignore_errors=True)
    return None


def _check_resumable(path: Path, checksum: str, model: str, out_dir: Path | None) -> None:
    meta = load_checkpoint(path).get("meta", {})
    if meta.get("data_sha256") != checksum:
        trained_on = str(meta.get("data_sha256"))[:12]
        raise NlprecError(f"{path}: was trained on a different ratings file (sha256 {trained_on}..., this one "
                          f"{checksum[:12]}...); resume with the same file or train into a new folder")
    if meta.get("model") != model:
        raise NlprecError(f"{path}: is a {meta.get('model')!r} checkpoint, not {model!r}")


def _model_config(entry: Any, train: Interactions, options: dict[str, Any]) -> Any:
    names = {f.name for f in dataclasses.fields(entry.config_cls)}
    fixed = sorted(set(options) & set(_DATA_FIELDS))
    if fixed:
        raise NlprecError(f"option {fixed[0]!r} is set from the data and cannot be overridden")
    values: dict[str, Any] = {"n_users": train.n_users, "n_items": train.n_items}
    if train.ratings is not None and len(train.ratings):
        values.update(global_mean=float(train.ratings.mean()), rating_min=float(train.ratings.min()),
                      rating_max=float(train.ratings.max()))
    values = {key: value for key, value in values.items() if key in names}
    return build_config(entry.config_cls, {**options, **values})


def _dense_tables(config: Any, trainer_config: TrainerConfig, overrides: dict[str, Any]
                  ) -> tuple[Any, TrainerConfig]:
    """Dense tables and AdamW (the models' settings before sparse tables) for a run whose DDP
    cannot all-reduce sparse gradients (torchrun on GPUs: NCCL), unless --set sparse was given."""
    if not getattr(config, "sparse", False) or "sparse" in overrides:
        return config, trainer_config
    optimizer = "adamw" if trainer_config.optimizer == "sparse_adam" else trainer_config.optimizer
    return dataclasses.replace(config, sparse=False), dataclasses.replace(trainer_config, optimizer=optimizer)


def _trainer_config(defaults: dict[str, Any], options: RecommendOptions, out_dir: Path | None, task: str, k: int,
                    has_val: bool) -> TrainerConfig:
    unknown = sorted(set(options.trainer_options) - _TRAINER_OPTIONS)
    if unknown:
        raise NlprecError(f"trainer has no option {unknown[0]!r}; options: {', '.join(sorted(_TRAINER_OPTIONS))}")
    settings = {**defaults, "progress": options.progress, **options.trainer_options}
    device = resolve_device(settings.get("device", "auto"))
    settings.update(seed=options.seed, out_dir=str(out_dir) if out_dir is not None else None,
                    precision=resolve_precision(options.precision, device))
    if has_val:
        settings["early_stopping_metric"] = "val_rmse" if task == "rating" else f"val_ndcg@{k}"
        settings["early_stopping_mode"] = "min" if task == "rating" else "max"
    return build_config(TrainerConfig, settings)


__all__ = ["RecommendOptions", "ReadOptions", "EvalProtocol", "Recommender", "train"]
