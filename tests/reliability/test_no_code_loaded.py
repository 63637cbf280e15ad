"""Loading never runs code from a file: checkpoints, model folders and vectors holding a pickle
that would create a file are refused with one line, and the file never appears.

Each payload is first shown to be live (an unsafe load does create the file), so the tests
would fail if nlprec ever unpickled it.
"""

from __future__ import annotations

import pickle
import shutil

import numpy as np
import pytest
import torch

from reliability_support import run_in_process, write_corpus, write_pairs, write_ratings
from nlprec.errors import NlprecError
from nlprec.subword_vectors import load_vectors
from nlprec.train.checkpoint import FORMAT, load_checkpoint
from nlprec.tasks.translate import TranslateOptions, train
from nlprec.vectors import Vectors


class Payload:
    """Unpickling this calls open(marker, "w"): the file appears if code from the file ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return open, (self.marker, "w")


def _live(marker, unsafe_load) -> None:
    """Check that the payload does run when loaded unsafely, then remove its trace."""
    unsafe_load()
    assert marker.exists(), "the payload did not run even when loaded unsafely: the test proves nothing"
    marker.unlink()


def _refused(err: str, name: str) -> None:
    assert err.count("\n") == 1 and err.startswith("error: ") and name in err, err


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """A tiny recommender folder, translation folder and embedding run (with its checkpoint)."""
    root = tmp_path_factory.mktemp("folders")
    torch.set_num_threads(1)
    from nlprec_cli.main import main

    main(["rec", "train", str(write_ratings(root / "r.tsv")), "--out", str(root / "rec"), "--epochs", "1",
          "--set", "dim=4", "--threads", "1", "--quiet", "--device", "cpu"])
    options = TranslateOptions(vocab_size=60, valid_size=0, max_tokens=120, max_steps=2, threads=1, progress=False,
                               warmup_steps=1, device="cpu")
    train(write_pairs(root / "p.tsv"), root / "tfm", options,
                      dict(d_model=16, heads=2, encoder_layers=1, decoder_layers=1, d_ff=32), log=lambda *_: None)
    embed = ["embed", "train", str(write_corpus(root / "c.txt", 50)), "--epochs", "1", "--dim", "4", "--min-count",
             "1", "--threads", "1", "--device", "cpu", "-q"]
    main([*embed, "--out", str(root / "v.npz")])
    with pytest.MonkeyPatch.context() as patch, pytest.raises(SystemExit):  # a finished run keeps its checkpoint
        patch.setattr(Vectors, "save", _full_disk)  # only when its vectors cannot be written
        main([*embed, "--out", str(root / "kept.npz")])
    return root


def _full_disk(self, path):
    raise NlprecError(f"{path}: disk full")


def _copy(folders, name, tmp_path):
    shutil.copytree(folders / name, tmp_path / name)
    return tmp_path / name


def test_a_checkpoint_with_a_pickle_payload_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "last.pt"
    torch.save({"format": FORMAT, "model": Payload(marker)}, path)
    _live(marker, lambda: torch.load(path, weights_only=False))
    with pytest.raises(NlprecError, match="last.pt: not a readable nlprec checkpoint") as err:
        load_checkpoint(path)
    assert "\n" not in str(err.value) and not marker.exists()


@pytest.mark.parametrize("kind", ["legacy torch format", "plain pickle"])
def test_a_checkpoint_in_an_older_or_plain_pickle_format_is_refused(kind, tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "last.pt"
    if kind == "plain pickle":
        path.write_bytes(pickle.dumps({"format": FORMAT, "model": Payload(marker)}))
    else:
        torch.save({"format": FORMAT, "model": Payload(marker)}, path, _use_new_zipfile_serialization=False)
    _live(marker, lambda: pickle.loads(path.read_bytes()) if kind == "plain pickle"
          else torch.load(path, weights_only=False))
    with pytest.raises(NlprecError, match="last.pt: not a readable nlprec checkpoint"):
        load_checkpoint(path)
    assert not marker.exists()


def test_embed_resume_from_a_planted_checkpoint_is_refused(folders, tmp_path, capsys):
    shutil.copy(folders / "c.txt", tmp_path / "c.txt")
    shutil.copytree(folders / "kept.npz.run", tmp_path / "v.npz.run")
    marker = tmp_path / "pwned"
    last = tmp_path / "v.npz.run" / "checkpoints" / "last.pt"
    state = torch.load(last, weights_only=True)
    state["model"] = Payload(marker)
    torch.save(state, last)
    code, _, err = run_in_process(capsys, "embed", "train", tmp_path / "c.txt", "--out", tmp_path / "v.npz",
                                  "--epochs", 1, "--dim", 4, "--min-count", 1, "--threads", 1, "--device", "cpu", "-q",
                                  "--resume")
    assert code == 2 and not marker.exists()
    _refused(err, "last.pt")


def test_a_recommender_folder_with_a_pickled_model_is_refused(folders, tmp_path, capsys):
    folder = _copy(folders, "rec", tmp_path)
    marker = tmp_path / "pwned"
    torch.save({"weights": Payload(marker)}, folder / "model.pt")
    _live(marker, lambda: torch.load(folder / "model.pt", weights_only=False))
    (tmp_path / "pairs.tsv").write_text("u1\ti1\n", encoding="utf-8")
    code, _, err = run_in_process(capsys, "rec", "score", folder, tmp_path / "pairs.tsv", "--out", tmp_path / "s.tsv")
    assert code == 2 and not marker.exists() and not (tmp_path / "s.tsv").exists()
    _refused(err, "model.pt")


def test_a_recommender_split_with_pickled_arrays_is_refused(folders, tmp_path, capsys):
    folder = _copy(folders, "rec", tmp_path)
    marker = tmp_path / "pwned"
    with np.load(folder / "split.npz") as arrays:
        parts = {key: arrays[key] for key in arrays.files}
    parts["train_users"] = np.array([Payload(marker)], dtype=object)
    np.savez(folder / "split.npz", **parts)
    _live(marker, lambda: np.load(folder / "split.npz", allow_pickle=True)["train_users"])
    code, _, err = run_in_process(capsys, "rec", "recommend", folder, "--user", "u1")
    assert code == 2 and not marker.exists()
    _refused(err, "split.npz")


def test_a_translation_folder_with_a_pickled_model_is_refused(folders, tmp_path, capsys):
    folder = _copy(folders, "tfm", tmp_path)
    marker = tmp_path / "pwned"
    torch.save({"weights": Payload(marker)}, folder / "model.pt")
    _live(marker, lambda: torch.load(folder / "model.pt", weights_only=False))
    code, _, err = run_in_process(capsys, "translate", "run", folder, "cat runs")
    assert code == 2 and not marker.exists()
    _refused(err, "model.pt")


@pytest.mark.parametrize("member", ["matrix", "keys", "meta", "ngram_matrix"])
def test_a_vectors_npz_with_a_pickled_array_is_refused(member, folders, tmp_path, capsys):
    path = tmp_path / "v.npz"
    marker = tmp_path / "pwned"
    with np.load(folders / "v.npz") as arrays:
        parts = {key: arrays[key] for key in arrays.files}
    if member == "ngram_matrix":
        parts["subwords"] = np.array('{"min_n": 3, "max_n": 6, "buckets": 10, "hash": "fasttext-fnv1a", "version": 1}')
    parts[member] = np.array([Payload(marker)], dtype=object)
    np.savez(path, **parts)
    _live(marker, lambda: np.load(path, allow_pickle=True)[member])
    code, _, err = run_in_process(capsys, "embed", "similar", path, "cat")
    assert code == 2 and not marker.exists()
    _refused(err, "v.npz")
    with pytest.raises(NlprecError):
        load_vectors(path)
    assert not marker.exists()


def test_a_pickle_named_npz_is_refused(tmp_path, capsys):
    path = tmp_path / "v.npz"
    marker = tmp_path / "pwned"
    path.write_bytes(pickle.dumps(Payload(marker)))
    _live(marker, lambda: np.load(path, allow_pickle=True))
    code, _, err = run_in_process(capsys, "embed", "similar", path, "cat")
    assert code == 2 and not marker.exists()
    _refused(err, "v.npz")
