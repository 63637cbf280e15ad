"""Recommenders as the catalogue grows: `nlprec rec train --model mf` and `--model neumf` against
implicit's BPR on seeded synthetic interaction logs with power-law popularity.

    python benchmarks/bench_rec_scale.py --out benchmarks/results/rec_scale.json
    python benchmarks/bench_rec_scale.py --sizes 1M --out /tmp/rec_scale_1m.json      # the small end only
    python benchmarks/bench_rec_scale.py steps      # one MF step: dense Adam, SparseAdam, RowAdam; two catalogue sizes
    python benchmarks/bench_rec_scale.py interleaved mf 2   # per-step cost at 1M and 10M, one process, alternating

Logs (written once into --work as Parquet: user, item, rating, timestamp): SIZES gives the
interactions, users and items of each; users and items are drawn from Zipf-like laws (item
rank r with weight (r + 1)^-1.0, user rank with (r + 1)^-0.7), repeated (user, item) pairs
dropped, ratings 1-5 and timestamps drawn with the same seed. Every job runs in a process of
its own, so its peak resident memory (ru_maxrss of that child) is its own:

- nlprec mf (explicit, random 10% test, RMSE) and nlprec neumf (implicit, leave-one-out, 99
  sampled negatives drawn once): `nlprec rec train`'s code path for --max-steps steps; wall and
  CPU seconds of the first step (the epoch's set-up) and per later step, the epoch they
  extrapolate to (first + per step x the remaining steps of the epoch),
  the whole command's wall and CPU seconds and peak RSS; at the end, each model's epoch-time
  ratio of the largest log to the smallest (wall and CPU; CPU is steadier on a busy machine).
  `--repeats R` runs these jobs in R rounds, the sizes back to back in each: a job's figures are
  its median run, and the ratio is also given round by round (this VM's speed drifts 2x).
- evaluation of the saved neumf folder in a fresh process: the 99 sampled negatives
  (`Recommender.evaluate("sampled")`) and full ranking over every unseen item
  (`evaluate("full")`); at the large end full ranking scores --full-users test users drawn with
  the seed (the time per user is printed and the whole extrapolated, labelled as such).
- implicit's BayesianPersonalizedRanking (factors 64, the same threads, E iterations) on the
  same user x item matrix: seconds per epoch and peak RSS.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, write_json  # noqa: E402

SIZES = {"1M": (1_000_000, 20_000, 10_000), "10M": (10_000_000, 100_000, 50_000)}


def synthetic_log(work: Path, label: str, seed: int = 0) -> Path:
    """The seeded power-law log of size `label` as Parquet (built once)."""
    out = work / f"log-{label}.parquet"
    if out.is_file():
        return out
    import pyarrow as pa
    import pyarrow.parquet as pq

    interactions, n_users, n_items = SIZES[label]
    rng = np.random.default_rng(seed)
    user_weights = 1.0 / np.arange(1, n_users + 1) ** 0.7  # (U,)
    item_weights = 1.0 / np.arange(1, n_items + 1) ** 1.0  # (I,)
    drawn = int(interactions * 1.6)  # repeated pairs are dropped: draw more, keep the first `interactions`
    users = rng.choice(n_users, drawn, p=user_weights / user_weights.sum())  # (drawn,)
    items = rng.permutation(n_items)[rng.choice(n_items, drawn, p=item_weights / item_weights.sum())]  # (drawn,)
    _, first = np.unique(users.astype(np.int64) * n_items + items, return_index=True)
    keep = np.sort(first)[:interactions]
    if len(keep) < interactions:
        raise SystemExit(f"{label}: only {len(keep):,} distinct pairs drawn; raise the draw factor")
    users, items = users[keep], items[keep]
    table = pa.table({"user": users.astype(np.int64), "item": items.astype(np.int64),
                      "rating": rng.integers(1, 6, len(keep)).astype(np.int64),
                      "timestamp": rng.integers(880_000_000, 890_000_000, len(keep)).astype(np.int64)})
    work.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, out.with_suffix(".tmp"))
    os.replace(out.with_suffix(".tmp"), out)
    return out


def run_measured(command: list[str], log: Path) -> dict:
    """Run `command`; its wall seconds, exit status and peak resident memory (MiB)."""
    started = time.perf_counter()
    with open(log, "w") as handle:
        process = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise SystemExit(f"{' '.join(command)} exited {code}; see {log}")
    return {"seconds": round(seconds, 1), "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 1),
            "peak_rss_mib": round(usage.ru_maxrss / 1024, 1)}


def nlprec_train(log_file: Path, model: str, out: Path, max_steps: int, threads: int, script: str) -> dict:
    """`nlprec rec train`'s code path (nlprec.tasks.recommend.train) for `max_steps` steps of the
    first epoch, in its own process: seconds per step, examples/s, the whole run and peak RSS."""
    if out.exists():
        import shutil

        shutil.rmtree(out)
    log = out.with_suffix(".log")
    result = run_measured([sys.executable, script, "train", str(log_file), model, str(out), str(max_steps),
                           str(threads)], log)
    result.update(last_json(log))
    return result


def train_part(log_file: str, model: str, out: str, max_steps: int, threads: int) -> None:
    """Train for `max_steps` steps, timing each step's end (wall and CPU). The epoch estimate is
    the first step (which carries the epoch's shuffle and negatives set-up) plus the steady
    per-step time of the others times the epoch's remaining steps: charging the one-time set-up
    to 200 steps alone would inflate the large log's estimate."""
    from nlprec.tasks import recommend
    from nlprec.train import Trainer

    fit, step, marks, loop = Trainer.fit, Trainer._step, [], {}

    def timed_fit(trainer: Trainer) -> list:
        marks.append((time.perf_counter(), time.process_time()))
        loop["steps_per_epoch"] = trainer.steps_per_epoch()
        return fit(trainer)

    def timed_step(trainer: Trainer, micro_batches: list) -> dict:
        parts = step(trainer, micro_batches)
        marks.append((time.perf_counter(), time.process_time()))
        return parts

    Trainer.fit, Trainer._step = timed_fit, timed_step
    options = recommend.RecommendOptions(model=model, threads=threads, progress=False, trainer_options={
        "epochs": 1, "max_steps": max_steps, "device": "cpu"})
    started = time.perf_counter()
    trained = recommend.train(log_file, out, options)
    seconds = time.perf_counter() - started
    history = [record for record in trained.metrics.get("history", []) if record.get("event") == "epoch"]
    steps, train_seconds = history[-1]["step"], sum(record["seconds"] for record in history)
    times = np.array(marks)  # (steps + 1, 2): fit start, then each step's end; wall, CPU
    first, steady = times[1] - times[0], (times[-1] - times[1]) / (len(times) - 2)  # (2,) each
    epoch = first + steady * (loop["steps_per_epoch"] - 1)
    print(json.dumps({"steps": steps, "train_seconds": round(train_seconds, 1),
                      "first_step_seconds": round(first[0], 3), "first_step_cpu_seconds": round(first[1], 3),
                      "seconds_per_step": round(steady[0], 4), "cpu_seconds_per_step": round(steady[1], 4),
                      "steps_per_epoch": loop["steps_per_epoch"],
                      "epoch_seconds_extrapolated": round(epoch[0], 1),
                      "epoch_cpu_seconds_extrapolated": round(epoch[1], 1),
                      "read_split_evaluate_save_seconds": round(seconds - train_seconds, 1),
                      "test": trained.metrics.get("metrics")}))


def evaluate_part(folder: str, full_users: int, threads: int) -> None:
    """In its own process: time the saved folder's sampled and full-ranking evaluation."""
    import torch

    from nlprec.tasks.recommender import Recommender, evaluate_model

    torch.set_num_threads(threads)
    model = Recommender.load(folder)
    out: dict = {}
    started = time.perf_counter()
    out["sampled"] = model.evaluate("sampled")
    out["sampled"]["seconds"] = round(time.perf_counter() - started, 2)
    test = model.test
    users = np.unique(test.users)
    if full_users and len(users) > full_users:
        chosen = np.sort(np.random.default_rng(0).choice(users, full_users, replace=False))
        test = test.subset(np.flatnonzero(np.isin(test.users, chosen)))
    protocol = dataclasses.replace(model.protocol, ranking="full")
    started = time.perf_counter()
    metrics = evaluate_model(model.model, model.train, test, protocol, None, model.device)
    seconds = time.perf_counter() - started
    out["full"] = {"metrics": metrics, "test_users": int(len(np.unique(test.users))),
                   "all_test_users": int(len(users)), "seconds": round(seconds, 2),
                   "seconds_all_users_extrapolated": round(seconds * len(users) / len(np.unique(test.users)), 1)}
    print(json.dumps(out))


def implicit_part(log_file: str, epochs: int, threads: int) -> None:
    """In its own process: implicit's BPR on the log's user x item matrix, seconds per epoch."""
    import pyarrow.parquet as pq
    import scipy.sparse as sp
    from implicit.cpu.bpr import BayesianPersonalizedRanking

    table = pq.read_table(log_file)
    users, items = table["user"].to_numpy(), table["item"].to_numpy()
    matrix = sp.csr_matrix((np.ones(len(users), np.float32), (users, items)))
    model = BayesianPersonalizedRanking(factors=64, iterations=epochs, num_threads=threads, random_state=0)
    started = time.perf_counter()
    model.fit(matrix, show_progress=False)
    seconds = time.perf_counter() - started
    print(json.dumps({"seconds": round(seconds, 1), "seconds_per_epoch": round(seconds / epochs, 1)}))


def step_part(out: Path) -> None:
    """In-process, one thread: CPU ms of one MF training step (batch 1,024, uniform rows) at 20k x
    10k and 100k x 50k, split into loss + backward and the optimizer step, for dense tables + Adam,
    sparse tables + torch's SparseAdam and sparse tables + nlprec's RowAdam (the model's default)."""
    import torch

    from nlprec.models.mf import MF, MFConfig
    from nlprec.train.optimizers import RowAdam

    torch.set_num_threads(1)
    variants = {"dense + Adam": (False, torch.optim.Adam), "sparse + torch SparseAdam": (True, torch.optim.SparseAdam),
                "sparse + RowAdam": (True, RowAdam)}
    rows = {}
    for n_users, n_items in ((20_000, 10_000), (100_000, 50_000)):
        for name, (sparse, optimizer_class) in variants.items():
            model = MF(MFConfig(n_users=n_users, n_items=n_items, sparse=sparse))
            optimizer = optimizer_class(list(model.parameters()), lr=2e-3)
            generator = torch.Generator().manual_seed(0)
            spent = np.zeros(2)  # CPU seconds: loss + backward, optimizer step
            for index in range(130):
                batch = {"users": torch.randint(0, n_users, (1024,), generator=generator),
                         "items": torch.randint(0, n_items, (1024,), generator=generator),
                         "ratings": torch.rand(1024, generator=generator) * 4 + 1}
                started = time.process_time()
                optimizer.zero_grad()
                model.loss(batch)["loss"].backward()
                middle = time.process_time()
                optimizer.step()
                if index >= 30:  # the first steps allocate the moments and load compiled code
                    spent += (middle - started, time.process_time() - middle)
            label = f"{n_users}x{n_items} {name}"
            rows[label] = {"loss_backward_ms": round(float(spent[0]) * 10, 2), "optimizer_ms": round(float(spent[1]) * 10, 2),
                           "step_ms": round(float(spent.sum()) * 10, 2)}
            print(f"{label}: {rows[label]} CPU per step", flush=True)
    write_json(out, {"command": "python benchmarks/bench_rec_scale.py steps", "mf_step_cpu_ms": rows})


def interleaved_part(work: Path, model: str, threads: int, out: Path, blocks: int = 12, block_steps: int = 150) -> None:
    """Both logs' trainers in one process, `blocks` rounds of `block_steps` steps each, alternating:
    ms per step (batch loading, the trainer's step, its optimizer inside it), median over the
    rounds after two warm-up rounds. The VM's drift hits both sizes alike, so the step ratio is
    steadier than across processes."""
    import torch

    from nlprec.tasks import recommend
    from nlprec.train import Trainer

    torch.set_num_threads(threads)
    trainers: list = []
    fit = Trainer.fit
    Trainer.fit = lambda trainer: trainers.append(trainer) or []  # build each trainer, train nothing
    labels = list(SIZES)
    for label in labels:
        options = recommend.RecommendOptions(model=model, threads=threads, progress=False,
                                             trainer_options={"epochs": 1, "device": "cpu"})
        recommend.train(synthetic_log(work, label), None, options)
    Trainer.fit = fit
    epochs = [0] * len(trainers)
    loaders = [iter(trainer.data.train_dataloader(epoch=0)) for trainer in trainers]
    spent: list[list] = [[] for _ in trainers]
    for block in range(blocks):
        for index, trainer in enumerate(trainers):
            optimizer_step, optimizer_seconds = trainer.optimizer.step, [0.0]

            def timed_optimizer_step(*args, step=optimizer_step, seconds=optimizer_seconds, **kwargs):
                started = time.perf_counter()
                step(*args, **kwargs)
                seconds[0] += time.perf_counter() - started

            trainer.optimizer.step = timed_optimizer_step
            load = train = 0.0
            for _ in range(block_steps):
                started = time.perf_counter()
                batch = next(loaders[index], None)
                if batch is None:  # the epoch ran out: the next one (its shuffle is not timed)
                    epochs[index] += 1
                    loaders[index] = iter(trainer.data.train_dataloader(epoch=epochs[index]))
                    started = time.perf_counter()
                    batch = next(loaders[index])
                loaded = time.perf_counter()
                trainer._step([batch])
                load, train = load + loaded - started, train + time.perf_counter() - loaded
            trainer.optimizer.step = optimizer_step
            if block >= 2:
                spent[index].append([load, train, optimizer_seconds[0]])
    rows = {}
    for label, times in zip(labels, spent):
        load, train, optimizer = np.median(np.array(times), axis=0) / block_steps * 1000  # ms per step
        rows[label] = {"load_ms": round(float(load), 3), "step_ms": round(float(train), 3),
                       "optimizer_ms": round(float(optimizer), 3), "total_ms": round(float(load + train), 3)}
        print(f"{model}, {threads} thread(s), {label}: {rows[label]}", flush=True)
    ratio = rows[labels[-1]]["total_ms"] / rows[labels[0]]["total_ms"]
    print(f"step cost {labels[-1]} / {labels[0]}: {ratio:.3f}", flush=True)
    write_json(out, {"command": f"python benchmarks/bench_rec_scale.py interleaved {model} {threads}",
                     "model": model, "threads": threads, "blocks": blocks, "block_steps": block_steps,
                     "ms_per_step": rows, "step_cost_ratio": round(ratio, 3)})


def median_run(runs: list[dict]) -> dict:
    """The run with the median extrapolated epoch (the lower middle one of an even count)."""
    ranked = sorted(runs, key=lambda run: run.get("epoch_seconds_extrapolated", float("inf")))
    return ranked[(len(ranked) - 1) // 2]


def epoch_ratios(sizes: dict) -> dict:
    """Extrapolated epoch time (wall and CPU) of the largest log over the smallest's, per model: of
    the median runs, and round by round (each round ran both sizes back to back)."""
    first, last = sizes[min(sizes, key=lambda label: sizes[label]["interactions"])], \
        sizes[max(sizes, key=lambda label: sizes[label]["interactions"])]
    ratios = {}
    for model in ("mf", "neumf"):
        small, large = first.get(f"nlprec_{model}", {}), last.get(f"nlprec_{model}", {})
        for kind in ("epoch_seconds_extrapolated", "epoch_cpu_seconds_extrapolated"):
            if small.get(kind) and large.get(kind):
                ratios[f"{model}_{kind}"] = round(large[kind] / small[kind], 2)
                ratios[f"{model}_{kind}_per_round"] = [
                    round(big[kind] / little[kind], 2)
                    for little, big in zip(first[f"nlprec_{model}_runs"], last[f"nlprec_{model}_runs"])
                    if little.get(kind) and big.get(kind)]
    return ratios


def last_json(log: Path) -> dict:
    return json.loads(log.read_text().strip().splitlines()[-1])


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] in ("evaluate", "implicit"):
        part, target, first, threads = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
        (evaluate_part if part == "evaluate" else implicit_part)(target, first, threads)
        return
    if len(sys.argv) > 1 and sys.argv[1] == "steps":
        step_part(REPO / "benchmarks" / "results" / "rec_step_row_adam.json")
        return
    if len(sys.argv) > 1 and sys.argv[1] == "interleaved":
        model, threads = sys.argv[2], int(sys.argv[3])
        interleaved_part(Path("/tmp/nlprec-bench/rec-scale"), model, threads,
                         REPO / "benchmarks" / "results" / f"rec_step_interleaved_{model}_{threads}.json")
        return
    if len(sys.argv) > 1 and sys.argv[1] == "train":
        train_part(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), int(sys.argv[6]))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "rec_scale.json")
    parser.add_argument("--work", type=Path, default=Path("/tmp/nlprec-bench/rec-scale"))
    parser.add_argument("--sizes", default="1M,10M")
    parser.add_argument("--epochs", type=int, default=1, help="implicit BPR iterations")
    parser.add_argument("--max-steps", type=int, default=300, help="nlprec training steps timed (batches of 1024)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--full-users", type=int, default=2000, help="test users scored by full ranking at most")
    parser.add_argument("--repeats", type=int, default=1,
                        help="rounds of nlprec training jobs, sizes alternating within a round; each job's "
                             "figures are its median run")
    args = parser.parse_args()
    results: dict = {"command": " ".join(["python", "benchmarks/bench_rec_scale.py", *sys.argv[1:]]),
                     "load_average_start": os.getloadavg(), "epochs": args.epochs, "max_steps": args.max_steps,
                     "threads": args.threads, "repeats": args.repeats,
                     "sizes": {}}
    script = str(Path(__file__).resolve())
    labels = args.sizes.split(",")
    for label in labels:
        interactions, n_users, n_items = SIZES[label]
        results["sizes"][label] = {"interactions": interactions, "users": n_users, "items": n_items, "log": str(
            synthetic_log(args.work, label))}
    for round_index in range(args.repeats):
        for label in labels:
            row = results["sizes"][label]
            for model in ("mf", "neumf"):
                print(f"round {round_index + 1}, {label}: nlprec {model} ...", flush=True)
                run = nlprec_train(Path(row["log"]), model, args.work / f"{model}-{label}", args.max_steps,
                                   args.threads, script)
                row.setdefault(f"nlprec_{model}_runs", []).append(run)
                row[f"nlprec_{model}"] = median_run(row[f"nlprec_{model}_runs"])
                print(f"  {run}", flush=True)
                write_json(args.out, results)
    for label in labels:
        row, log_file = results["sizes"][label], Path(results["sizes"][label]["log"])
        print(f"{label}: evaluation of the neumf folder ...", flush=True)
        log = args.work / f"evaluate-{label}.log"
        row["neumf_evaluation"] = run_measured([sys.executable, script, "evaluate", str(args.work / f"neumf-{label}"),
                                                str(args.full_users), str(args.threads)], log)
        row["neumf_evaluation"].update(last_json(log))
        print(f"  {row['neumf_evaluation']}", flush=True)
        write_json(args.out, results)
        print(f"{label}: implicit BPR ...", flush=True)
        log = args.work / f"implicit-{label}.log"
        row["implicit_bpr"] = run_measured([sys.executable, script, "implicit", str(log_file), str(args.epochs),
                                            str(args.threads)], log)
        row["implicit_bpr"].update(last_json(log))
        print(f"  {row['implicit_bpr']}", flush=True)
        write_json(args.out, results)
    results["epoch_ratio_last_to_first"] = epoch_ratios(results["sizes"])
    results["load_average_end"] = os.getloadavg()
    write_json(args.out, results)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
