"""Fuzzed checkpoints, model folders of every task (recommender, translation, classifier, BERT),
and vectors sidecars; and a flipped byte in any folder's weights.

A valid artifact of each kind is made once (tiny configs, a few steps); each example damages
one file of it. Allowed: a load that then works (scores, recommends, translates), or a
one-line NlprecError naming the file or folder.
"""

from __future__ import annotations

import functools
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import strategies as st
from torch import nn

from fuzz_support import check_outcome, every_truncation, fuzz_pair, mutations, scratch
from nlprec.data.classification import LabelledTexts
from nlprec.tasks import bert, classify, recommend
from nlprec.tasks.recommender import Recommender
from nlprec.errors import NlprecError
from nlprec.train import Trainer, TrainerConfig, load_checkpoint
from nlprec.train.trainer import seed_everything
from nlprec.tasks.translate import TranslateOptions, Translator
from nlprec.tasks.translate import train as train_translation
from nlprec.vectors import Vectors

BUILD = Path(__import__("tempfile").mkdtemp(prefix="nlprec-fuzz-artifacts-"))


@dataclass(frozen=True)
class _TinyConfig:
    dim: int = 4  # input features


class _Tiny(nn.Module):
    def __init__(self, config: _TinyConfig = _TinyConfig()):
        super().__init__()
        self.config = config
        self.linear = nn.Linear(config.dim, 1)

    def loss(self, batch):
        return nn.functional.mse_loss(self.linear(batch["x"]).squeeze(-1), batch["y"])


class _TinyData:
    def steps_per_epoch(self, world_size=1):
        return 2

    def train_dataloader(self, epoch, rank=0, world_size=1):
        generator = torch.Generator().manual_seed(epoch)
        for _ in range(2):
            x = torch.randn(8, 4, generator=generator)
            yield {"x": x, "y": x.sum(-1)}

    def state_dict(self):
        return {"vocab": {"words": ["a", "b"], "counts": [2, 1]}, "checksum": "0" * 64}


@functools.cache
def checkpoint_bytes() -> bytes:
    torch.set_num_threads(1)
    seed_everything(0)
    trainer = Trainer(_Tiny(), _TinyData(), TrainerConfig(device="cpu", epochs=1, out_dir=str(BUILD / "run"),
                                                           progress=False))
    trainer.fit()
    return (BUILD / "run" / "checkpoints" / "last.pt").read_bytes()


@functools.cache
def recommender_folder() -> Path:
    torch.set_num_threads(1)
    ratings = BUILD / "ratings.tsv"
    rows = [f"u{u}\ti{i}\t{(u + i) % 5 + 1}\t{1000 + u * 10 + i}" for u in range(6) for i in range(5) if (u + i) % 3]
    ratings.write_text("\n".join(rows) + "\n", encoding="utf-8")
    out = BUILD / "mf"
    options = recommend.RecommendOptions(model="mf", trainer_options={"epochs": 1, "device": "cpu"}, progress=False,
                                         threads=1)
    recommend.train(ratings, out, options, {"dim": 4})
    return _shipped(out)


@functools.cache
def translation_folder() -> Path:
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    words = "cat dog bird fish runs sleeps the a".split()
    lines = []
    for _ in range(120):
        chosen = list(rng.choice(words, rng.integers(1, 5)))
        lines.append(" ".join(chosen) + "\t" + " ".join(w.upper() for w in reversed(chosen)))
    pairs = BUILD / "pairs.tsv"
    pairs.write_text("\n".join(lines) + "\n", encoding="utf-8")
    options = TranslateOptions(vocab_size=40, valid_size=10, val_bleu_sentences=1, max_tokens=200, max_steps=2,
                               threads=1, progress=False, warmup_steps=1, seed=1, device="cpu")
    out = BUILD / "tfm"
    train_translation(pairs, out, options, dict(d_model=16, heads=2, encoder_layers=1, decoder_layers=1, d_ff=32),
                      log=lambda *_: None)
    return _shipped(out)


@functools.cache
def classifier_folder() -> Path:
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    texts = [" ".join(rng.choice(["good", "fine", "bad", "dull", "the", "film"], 4)) for _ in range(60)]
    labels = ["pos" if ("good" in text or "fine" in text) else "neg" for text in texts]
    options = classify.ClassifyOptions(epochs=1, threads=1, device="cpu", progress=False, seed=1)
    out = BUILD / "clf"
    classify.train(LabelledTexts(texts, labels, "toy.tsv", "0" * 64), out, options, {"dim": 8, "maps": 4},
                   log=lambda *_: None)
    return _shipped(out)


