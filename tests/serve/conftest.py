"""Tiny trained models (seconds each, shared by the session) and a real `nlprec serve` process
on a free 127.0.0.1 port, for the serving tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
import torch

from nlprec_cli.main import main

WORDS = "cat dog bird fish runs sleeps eats small big red blue the a".split()


def _cli(argv: list[str]) -> None:
    torch.set_num_threads(1)
    try:
        main(argv)
    except SystemExit as exit_:
        assert exit_.code in (0, None), f"nlprec {' '.join(argv)} exited {exit_.code}"


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("serve-models")


@pytest.fixture(scope="session")
def vectors_path(models_dir) -> Path:
    """word2vec on the built-in demo corpus, native .npz (memory-mapped when served)."""
    out = models_dir / "words.npz"
    _cli(["embed", "train", "--out", str(out), "--epochs", "1", "--dim", "16", "--device", "cpu", "-q"])
    return out


@pytest.fixture(scope="session")
def bin_vectors_path(models_dir, vectors_path) -> Path:
    """The same vectors in word2vec binary (read into memory, not mapped)."""
    from nlprec.vectors import Vectors

    out = models_dir / "words.bin"
    Vectors.load(vectors_path).save(out)
    return out


@pytest.fixture(scope="session")
def subword_path(models_dir) -> Path:
    """fastText on the demo corpus, .npz with n-grams (answers unseen words)."""
    out = models_dir / "sub.npz"
    _cli(["embed", "train", "--arch", "fasttext", "--out", str(out), "--epochs", "1", "--dim", "16",
          "--buckets", "20000", "--device", "cpu", "-q"])
    return out


@pytest.fixture(scope="session")
def ratings_file(models_dir) -> Path:
    """60 users x 50 items with two taste groups, as u.data."""
    rng = np.random.default_rng(0)
    lines = []
    for user in range(60):
        for item in rng.choice(50, 15, replace=False):
            rating = int(np.clip(rng.normal(4.2 if item % 2 == user % 2 else 2.0, 0.7), 1, 5).round())
            lines.append(f"{100 + user}\t{500 + item}\t{rating}\t{880000000 + int(rng.integers(0, 10**6))}")
    path = models_dir / "u.data"
    path.write_text("\n".join(lines) + "\n")
    return path


def _train_recommender(ratings_file: Path, model: str, out: Path) -> Path:
    from nlprec.tasks import recommend

    torch.set_num_threads(1)
    protocol = recommend.EvalProtocol(split="leave_one_out", n_negatives=20) if model == "neumf" else None
    options = recommend.RecommendOptions(model=model, protocol=protocol, progress=False,
                                         trainer_options={"epochs": 2, "device": "cpu"})
    recommend.train(ratings_file, out, options)
    return out


@pytest.fixture(scope="session")
def items_file(models_dir) -> Path:
    """MovieLens u.item-style metadata of the items of `ratings_file` but the last (id|title|date|...,
    latin-1, as MovieLens ships it)."""
    lines = [f"{500 + item}|Film {item}, à la carte ({1990 + item % 10})|01-Jan-1995||http://example.org/|0|1"
             for item in range(49)]
    path = models_dir / "u.item"
    path.write_bytes(("\n".join(lines) + "\n").encode("latin-1"))
    return path


@pytest.fixture(scope="session")
def titled_mf_dir(models_dir, ratings_file, items_file) -> Path:
    """MF trained through the CLI with item titles (rec train --items)."""
    out = models_dir / "mf-titled"
    _cli(["rec", "train", str(ratings_file), "--model", "mf", "--out", str(out), "--items", str(items_file),
          "--epochs", "2", "--device", "cpu", "--quiet"])
    return out


@pytest.fixture(scope="session")
def mf_dir(models_dir, ratings_file) -> Path:
    return _train_recommender(ratings_file, "mf", models_dir / "mf")


@pytest.fixture(scope="session")
def neumf_dir(models_dir, ratings_file) -> Path:
    return _train_recommender(ratings_file, "neumf", models_dir / "neumf")


@pytest.fixture(scope="session")
def translator_dir(models_dir) -> Path:
    """A 1+1-layer Transformer trained 5 steps on a toy reversal task."""
    rng = np.random.default_rng(0)
    lines = []
    for _ in range(200):
        words = list(rng.choice(WORDS, rng.integers(1, 6)))
        lines.append(" ".join(words) + "\t" + " ".join(w.upper() for w in reversed(words)))
    pairs = models_dir / "pairs.tsv"
    pairs.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = models_dir / "tfm"
    _cli(["translate", "train", str(pairs), "--out", str(out), "--max-steps", "5", "--vocab-size", "500",
          "--valid-size", "20", "--max-tokens", "300", "--threads", "1", "--warmup", "2", "--device", "cpu", "-q",
          "--set", "d_model=32", "--set", "heads=2", "--set", "encoder_layers=1", "--set", "decoder_layers=1",
          "--set", "d_ff=64"])
    return out


@pytest.fixture(scope="session")
def classifier_dir(models_dir) -> Path:
    """A small TextCNN trained 2 epochs on toy sentiment sentences."""
    rng = np.random.default_rng(0)
    positive, negative = "good great fine lovely superb nice".split(), "bad awful poor terrible dull boring".split()
    filler = "the movie was a plot actors and".split()
    lines = []
    for i in range(200):
        words = [*rng.choice(positive if i % 2 else negative, 2), *rng.choice(filler, 1 + i % 5)]
        lines.append(f"{'pos' if i % 2 else 'neg'}\t{' '.join(rng.permutation(words))}")
    data = models_dir / "sentiment.tsv"
    data.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = models_dir / "cls"
    _cli(["classify", "train", str(data), "--out", str(out), "--epochs", "2", "--threads", "1", "--device", "cpu",
          "--set", "maps=8", "-q"])
    return out


@pytest.fixture(scope="session")
def bert_dir(models_dir) -> Path:
    """A 1-layer BERT pretrained 3 steps on toy documents (one per line)."""
    rng = np.random.default_rng(0)
    words = "the cat dog bird sat ran on a mat big small red blue house tree park".split()
    lines = [" ".join(" ".join(rng.choice(words, rng.integers(3, 7))) + "." for _ in range(4)) for _ in range(60)]
    corpus = models_dir / "documents.txt"
    corpus.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = models_dir / "bert"
    _cli(["bert", "pretrain", str(corpus), "--out", str(out), "--format", "documents", "--max-steps", "3",
          "--vocab-size", "60", "--max-len", "32", "--batch-size", "8", "--threads", "1", "--device", "cpu", "-q",
          "--set", "layers=1", "--set", "hidden=32", "--set", "heads=2", "--set", "d_ff=64"])
    return out


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """`python -m nlprec_cli.main serve ...` on a free loopback port; `url`, `proc`, `stop()`."""

    def __init__(self, args: list[str], env: dict[str, str] | None = None, cache: Path | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        command = [sys.executable, "-m", "nlprec_cli.main", "serve", "--host", "127.0.0.1", "--port", str(self.port),
                   "--threads", "1", "--log-level", "warning", *args]
        if cache is not None:
            command += ["--cache-dir", str(cache)]
        self.log = open(Path(os.environ.get("TMPDIR", "/tmp")) / f"nlprec-serve-{self.port}.log", "w+")
        self.proc = subprocess.Popen(command, stdout=self.log, stderr=subprocess.STDOUT,
                                     env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})})
        self._wait_ready()

    def _wait_ready(self, seconds: float = 120) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}: {self.output()}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"server not ready within {seconds} s: {self.output()}")

    def output(self) -> str:
        self.log.flush()
        self.log.seek(0)
        return self.log.read()[-3000:]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.log.close()


@pytest.fixture(scope="session")
def index_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("index-cache")


@pytest.fixture(scope="session")
def server(vectors_path, bin_vectors_path, subword_path, mf_dir, neumf_dir, translator_dir, classifier_dir,
           bert_dir, index_cache):
    """Every kind behind one server, default limits but 64 items per request."""
    running = Server(["--model", f"words={vectors_path}", "--model", f"wbin={bin_vectors_path}",
                      "--model", f"sub={subword_path}", "--model", f"mf={mf_dir}", "--model", f"nm={neumf_dir}",
                      "--model", f"fr={translator_dir}", "--model", f"cls={classifier_dir}",
                      "--model", f"bert={bert_dir}",
                      "--model", f"whnsw={vectors_path}", "--index", "whnsw=hnsw:hnsw_m=8",
                      "--max-items", "64", "--max-batch", "64",
                      "--max-wait-ms", "5"], cache=index_cache)
    yield running
    running.stop()


@pytest.fixture(scope="session")
def start_server():
    """`start_server(args, env=None, cache=None)` -> a running `Server` (stop it yourself)."""
    return Server


@pytest.fixture()
def port() -> int:
    return free_port()
