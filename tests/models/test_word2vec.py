"""word2vec: the shared contract, all four (arch, objective) pairs on the demo corpus, both
backends, determinism, resume, a fixed-seed regression and a quality check on real data."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from contract import ModelContract
from nlprec.data.embedding_data import EmbeddingData
from nlprec.data.embedding_tables import build_tables
from nlprec.tasks.embeddings import EmbedOptions, checkpoint_dir_for, train
from nlprec.errors import NlprecError
from nlprec.metrics import analogy_accuracy, word_similarity
from nlprec.models.word2vec import Word2Vec, Word2VecConfig
from nlprec.train.optimizers import RowAdam
from nlprec.vectors import Vectors
from nlprec_corpora.default_corpus import DEFAULT_ANALOGIES, default_corpus_path

PAIRS = [("skipgram", "negative"), ("skipgram", "hierarchical"), ("cbow", "negative"), ("cbow", "hierarchical")]


def tiny_batch(vocab_size: int = 30, words: int = 400, seed: int = 0) -> dict:
    """Sentences over a small vocabulary where word w is always followed by w + 1: learnable."""
    rng = np.random.default_rng(seed)
    starts = rng.integers(0, vocab_size - 8, words // 8)
    ids = (starts[:, None] + np.arange(8)).reshape(-1).astype(np.int32)  # (words,)
    ends = np.arange(8, len(ids) + 1, 8, dtype=np.int64)
    return {"ids": torch.from_numpy(ids), "sentence_ends": torch.from_numpy(ends), "seed": 7, "n_words": len(ids)}


def tiny_model(arch="skipgram", objective="negative", backend="numba", vocab_size=30) -> Word2Vec:
    counts = np.sort(np.random.default_rng(1).integers(50, 500, vocab_size))[::-1]
    tables = build_tables(counts, sample=0.0)
    config = Word2VecConfig(vocab_size=vocab_size, arch=arch, objective=objective, dim=16, window=3, negative=4,
                            backend=backend, threads=1)
    torch.manual_seed(0)
    return Word2Vec(config, tables)


class TestWord2VecContract(ModelContract):
    name = "word2vec"
    lr = 0.1

    def make_model(self):
        return tiny_model()

    def make_batch(self):
        return tiny_batch()


class TestWord2VecTorchBackendContract(ModelContract):
    name = "word2vec"
    lr = 0.05
    optimizer = RowAdam

    def make_model(self):
        return tiny_model("cbow", "hierarchical", backend="torch")

    def make_batch(self):
        return tiny_batch()


def demo_options(**overrides) -> EmbedOptions:
    settings = dict(dim=32, epochs=3, threads=1, seed=1, progress=False, min_count=5,
                    device="cpu")  # golden values and bit-identity were measured on the CPU
    settings.update(overrides)
    return EmbedOptions(**settings)


def solved_analogies(vectors: Vectors) -> int:
    return sum(vectors.analogy(a, b, c, k=1)[0][0] == d for a, b, c, d in DEFAULT_ANALOGIES)


@pytest.mark.parametrize("arch, objective", PAIRS)
def test_each_pair_learns_the_demo_corpus(tmp_path, arch, objective):
    vectors = train(default_corpus_path(), tmp_path / "v.bin", demo_options(arch=arch, objective=objective),
                             log=lambda *_: None)
    neighbours = [word for word, _ in vectors.most_similar("cat", k=5)[0]]
    assert {"dog", "rabbit", "hamster", "parrot"} & set(neighbours), neighbours
    assert solved_analogies(vectors) >= 2


def test_torch_backend_learns_the_demo_corpus(tmp_path):
    options = demo_options(backend="torch", epochs=1)
    vectors = train(default_corpus_path(), tmp_path / "v.npz", options, log=lambda *_: None)
    neighbours = [word for word, _ in vectors.most_similar("cat", k=5)[0]]
    assert {"dog", "rabbit", "hamster", "parrot"} & set(neighbours), neighbours


def test_same_seed_one_thread_gives_identical_vectors(tmp_path):
    runs = [train(default_corpus_path(), tmp_path / f"{name}.npz", demo_options(epochs=1, seed=seed),
                           log=lambda *_: None) for name, seed in (("a", 3), ("b", 3), ("c", 4))]
    np.testing.assert_array_equal(runs[0].matrix, runs[1].matrix)
    assert not np.array_equal(runs[0].matrix, runs[2].matrix)


def test_fixed_seed_regression(tmp_path):
    vectors = train(default_corpus_path(), tmp_path / "v.npz", demo_options(epochs=1, seed=5),
                             log=lambda *_: None)
    assert vectors.meta["loss_per_epoch"][0] == pytest.approx(0.2480, abs=2e-4)
    # the value changes with the random stream (last changed: negatives drawn from the alias table, 1M-word steps)
    assert float(vectors.matrix[vectors.index("cat")].sum()) == pytest.approx(2.3638, abs=2e-3)


def test_resume_after_interrupt_equals_uninterrupted_run(tmp_path, monkeypatch):
    options = demo_options(epochs=2, seed=2, chunk_words=50_000)
    straight = train(default_corpus_path(), tmp_path / "straight.npz", options, log=lambda *_: None)
    original = _interrupt_at(monkeypatch, at_epoch=1, at_batch=3)
    out = tmp_path / "resumed.npz"
    with pytest.raises(KeyboardInterrupt):
        train(default_corpus_path(), out, options, log=lambda *_: None)
    assert not out.exists()  # nothing half-written
    monkeypatch.setattr(EmbeddingData, "train_dataloader", original)
    resumed = train(default_corpus_path(), out, options, resume=True, log=lambda *_: None)
    np.testing.assert_array_equal(straight.matrix, resumed.matrix)
    assert (checkpoint_dir_for(out) / "metrics.jsonl").is_file()


def _interrupt_at(monkeypatch, at_epoch: int, at_batch: int):
    """Make the next training raise KeyboardInterrupt before batch `at_batch` of epoch `at_epoch`
    (0-based; after the earlier epochs' checkpoints). Returns the real train_dataloader, to put back."""
    original = EmbeddingData.train_dataloader

    def interrupted(self, epoch, rank=0, world_size=1):
        for index, batch in enumerate(original(self, epoch, rank, world_size)):
            if epoch == at_epoch and index == at_batch:
                raise KeyboardInterrupt
            yield batch

    monkeypatch.setattr(EmbeddingData, "train_dataloader", interrupted)
    return original


def test_resume_refuses_other_options(tmp_path, monkeypatch):
    out = tmp_path / "v.npz"
    _interrupt_at(monkeypatch, at_epoch=1, at_batch=0)
    with pytest.raises(KeyboardInterrupt):
        train(default_corpus_path(), out, demo_options(epochs=2), log=lambda *_: None)
    with pytest.raises(NlprecError, match=r"options differ from the checkpoint's \(dim\)"):
        train(default_corpus_path(), out, demo_options(epochs=2, dim=16), resume=True, log=lambda *_: None)


def test_a_finished_run_keeps_no_checkpoint_unless_its_output_fails(tmp_path, monkeypatch):
    """The vectors are the result of a finished run: no last.pt beside them. If they cannot be
    written, the training is kept in last.pt and --resume writes them without training again."""
    options = demo_options(epochs=2, seed=4)
    straight = train(default_corpus_path(), tmp_path / "straight.npz", options, log=lambda *_: None)
    assert not (checkpoint_dir_for(tmp_path / "straight.npz") / "checkpoints" / "last.pt").exists()

    out = tmp_path / "v.npz"
    real_save = Vectors.save
    monkeypatch.setattr(Vectors, "save", lambda self, path: (_ for _ in ()).throw(NlprecError(f"{path}: disk full")))
    with pytest.raises(NlprecError, match=r"disk full; the trained model is kept in .*last.pt: rerun with --resume"):
        train(default_corpus_path(), out, options, log=lambda *_: None)
    assert not out.exists()
    monkeypatch.setattr(Vectors, "save", real_save)
    monkeypatch.setattr(EmbeddingData, "train_dataloader",
                        lambda *args, **kwargs: pytest.fail("the resumed run trained again"))
    resumed = train(default_corpus_path(), out, options, resume=True, log=lambda *_: None)
    np.testing.assert_array_equal(straight.matrix, resumed.matrix)
    np.testing.assert_array_equal(Vectors.load(out).matrix, straight.matrix)


def test_vectors_record_provenance(tmp_path):
    vectors = train(default_corpus_path(), tmp_path / "v.bin", demo_options(epochs=1), log=lambda *_: None)
    reloaded = Vectors.load(tmp_path / "v.bin")
    for key in ("options", "seed", "data_sha256", "nlprec_version"):
        assert reloaded.meta[key] == vectors.meta[key]
    assert len(reloaded.meta["data_sha256"]) == 64


@pytest.mark.parametrize("text, message", [
    ("", "has no tokens"),
    ("one two three\nfour five\n", "no word occurs at least 5 times"),
])
def test_bad_corpora_are_one_line_errors(tmp_path, text, message):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(text)
    with pytest.raises(NlprecError, match=message):
        train(corpus, tmp_path / "v.bin", demo_options(), log=lambda *_: None)
    assert not (tmp_path / "v.bin").exists()


@pytest.mark.corpora
def test_quality_on_penn_treebank(tmp_path, corpora_dir):
    """3 epochs of skip-gram on PTB (0.9M words): real semantic structure, unlike a broken model."""
    options = EmbedOptions(epochs=3, threads=2, seed=1, progress=False, device="cpu")
    vectors = train(corpora_dir / "ptb" / "ptb.train.txt", tmp_path / "ptb.bin", options,
                             log=lambda *_: None)
    wordeval = corpora_dir / "wordeval"
    similarity = word_similarity(vectors, wordeval / "wordsim353.tsv")
    analogies = analogy_accuracy(vectors, wordeval / "questions-words.txt", restrict_vocab=30000)
    assert similarity["spearman"] > 0.10, similarity
    assert analogies["accuracy"] > 0.01, analogies
    weekdays = {"tuesday", "wednesday", "thursday", "friday"}
    assert len(weekdays & {word for word, _ in vectors.most_similar("monday", k=10)[0]}) >= 2
