"""Disk full and read-only output: every writer goes through nlprec.io.atomic_write, so a write
that fails half way leaves the previous file as it was, no partial file under the final name,
no temporary file, and one NlprecError line naming the path; the CLI prints it and exits 2."""

from __future__ import annotations

import builtins
import errno
import os

import numpy as np
import pytest
import torch

from reliability_support import run_in_process, write_corpus, write_ratings
from nlprec import io as nlprec_io
from nlprec.errors import NlprecError
from nlprec.fasttext_io import FastTextArgs, save_fasttext_bin
from nlprec.subword_vectors import load_vectors
from nlprec.train.checkpoint import save_checkpoint
from nlprec.vectors import Vectors



class _FillsUp:
    """A file handle on a disk with `room` bytes left: the write that crosses it writes what fits
    and raises ENOSPC, like a real full disk."""

    def __init__(self, handle, room: int):
        self._handle, self._room = handle, room

    def write(self, data):
        if len(data) > self._room:
            self._handle.write(data[:self._room])
            self._room = 0
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self._room -= len(data)
        return self._handle.write(data)

    def writelines(self, lines):
        for line in lines:
            self.write(line)

    def __getattr__(self, name):
        return getattr(self._handle, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return self._handle.__exit__(*exc)


def _disk_with_room(monkeypatch, room: int) -> None:
    real_fdopen = os.fdopen
    monkeypatch.setattr(nlprec_io.os, "fdopen", lambda *a, **k: _FillsUp(real_fdopen(*a, **k), room))


def _vectors(seed: int) -> Vectors:
    return Vectors(["a", "b", "c"], np.random.default_rng(seed).normal(size=(3, 4)), {"seed": seed})


def _fasttext_writer(path):
    args = FastTextArgs(dim=2, window=5, epochs=1, min_count=1, negative=5, model="skipgram", buckets=3,
                        min_n=2, max_n=3, sample=1e-4)
    save_fasttext_bin(path, args, ["a", "b"], np.array([2, 1]), np.ones((5, 2), np.float32),
                      np.ones((2, 2), np.float32), tokens=3)


WRITERS = {
    "vectors.npz": lambda path: _vectors(1).save(path),
    "vectors.bin": lambda path: _vectors(1).save(path),
    "vectors.vec": lambda path: _vectors(1).save(path),
    "fasttext.bin": _fasttext_writer,
    "last.pt": lambda path: save_checkpoint(path, {"model": {"w": torch.ones(50)}}),
}


def _check_refused(folder, path, old: bytes, err: NlprecError) -> None:
    message = str(err)
    assert "\n" not in message and str(path) in message and "No space left on device" in message
    assert path.read_bytes() == old  # the previous file, whole
    assert sorted(p.name for p in folder.iterdir()) == [path.name]  # no temporary file left


@pytest.mark.parametrize("room", [0, 7, 40])
@pytest.mark.parametrize("name", sorted(WRITERS))
def test_a_write_that_fills_the_disk_keeps_the_previous_file(name, room, tmp_path, monkeypatch):
    path = tmp_path / name
    path.write_bytes(b"the previous version")
    _disk_with_room(monkeypatch, room)
    with pytest.raises(NlprecError) as err:
        WRITERS[name](path)
    _check_refused(tmp_path, path, b"the previous version", err.value)


@pytest.mark.parametrize("name", sorted(WRITERS))
def test_enospc_at_fsync_keeps_the_previous_file(name, tmp_path, monkeypatch):
    path = tmp_path / name
    path.write_bytes(b"old")

    def fsync(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(nlprec_io.os, "fsync", fsync)
    with pytest.raises(NlprecError) as err:
        WRITERS[name](path)
    _check_refused(tmp_path, path, b"old", err.value)


def test_a_read_only_folder_is_one_line_naming_the_path(tmp_path, monkeypatch):
    """Simulated (EROFS from mkstemp): the tests may run as root, who can write anywhere."""
    path = tmp_path / "v.npz"
    _vectors(1).save(path)
    old = path.read_bytes()

    def mkstemp(*args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr(nlprec_io.tempfile, "mkstemp", mkstemp)
    with pytest.raises(NlprecError, match=r"v\.npz: cannot write \(Read-only file system\)"):
        _vectors(2).save(path)
    assert path.read_bytes() == old


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_really_read_only_folder(tmp_path):
    path = tmp_path / "v.npz"
    _vectors(1).save(path)
    old = path.read_bytes()
    tmp_path.chmod(0o555)
    try:
        with pytest.raises(NlprecError, match="v.npz: cannot write"):
            _vectors(2).save(path)
    finally:
        tmp_path.chmod(0o755)
    assert load_vectors(path).meta == {"seed": 1} and path.read_bytes() == old


def test_cli_disk_full_while_training_is_one_line_and_exit_2(tmp_path, monkeypatch, capsys):
    out = tmp_path / "v.npz"
    args = ["embed", "train", write_corpus(tmp_path / "c.txt", 50), "--out", out, "--epochs", 1, "--dim", 4,
            "--min-count", 1, "--threads", 1, "--device", "cpu", "-q"]
    assert run_in_process(capsys, *args)[0] == 0
    old = out.read_bytes()
    _disk_with_room(monkeypatch, 50)
    code, _, err = run_in_process(capsys, *args[:-1], "--seed", 9, "-q")
    assert code == 2 and err.count("\n") == 1 and err.startswith("error: ") and "No space left on device" in err
    assert out.read_bytes() == old


def test_cli_turns_a_raw_oserror_on_output_into_one_line(tmp_path, monkeypatch, capsys):
    """Writers outside atomic_write (the trainer's metrics.jsonl log) fail with a plain OSError:
    the CLI prints it as one line naming the file and exits 2."""
    real_open = builtins.open

    def open_(file, *args, **kwargs):
        if str(file).endswith("metrics.jsonl"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", open_)
    code, _, err = run_in_process(capsys, "rec", "train", write_ratings(tmp_path / "r.tsv"), "--out", tmp_path / "m",
                                  "--epochs", 1, "--set", "dim=4", "--threads", 1, "--quiet", "--device", "cpu")
    assert code == 2 and err.count("\n") == 1
    assert err == f"error: {tmp_path / 'm' / 'metrics.jsonl'}: No space left on device\n"
    assert not (tmp_path / "m" / "config.json").exists()  # no model folder claims to be complete
