"""GloVe: the shared contract (both backends), the kernel against a plain AdaGrad step, the loss,
the demo corpus, resume, provenance, the CLI and a quality check on real data."""

from __future__ import annotations

import doctest
import json

import numpy as np
import pytest
import torch

from contract import ModelContract
from nlprec.tasks.embeddings import GloveOptions, checkpoint_dir_for, train
from nlprec.errors import NlprecError
from nlprec.metrics import analogy_accuracy, word_similarity
from nlprec.models import glove as glove_module
from nlprec.models.glove import GloVe, GloVeConfig
from nlprec.vectors import Vectors
from nlprec_cli.main import main
from nlprec_corpora.default_corpus import default_corpus_path

PETS = {"dog", "rabbit", "hamster", "parrot"}


def tiny_batch(vocab_size: int = 20, entries: int = 200, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    rows = rng.integers(0, vocab_size, entries).astype(np.int32)
    cols = rng.integers(0, vocab_size, entries).astype(np.int32)
    counts = (1.0 + 50.0 * np.exp(-np.abs(rows - cols))).astype(np.float32)  # near ids co-occur more
    return {"rows": torch.from_numpy(rows), "cols": torch.from_numpy(cols), "counts": torch.from_numpy(counts),
            "n_examples": entries}


def tiny_model(backend: str = "numba") -> GloVe:
    torch.manual_seed(0)
    return GloVe(GloVeConfig(vocab_size=20, dim=8, x_max=10.0, backend=backend, threads=1))


class TestGloVeContract(ModelContract):
    name = "glove"
    lr = 0.1
    steps = 40

    def make_model(self):
        return tiny_model()

    def make_batch(self):
        return tiny_batch()


class TestGloVeTorchBackendContract(ModelContract):
    name = "glove"
    lr = 0.1
    optimizer = torch.optim.Adagrad

    def make_model(self):
        return tiny_model("torch")

    def make_batch(self):
        return tiny_batch()


def test_loss_doctest():
    assert doctest.testmod(glove_module, verbose=False).failed == 0


def test_kernel_is_glove_c_adagrad_step():
    """One entry through the kernel equals the update written out in numpy (glove.c)."""
    model = tiny_model()
    w, c = model.word_vectors.weight.data.numpy(), model.context_vectors.weight.data.numpy()
    bw, bc = model.word_biases.weight.data.numpy(), model.context_biases.weight.data.numpy()
    before = [a.astype(np.float64).copy() for a in (w, c, bw, bc)]
    i, j, x, lr = 3, 5, 4.0, 0.05
    batch = {"rows": torch.tensor([i], dtype=torch.int32), "cols": torch.tensor([j], dtype=torch.int32),
             "counts": torch.tensor([x]), "n_examples": 1}
    loss = model.train_step(batch, lr=lr)["loss"]
    w0, c0, bw0, bc0 = before
    diff = w0[i] @ c0[j] + bw0[i, 0] + bc0[j, 0] - np.log(x)
    fdiff = (x / 10.0) ** 0.75 * diff
    assert loss == pytest.approx(0.5 * fdiff * diff, rel=1e-5)
    step = lr * fdiff
    np.testing.assert_allclose(w[i], w0[i] - step * c0[j], rtol=1e-5, atol=1e-8)  # gradsq starts at 1
    np.testing.assert_allclose(c[j], c0[j] - step * w0[i], rtol=1e-5, atol=1e-8)
    assert bw[i, 0] == pytest.approx(bw0[i, 0] - fdiff, rel=1e-5)  # glove.c: no rate on the biases
    assert model.word_gradsq[i, 8].item() == pytest.approx(1 + fdiff**2, rel=1e-5)
    np.testing.assert_allclose(model.word_gradsq[i, :8].numpy(), 1 + (step * c0[j]) ** 2, rtol=1e-5)


def demo_options(**overrides) -> GloveOptions:
    settings = dict(dim=32, epochs=10, window=5, threads=1, seed=1, progress=False, x_max=10.0,
                    device="cpu")  # golden values and bit-identity were measured on the CPU
    settings.update(overrides)
    return GloveOptions(**settings)


def test_learns_the_demo_corpus_and_records_provenance(tmp_path):
    vectors = train(default_corpus_path(), tmp_path / "g.vec", demo_options(), log=lambda *_: None)
    neighbours = {word for word, _ in vectors.most_similar("cat", k=5)[0]}
    assert PETS & neighbours, neighbours
    losses = vectors.meta["loss_per_epoch"]
    assert losses[-1] < losses[0]
    reloaded = Vectors.load(tmp_path / "g.vec")
    assert reloaded.meta["model"] == "glove" and len(reloaded.meta["data_sha256"]) == 64
    assert reloaded.meta["options"]["alpha"] == 0.75 and reloaded.meta["cooccurrence_entries"] > 0


def test_torch_backend_learns_the_demo_corpus(tmp_path):
    options = demo_options(backend="torch", epochs=5, batch_size=65536, eta=0.05)
    vectors = train(default_corpus_path(), tmp_path / "g.npz", options, log=lambda *_: None)
    assert vectors.meta["loss_per_epoch"][-1] < vectors.meta["loss_per_epoch"][0]


def test_fixed_seed_regression(tmp_path):
    vectors = train(default_corpus_path(), tmp_path / "g.npz", demo_options(epochs=1, seed=5),
                          log=lambda *_: None)
    assert vectors.meta["cooccurrence_entries"] == 12085
    assert vectors.meta["loss_per_epoch"][0] == pytest.approx(0.9478, rel=1e-3)


def test_resume_after_interrupt_equals_uninterrupted_run(tmp_path, monkeypatch):
    options = demo_options(epochs=2, batch_size=2_000)
    straight = train(default_corpus_path(), tmp_path / "straight.npz", options, log=lambda *_: None)
    from nlprec.data import cooccurrence

    original = cooccurrence.CooccurrenceData.train_dataloader

    def interrupted(self, epoch, rank=0, world_size=1):
        for index, batch in enumerate(original(self, epoch, rank, world_size)):
            if epoch == 1 and index == 2:
                raise KeyboardInterrupt
            yield batch

    monkeypatch.setattr(cooccurrence.CooccurrenceData, "train_dataloader", interrupted)
    out = tmp_path / "resumed.npz"
    with pytest.raises(KeyboardInterrupt):
        train(default_corpus_path(), out, options, log=lambda *_: None)
    monkeypatch.setattr(cooccurrence.CooccurrenceData, "train_dataloader", original)
    resumed = train(default_corpus_path(), out, options, resume=True, log=lambda *_: None)
    np.testing.assert_array_equal(straight.matrix, resumed.matrix)
    assert (checkpoint_dir_for(out) / "metrics.jsonl").is_file()


@pytest.mark.parametrize("options, message", [
    (dict(window=20), "--window must be in 1..15"),
    (dict(x_max=0.0), "--x-max must be > 0"),
    (dict(alpha=-1.0), "--alpha .GloVe.s weighting exponent. must be > 0"),
    (dict(eta=0.0), "--eta .GloVe.s learning rate. must be > 0"),
    (dict(memory_gb=-1.0), "--memory-gb must be > 0"),
])
def test_bad_options_are_one_line_errors(options, message):
    with pytest.raises(NlprecError, match=message):
        GloveOptions(**options)


def test_memory_refusal_says_what_to_change(tmp_path):
    with pytest.raises(NlprecError, match="lower --max-vocab or --window"):
        train(default_corpus_path(), tmp_path / "g.npz", demo_options(memory_gb=0.001), log=lambda *_: None)


def run_cli(capsys, *args) -> tuple[int, str, str]:
    try:
        main([str(a) for a in args])
        status = 0
    except SystemExit as exit_:
        status = exit_.code
    out, err = capsys.readouterr()
    return status, out, err


def test_cli_trains_and_evaluates(tmp_path, capsys):
    out = tmp_path / "glove.vec"
    status, _, err = run_cli(capsys, "embed", "train", default_corpus_path(), "--out", out, "--arch", "glove",
                             "--window", "5", "--x-max", "10", "--alpha", "0.75", "--eta", "0.05", "--epochs", "3",
                             "--dim", "16", "--threads", "1", "--device", "cpu", "--quiet")
    assert status == 0, err
    meta = json.loads((tmp_path / "glove.vec.meta.json").read_text())
    assert meta["options"]["x_max"] == 10.0 and meta["options"]["window"] == 5
    status, out_text, _ = run_cli(capsys, "embed", "similar", out, "cat", "--json")
    assert status == 0 and len(json.loads(out_text)) == 10


def test_cli_rejects_options_of_other_architectures(tmp_path, capsys):
    status, _, err = run_cli(capsys, "embed", "train", default_corpus_path(), "--out", tmp_path / "v.vec",
                             "--arch", "glove", "--min-n", "3")
    assert status == 2 and "--min-n applies to --arch fasttext only" in err


def test_cli_memory_refusal_is_one_line(tmp_path, capsys):
    status, _, err = run_cli(capsys, "embed", "train", default_corpus_path(), "--out", tmp_path / "v.vec",
                             "--arch", "glove", "--memory-gb", "0.0001", "--device", "cpu", "--quiet")
    assert status == 2 and len(err.strip().splitlines()) == 1 and "raise --memory-gb" in err


@pytest.mark.corpora
@pytest.mark.slow
def test_quality_on_penn_treebank(tmp_path, corpora_dir):
    """15 epochs on PTB (0.9M words): semantic structure a broken model would not have."""
    vectors = train(corpora_dir / "ptb" / "ptb.train.txt", tmp_path / "ptb.npz",
                          GloveOptions(threads=2, progress=False, x_max=10.0, device="cpu"), log=lambda *_: None)
    wordeval = corpora_dir / "wordeval"
    assert word_similarity(vectors, wordeval / "wordsim353.tsv")["spearman"] > 0.10
    assert analogy_accuracy(vectors, wordeval / "questions-words.txt", restrict_vocab=30000)["accuracy"] > 0.01
