"""Kill and resume through the CLI, for each training family.

Each test runs the real `nlprec ... train` command in a subprocess (--threads 1, fixed seed),
SIGKILLs it at a point drawn from the kill seed (just before an optimizer step, or while
last.pt is half written), reruns the same command with --resume, and checks that the final
weights equal those of an uninterrupted run bit for bit: with one thread every family is
deterministic on the CPU, and a checkpoint restores model, optimizer, schedule position and
every RNG. Checkpoints are written to a temporary file and renamed, and read back only after
their CRC-32s check out, so the half-written one is never loaded: the resume starts from the
previous good last.pt. The default run tries one kill point per family; `-m slow` six.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import random
import shutil
import sys
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import torch

from reliability_support import (run_in_process, run_subprocess, write_corpus, write_labelled, write_pairs,
                                 write_ratings)
from nlprec.train import load_checkpoint
from nlprec.vectors import Vectors

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="kill_runner reads /proc")


@dataclasses.dataclass(frozen=True)
class Family:
    """One training command, where it checkpoints, and how to read its final weights."""

    name: str
    epochs: int
    args: Callable[[Path, Path], list]  # (data folder, output folder) -> CLI arguments
    checkpoint: Callable[[Path], Path]  # output folder -> last.pt
    weights: Callable[[Path], dict[str, np.ndarray]]  # output folder -> final weights
    final_checkpoint: bool = True  # whether a finished run keeps its last.pt (the embeddings do not)


def _model_pt(out: Path) -> dict[str, np.ndarray]:
    return {key: value.numpy() for key, value in torch.load(out / "model" / "model.pt", weights_only=True).items()}


FAMILIES = {
    "embeddings": Family(
        "embeddings", 6,
        lambda data, out: ["embed", "train", write_corpus(data / "corpus.txt"), "--out", out / "v.npz",
                           "--epochs", 6, "--dim", 8, "--min-count", 1, "--threads", 1, "--seed", 3, "--device", "cpu",
                           "-q"],
        lambda out: out / "v.npz.run" / "checkpoints" / "last.pt",
        lambda out: {"vectors": Vectors.load(out / "v.npz").matrix}, final_checkpoint=False),
    "recommenders": Family(
        "recommenders", 4,
        lambda data, out: ["rec", "train", write_ratings(data / "ratings.tsv"), "--model", "mf", "--out",
                           out / "model", "--epochs", 4, "--batch-size", 32, "--set", "dim=4", "--threads", 1,
                           "--seed", 3, "--device", "cpu", "--quiet"],
        lambda out: out / "model" / "checkpoints" / "last.pt",
        _model_pt),
    "translation": Family(
        "translation", 4,
        lambda data, out: ["translate", "train", write_pairs(data / "pairs.tsv"), "--out", out / "model",
                           "--vocab-size", 60, "--valid-size", 0, "--epochs", 4, "--max-tokens", 120,
                           "--set", "d_model=16", "--set", "heads=2", "--set", "encoder_layers=1",
                           "--set", "decoder_layers=1", "--set", "d_ff=32", "--threads", 1, "--seed", 3,
                           "--device", "cpu", "-q"],
        lambda out: out / "model" / "checkpoints" / "last.pt",
        _model_pt),
    "classification": Family(
        "classification", 4,
        lambda data, out: ["classify", "train", write_labelled(data / "texts.tsv"), "--out", out / "model",
                           "--model", "textcnn", "--epochs", 4, "--batch-size", 16, "--min-count", 1,
                           "--set", "maps=4", "--threads", 1, "--seed", 3, "--device", "cpu", "-q"],
        lambda out: out / "model" / "checkpoints" / "last.pt",
        _model_pt),
    "bert": Family(
        "bert", 3,
        lambda data, out: ["bert", "pretrain", write_corpus(data / "corpus.txt"), "--out", out / "model",
                           "--format", "sentences", "--no-nsp", "--vocab-size", 60, "--max-len", 16,
                           "--batch-size", 16, "--epochs", 3, "--heldout-fraction", 0, "--set", "hidden=16",
                           "--set", "layers=1", "--set", "heads=2", "--set", "d_ff=32", "--threads", 1,
                           "--seed", 3, "--device", "cpu", "--precision", "fp32", "-q"],
        lambda out: out / "model" / "checkpoints" / "last.pt",
        _model_pt),
}


@pytest.fixture(scope="module")
def baselines(tmp_path_factory):
    """Uninterrupted runs, made on first use: family name -> (output folder, total steps)."""
    made: dict[str, tuple[Path, int]] = {}

    def get(family: Family) -> tuple[Path, int]:
        if family.name not in made:
            root = tmp_path_factory.mktemp(f"{family.name}-straight")
            done = run_subprocess(family.args(root, root), cwd=root)
            assert done.returncode == 0, done.stderr
            made[family.name] = (root, _steps_done(family.checkpoint(root).parent.parent / "metrics.jsonl"))
        return made[family.name]

    return get


def _steps_done(metrics: Path) -> int:
    """The optimizer steps of a finished run, from the last epoch record of its metrics.jsonl."""
    records = [json.loads(line) for line in metrics.read_text().splitlines()]
    return [record for record in records if record.get("event") == "epoch"][-1]["step"]


def kill_point(seed: int, total_steps: int, epochs: int, final_checkpoint: bool = True) -> tuple:
    """Where to kill, drawn from `seed`, always after the first epoch's checkpoint exists:
    ("step", n) before optimizer step n, or ("checkpoint", n, fraction) while writing the n-th
    last.pt (one per epoch end, the last epoch's only where a finished run keeps its checkpoint)."""
    rng = random.Random(seed)
    steps_per_epoch = math.ceil(total_steps / epochs)
    if rng.random() < 0.5:
        return "step", rng.randint(steps_per_epoch + 1, total_steps)
    return "checkpoint", rng.randint(2, epochs if final_checkpoint else epochs - 1), rng.choice([0.0, 0.05, 0.5, 0.999])


def _kill_and_resume(family: Family, seed: int, baselines, tmp_path: Path) -> None:
    straight, total = baselines(family)
    point = kill_point(seed, total, family.epochs, family.final_checkpoint)
    args = family.args(tmp_path, tmp_path)
    killed = run_subprocess(args, kill=point, cwd=tmp_path)
    assert killed.returncode == -9, f"{point}: not killed (status {killed.returncode}): {killed.stderr[-2000:]}"
    last = family.checkpoint(tmp_path)
    if point[0] == "checkpoint":
        partial = list(last.parent.glob(".last.pt.*.tmp"))
        assert len(partial) == 1  # the half-written checkpoint is there, under a temporary name only
    before = load_checkpoint(last)["train_state"]["step"]  # the previous good last.pt still loads
    assert 0 < before <= total  # the final save follows the last epoch's: killing it leaves that one
    resumed = run_subprocess([*args, "--resume"], cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert not list(last.parent.glob(".last.pt.*.tmp"))  # the stale temporary file was cleaned up
    expected, got = family.weights(straight), family.weights(tmp_path)
    assert expected.keys() == got.keys()
    for key in expected:
        assert np.array_equal(expected[key], got[key]), f"{family.name} {point}: {key} differs after the resume"
    if os.environ.get("NLPREC_KILL_REPORT"):  # RELIABILITY.md quotes these lines
        with open(os.environ["NLPREC_KILL_REPORT"], "a", encoding="utf-8") as handle:
            handle.write(json.dumps({"family": family.name, "seed": seed, "kill": point, "resumed_from_step": before,
                                     "total_steps": total, "bit_for_bit": True}) + "\n")


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_killed_run_resumes_to_the_uninterrupted_weights(family, baselines, tmp_path):
    _kill_and_resume(FAMILIES[family], 0, baselines, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(1, 7))
@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_killed_run_resumes_to_the_uninterrupted_weights_at_many_points(family, seed, baselines, tmp_path):
    _kill_and_resume(FAMILIES[family], seed, baselines, tmp_path)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_a_damaged_last_checkpoint_is_refused_in_one_line(family, baselines, tmp_path, capsys):
    """A last.pt damaged after it was written (not by a kill: those never reach last.pt) has no
    older copy to fall back on, so --resume fails with one line naming it and writes nothing.
    The damage is one flipped byte inside a weight, which torch would load as a wrong value."""
    spec = FAMILIES[family]
    straight, total = baselines(spec)
    out = tmp_path / "run"
    if spec.final_checkpoint:
        shutil.copytree(straight, out)
    else:  # a finished run keeps no last.pt: stop one before the end instead
        out.mkdir()
        assert run_subprocess(spec.args(out, out), kill=("step", total), cwd=out).returncode == -9
    last = spec.checkpoint(out)
    _flip_a_weight_byte(last)  # torch alone would load it, with one wrong weight
    weights_before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file() and p != last}
    code, _, err = run_in_process(capsys, *spec.args(out, out), "--resume")
    last_line = err.rstrip("\n").split("\n")[-1]  # after any progress lines the command logged
    assert code == 2 and last_line.startswith("error: ") and "last.pt" in last_line and err.count("error:") == 1
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file() and p != last} == weights_before


def _flip_a_weight_byte(path: Path) -> None:
    """Flip the first byte of the first tensor record inside torch's zip archive."""
    import zipfile

    with zipfile.ZipFile(path) as archive:
        info = next(i for i in archive.infolist() if "/data/" in i.filename)
    data = bytearray(path.read_bytes())
    local = info.header_offset
    start = local + 30 + int.from_bytes(data[local + 26:local + 28], "little") + \
        int.from_bytes(data[local + 28:local + 30], "little")  # past the local header, name and extra field
    data[start] ^= 0xFF
    path.write_bytes(bytes(data))