@functools.cache
def bert_folder() -> Path:
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    words = "the cat dog sat ran on a mat big red".split()
    corpus = BUILD / "documents.txt"
    corpus.write_text("\n".join(" ".join(rng.choice(words, 6)) + " ." for _ in range(40)) + "\n", encoding="utf-8")
    options = bert.PretrainOptions(format="documents", vocab_size=40, max_len=32, batch_size=8, max_steps=2, threads=1,
                                   device="cpu", progress=False, heldout_fraction=0.0, seed=1)
    out = BUILD / "bert"
    bert.train(corpus, out, options, {"hidden": 16, "layers": 1, "heads": 2, "d_ff": 32}, log=lambda *_: None)
    return _shipped(out)


def _shipped(out: Path) -> Path:
    """The folder as it is shipped: the model files, without the run's checkpoints and log."""
    shutil.rmtree(out / "checkpoints")
    (out / "metrics.jsonl").unlink(missing_ok=True)
    return out


def _files(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir()) if path.is_file()}


def _damaged(files_of) -> st.SearchStrategy:
    """(file name, damaged bytes or None for 'delete it') for one file of a folder."""
    return st.deferred(lambda: st.sampled_from(sorted(files_of())).flatmap(
        lambda name: st.tuples(st.just(name), st.one_of(mutations(files_of()[name]), st.none()))))


def _load_damaged(valid: Path, copy: str, change, reader: str, load, check) -> None:
    """Copy the folder `valid` as `copy`, damage (bytes) or delete (None) one file, and load it."""
    name, data = change
    with scratch() as folder:
        shutil.copytree(valid, folder / copy)
        target = folder / copy / name
        target.unlink() if data is None else target.write_bytes(data)
        check_outcome(reader, folder / copy, load, check)


# --- checkpoints ---------------------------------------------------------------------------------

def _check_checkpoint(state) -> None:
    assert state["format"] == "nlprec-checkpoint-v1" and isinstance(state["model"], dict)


def _checkpoint(data: bytes) -> None:
    with scratch() as folder:
        path = folder / "last.pt"
        path.write_bytes(data)
        check_outcome("checkpoint", path, load_checkpoint, _check_checkpoint)


test_checkpoint_mutations, test_checkpoint_mutations_slow = fuzz_pair(
    st.deferred(lambda: mutations(checkpoint_bytes())), _checkpoint)

# The default run cuts at every STEP-th length; the slow run at every length.
STEPS = [97, pytest.param(1, marks=pytest.mark.slow)]


@pytest.mark.parametrize("step", STEPS)
def test_every_truncation_of_a_checkpoint_is_refused(step):
    valid = checkpoint_bytes()
    seen = every_truncation("truncation checkpoint", valid, "last.pt", load_checkpoint, step=step)
    assert seen == {"error": len(range(0, len(valid), step))}


# --- recommender folders -------------------------------------------------------------------------

def _check_recommender(rec) -> None:
    """A folder that loads must work: score, recommend and evaluate without surprises."""
    user, item = rec.user_ids[0], rec.item_ids[-1]
    assert np.isfinite(rec.score([user], [item]).scores).all()
    rec.recommend(user, k=3)
    rec.recommend("someone new", k=3)
    if len(rec.test):
        rec.evaluate()


def _recommender(change) -> None:
    _load_damaged(recommender_folder(), "rec-folder", change, "recommender folder", Recommender.load, _check_recommender)


test_recommender_folder_mutations, test_recommender_folder_mutations_slow = fuzz_pair(
    _damaged(lambda: _files(recommender_folder())), _recommender)


# --- translation folders -------------------------------------------------------------------------

def _check_translator(translator) -> None:
    """A folder that loads must work: its tokenizer round-trips and the model scores a pair.

    (A beam search of the untrained model runs to the length limit and takes seconds, so the
    model runs on one teacher-forced batch instead.)"""
    from nlprec.data.pairs import encode_pairs, make_batch

    ids = translator.tokenizer.source.encode(["cat runs"])[0]
    assert translator.tokenizer.source.decode([ids]) == ["cat runs"]
    pairs = encode_pairs(translator.tokenizer, ["cat runs"], ["RUNS CAT"])
    with torch.no_grad():
        loss = translator.model.loss(make_batch(pairs, np.arange(len(pairs))))
    assert bool(torch.isfinite(loss if torch.is_tensor(loss) else loss["loss"]))


def _translation(change) -> None:
    _load_damaged(translation_folder(), "tfm-folder", change, "translation folder", Translator.load, _check_translator)


test_translation_folder_mutations, test_translation_folder_mutations_slow = fuzz_pair(
    _damaged(lambda: _files(translation_folder())), _translation, default_share=0.4)  # ~0.1 s per load


# --- classifier and BERT folders ----------------------------------------------------------------

def _check_classifier(classifier) -> None:
    """A folder that loads must work: probabilities for a text, finite and summing to one."""
    proba = classifier.predict_proba(["a good film"])
    assert proba.shape == (1, len(classifier.classes)) and np.allclose(proba.sum(1), 1, atol=1e-3)


def _classifier(change) -> None:
    _load_damaged(classifier_folder(), "clf-folder", change, "classifier folder", classify.Classifier.load, _check_classifier)


test_classifier_folder_mutations, test_classifier_folder_mutations_slow = fuzz_pair(
    _damaged(lambda: _files(classifier_folder())), _classifier, default_share=0.4)


def _check_bert(model) -> None:
    """A folder that loads must work: a guess for a [MASK], with a finite score."""
    guess = model.fill(["the cat [MASK] on a mat ."], k=1)[0][0][0]
    assert 0.0 <= guess.probability <= 1.0


def _bert(change) -> None:
    _load_damaged(bert_folder(), "bert-folder", change, "BERT folder", bert.PretrainedBert.load, _check_bert)


test_bert_folder_mutations, test_bert_folder_mutations_slow = fuzz_pair(
    _damaged(lambda: _files(bert_folder())), _bert, default_share=0.4)


FOLDERS = {"recommender": (recommender_folder, Recommender.load), "translation": (translation_folder, Translator.load),
           "classifier": (classifier_folder, classify.Classifier.load), "bert": (bert_folder, bert.PretrainedBert.load)}


def _largest_member_data_offset(path: Path) -> tuple[int, int]:
    """(offset, size) of the stored bytes of the largest member of a zip archive (a tensor's data)."""
    import struct
    import zipfile

    with zipfile.ZipFile(path) as archive:
        info = max(archive.infolist(), key=lambda member: member.compress_size)
    raw = path.read_bytes()
    name_length, extra_length = struct.unpack("<HH", raw[info.header_offset + 26:info.header_offset + 30])
    return info.header_offset + 30 + name_length + extra_length, info.compress_size


@pytest.mark.parametrize("kind", sorted(FOLDERS))
def test_a_flipped_byte_in_the_weights_is_refused_with_one_line(kind):
    """Every folder kind reads model.pt through the one checked reader (nlprec.io.read_weights):
    one flipped bit inside a tensor's bytes is a CRC mismatch, never a silently wrong weight."""
    make, load = FOLDERS[kind]
    with scratch() as folder:
        shutil.copytree(make(), folder / f"{kind}-folder")
        weights = folder / f"{kind}-folder" / "model.pt"
        offset, size = _largest_member_data_offset(weights)
        data = bytearray(weights.read_bytes())
        data[offset + size // 2] ^= 0x04
        weights.write_bytes(bytes(data))
        with pytest.raises(NlprecError, match=r"model\.pt: not a readable .*checksum mismatch") as error:
            load(folder / f"{kind}-folder")
        assert "\n" not in str(error.value)


# --- vectors sidecars ----------------------------------------------------------------------------

@functools.cache
def sidecar_bytes() -> bytes:
    Vectors(["a", "b"], np.eye(2), {"seed": 1, "options": {"dim": 2}}).save(BUILD / "v.vec")
    return (BUILD / "v.vec.meta.json").read_bytes()


def _sidecar(data: bytes) -> None:
    with scratch() as folder:
        shutil.copy(BUILD / "v.vec", folder / "v.vec")
        (folder / "v.vec.meta.json").write_bytes(data)
        check_outcome("vectors sidecar", folder / "v.vec", Vectors.load, lambda v: isinstance(v.meta, dict))


test_sidecar_mutations, test_sidecar_mutations_slow = fuzz_pair(st.deferred(lambda: mutations(sidecar_bytes())),
                                                                 _sidecar)
