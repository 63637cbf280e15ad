"""Every family trains on CUDA through the real CLI, its artifact loads on a machine without a GPU,
and CUDA and CPU give the same answers; a run interrupted on the GPU resumes on the GPU and on
the CPU.

Each training test runs `nlprec ... --device cuda` in this process on tiny data (a few seconds
on one GPU), then checks:

- the loss falls: the last epoch's mean training loss in the run's metrics.jsonl is below the
  first's (`<out>.run/metrics.jsonl` for vectors, `<folder>/metrics.jsonl` for model folders);
- the artifact loads in a fresh interpreter with every GPU hidden (CUDA_VISIBLE_DEVICES=), which
  prints its answers as JSON (gpu_support.py run as a script); the same functions run here on
  CUDA, in fp32 with TF32 off, and the two must agree:
  vectors: each probe's top-10 neighbours, the library's own query (FAISS) on the CPU against
  a torch cosine top-k on the GPU, equal words up to ties and cosines within 1e-4;
  recommenders: scores of 100 (user, item) pairs within rtol 1e-4, top-10 recommendations
  equal up to ties, their scores within rtol 1e-4;
  translation: teacher-forced log-probabilities of the reference targets within 1e-3, and the
  greedy and beam-4 (2-best) outputs the same strings with scores within 1e-3 (where a string
  differs, it must be a tie: the GPU gives the CPU's output the CPU's log-probability and its
  own a score within 1e-3);
  classifiers (TextCNN, BiRNN, fine-tuned BERT): class probabilities within atol 1e-4 (fp32);
  BERT: fill-mask top-5 pieces equal up to ties, probabilities within 1e-4.

The resume test stops a run with Ctrl-C before a chosen optimizer step on the GPU (the trainer
saves last.pt there), continues it with `--resume` on the GPU and, from a copy, in a CPU-only
interpreter, and checks that both continue from the saved step (the steps in metrics.jsonl go
on past it, in order) and end at the same final step. Vectors resume with `--backend torch`
named: with `--backend auto` a CPU resume would switch to the numba backend, whose chunks and
weights differ from the torch backend's.

Without CUDA the module skips. `NLPREC_GPU_TESTS_DEVICE=cpu` runs it on the CPU instead, to
check the tests' own logic on a machine without a GPU (see gpu_support.py).
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path
from types import SimpleNamespace
from typing import Callable

import numpy as np
import pytest

from gpu_support import (SKIP_REASON, answers, assert_loss_falls, assert_same_ranking, assert_same_translations,
                         checkpoint_step, chosen_device, cpu_answers, hypotheses_to_rescore, interrupted_before_step,
                         records, run_cli, run_cli_on_cpu, runnable, write_bert_corpus, write_corpus, write_labelled,
                         write_pairs, write_ratings, write_topic_labels)

DEVICE = chosen_device()

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not runnable(), reason=SKIP_REASON)]


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> SimpleNamespace:
    folder = tmp_path_factory.mktemp("gpu-data")
    return SimpleNamespace(
        corpus=write_corpus(folder / "corpus.txt"), ratings=write_ratings(folder / "u.data"),
        pairs=write_pairs(folder / "pairs.tsv"), labelled=write_labelled(folder / "labelled.tsv"),
        bert_corpus=write_bert_corpus(folder / "bert.txt"), topics=write_topic_labels(folder / "topics.tsv"))


def train_ok(capsys, *argv) -> str:
    code, out, err = run_cli(capsys, *argv)
    assert code == 0, f"nlprec {' '.join(map(str, argv))} exited {code}: {err[-3000:]}"
    return out


# ----- command lines (tiny models; `device` is cuda, or cpu for the resume on the CPU) ------------

EMBEDDINGS = {
    "skipgram-negative": (".bin", ["--arch", "skipgram", "--objective", "negative", "--epochs", 3]),
    "cbow-hierarchical": (".bin", ["--arch", "cbow", "--objective", "hierarchical", "--epochs", 3]),
    "fasttext": (".npz", ["--arch", "fasttext", "--buckets", 20000, "--epochs", 3]),
    "glove": (".vec", ["--arch", "glove", "--window", 5, "--x-max", 10, "--epochs", 10]),
}


def embed_argv(corpus: Path, out: Path, name: str, device: str, *extra) -> list:
    return ["embed", "train", corpus, "--out", out, *EMBEDDINGS[name][1], "--dim", 32, "--min-count", 5, "--seed", 1,
            "--threads", 2, "--device", device, "-q", *extra]


RECOMMENDERS = {
    "mf": ["--set", "dim=8", "--batch-size", 64, "--lr", 0.01],
    "autorec": ["--set", "hidden=16", "--batch-size", 16, "--lr", 0.005],
    "neumf": ["--set", "factors=8", "--set", "mlp_layers=[16,8]", "--batch-size", 256, "--negatives", 2,
              "--recent-copies", 0, "--eval-negatives", 20],
}


def rec_argv(ratings: Path, out: Path, model: str, device: str, epochs: int = 6) -> list:
    return ["rec", "train", ratings, "--model", model, "--out", out, "--epochs", epochs, *RECOMMENDERS[model],
            "--seed", 0, "--threads", 2, "--device", device, "--quiet"]


TRANSLATORS = {
    "transformer": ["--set", "d_model=32", "--set", "heads=2", "--set", "encoder_layers=1", "--set", "decoder_layers=1",
                    "--set", "d_ff=64"],
    "gru-attention": ["--set", "embed_dim=16", "--set", "hidden=16", "--set", "decoder_hidden=16",
                      "--set", "attention_dim=16"],
}


def translate_argv(pairs: Path, out: Path, arch: str, device: str, max_steps: int = 150, valid_size: int = 0) -> list:
    """valid_size > 0: validation BLEU each epoch (greedy decoding on the training device), the best
    epoch becomes the model; 0: the last weights do (a tiny model's early BLEU is 0 throughout)."""
    return ["translate", "train", pairs, "--out", out, "--arch", arch, "--vocab-size", 60, "--valid-size", valid_size,
            "--max-tokens", 400, "--max-steps", max_steps, "--warmup", 10, "--lr", 3e-3, "--patience", 1000,
            "--threads", 2, "--seed", 1, "--device", device, "-q", *TRANSLATORS[arch]]


CLASSIFIERS = {"textcnn": ["--set", "dim=16", "--set", "maps=8"],
               "birnn": ["--set", "dim=16", "--set", "hidden=16", "--set", "layers=1"]}


def classify_argv(texts: Path, out: Path, model: str, device: str, epochs: int = 5) -> list:
    return ["classify", "train", texts, "--out", out, "--model", model, "--epochs", epochs, "--batch-size", 16,
            "--lr", 0.01, "--patience", 1000, "--threads", 2, "--seed", 0, "--device", device, "-q",
            *CLASSIFIERS[model]]


def bert_argv(corpus: Path, out: Path, device: str, max_steps: int = 40) -> list:
    return ["bert", "pretrain", corpus, "--out", out, "--format", "sentences", "--vocab-size", 60, "--max-len", 32,
            "--batch-size", 16, "--max-steps", max_steps, "--lr", 2e-3, "--heldout-fraction", 0.1, "--threads", 2,
            "--seed", 1, "--device", device, "-q", "--set", "hidden=32", "--set", "layers=1", "--set", "heads=2",
            "--set", "d_ff=64"]


# ----- embeddings -------------------------------------------------------------------------------

PROBES = ["cat", "paris", "king", "monday", "red"]


@pytest.mark.parametrize("name", list(EMBEDDINGS))
def test_embeddings_train_on_cuda_and_answer_alike_on_cpu(name, data, tmp_path, capsys):
    from nlprec.subword_vectors import load_vectors

    out = tmp_path / f"v{EMBEDDINGS[name][0]}"
    train_ok(capsys, *embed_argv(data.corpus, out, name, DEVICE))
    assert_loss_falls(Path(f"{out}.run") / "metrics.jsonl")
    meta = load_vectors(out).meta
    assert meta["device"].startswith(DEVICE)
    assert meta["backend"] == ("torch" if DEVICE == "cuda" else "numba")  # --backend auto: torch on a GPU
    probes = PROBES + (["catz"] if name == "fasttext" else [])  # fastText: an unseen word from its n-grams
    spec = {"kind": "vectors", "path": str(out), "words": probes, "k": 10}
    cpu, gpu = cpu_answers(spec, tmp_path), answers(spec, DEVICE)
    for word, on_cpu, on_gpu in zip(probes, cpu["neighbours"], gpu["neighbours"]):
        assert len(on_cpu) == 10
        assert_same_ranking(on_cpu, on_gpu, 1e-4, f"{name}: neighbours of {word!r}")


# ----- recommenders -----------------------------------------------------------------------------


@pytest.mark.parametrize("model", list(RECOMMENDERS))
def test_recommenders_train_on_cuda_and_score_alike_on_cpu(model, data, tmp_path, capsys):
    out = tmp_path / model
    train_ok(capsys, *rec_argv(data.ratings, out, model, DEVICE))
    assert_loss_falls(out / "metrics.jsonl")
    users = [str(100 + u) for u in range(10) for _ in range(10)]
    items = [str(500 + i) for _ in range(10) for i in range(10)]
    spec = {"kind": "recommender", "path": str(out), "users": users, "items": items,
            "recommend_users": ["100", "101", "102"], "k": 10}
    cpu, gpu = cpu_answers(spec, tmp_path), answers(spec, DEVICE)
    assert gpu["device"].startswith(DEVICE) and cpu["device"] == "cpu"
    np.testing.assert_allclose(gpu["scores"], cpu["scores"], rtol=1e-4, atol=1e-6)
    for user, on_cpu, on_gpu in zip(spec["recommend_users"], cpu["recommend"], gpu["recommend"]):
        assert len(on_cpu) == 10
        scale = max(1.0, *(abs(score) for _, score in on_cpu))
        assert_same_ranking(on_cpu, on_gpu, 1e-4 * scale, f"{model}: top-10 of user {user}")


# ----- translation ------------------------------------------------------------------------------

SENTENCES = ["cat dog runs", "the small bird", "big red fish eats", "a blue cat sleeps"]


@pytest.mark.parametrize("arch", list(TRANSLATORS))
def test_translation_trains_on_cuda_and_decodes_alike_on_cpu(arch, data, tmp_path, capsys):
    out = tmp_path / arch
    train_ok(capsys, *translate_argv(data.pairs, out, arch, DEVICE))
    assert_loss_falls(out / "metrics.jsonl")
    targets = [" ".join(word.upper() for word in reversed(sentence.split())) for sentence in SENTENCES]
    spec = {"kind": "translator", "path": str(out), "sentences": SENTENCES, "targets": targets}
    cpu = cpu_answers(spec, tmp_path)
    gpu = answers({**spec, "score_tokens": hypotheses_to_rescore(cpu)}, DEVICE)
    assert gpu["device"].startswith(DEVICE) and cpu["device"] == "cpu"
    assert_same_translations(cpu, gpu)


# ----- classification ---------------------------------------------------------------------------

REVIEWS = ["good great film", "the plot was awful and dull", "a lovely movie", "boring poor acting it was"]


@pytest.mark.parametrize("model", list(CLASSIFIERS))
def test_classifiers_train_on_cuda_and_predict_alike_on_cpu(model, data, tmp_path, capsys):
    out = tmp_path / model
    train_ok(capsys, *classify_argv(data.labelled, out, model, DEVICE))
    assert_loss_falls(out / "metrics.jsonl")
    spec = {"kind": "classifier", "path": str(out), "texts": REVIEWS}
    cpu, gpu = cpu_answers(spec, tmp_path), answers(spec, DEVICE)
    assert gpu["device"].startswith(DEVICE) and cpu["classes"] == gpu["classes"]
    np.testing.assert_allclose(gpu["probabilities"], cpu["probabilities"], rtol=0, atol=1e-4)


# ----- BERT -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bert_dir(data, tmp_path_factory) -> Path:
    """A 1-layer BERT pretrained 40 steps on CUDA (MLM + NSP)."""
    from nlprec_cli.main import main

    out = tmp_path_factory.mktemp("bert") / "bert"
    try:
        main([str(arg) for arg in bert_argv(data.bert_corpus, out, DEVICE)])
    except SystemExit as exit_:
        assert exit_.code in (0, None), f"nlprec bert pretrain exited {exit_.code}"
    return out


def test_bert_pretrains_on_cuda_and_fills_masks_alike_on_cpu(bert_dir, tmp_path):
    losses = assert_loss_falls(bert_dir / "metrics.jsonl")
    assert len(losses) >= 2
    mlm = [r["mlm"] for r in records(bert_dir / "metrics.jsonl") if r.get("event") == "epoch"]
    assert mlm[-1] < mlm[0], mlm
    spec = {"kind": "bert", "path": str(bert_dir), "texts": ["the [MASK] dog cat .", "the red [MASK] blue ."], "k": 5}
    cpu, gpu = cpu_answers(spec, tmp_path), answers(spec, DEVICE)
    assert gpu["device"].startswith(DEVICE)
    for text, on_cpu, on_gpu in zip(spec["texts"], cpu["fill"], gpu["fill"]):
        for mask, (top_cpu, top_gpu) in enumerate(zip(on_cpu, on_gpu)):
            assert len(top_cpu) == 5
            assert_same_ranking(top_cpu, top_gpu, 1e-4, f"{text!r} mask {mask}")


def test_bert_classifier_fine_tunes_on_cuda_and_predicts_alike_on_cpu(bert_dir, data, tmp_path, capsys):
    out = tmp_path / "bert-clf"
    train_ok(capsys, "classify", "train", data.topics, "--out", out, "--model", "bert", "--init", bert_dir,
             "--epochs", 4, "--batch-size", 16, "--patience", 1000, "--threads", 2, "--seed", 0, "--device", DEVICE,
             "-q")
    assert_loss_falls(out / "metrics.jsonl")
    spec = {"kind": "classifier", "path": str(out), "texts": ["the cat dog .", "the red blue .", "the fish white ."]}
    cpu, gpu = cpu_answers(spec, tmp_path), answers(spec, DEVICE)
    assert gpu["device"].startswith(DEVICE) and cpu["classes"] == gpu["classes"] == ["animals", "colours"]
    np.testing.assert_allclose(gpu["probabilities"], cpu["probabilities"], rtol=0, atol=1e-4)


# ----- resume: GPU -> GPU and GPU -> CPU ----------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Resumable:
    """A training command (data, root folder, device) -> argv; where its checkpoints and log go."""

    argv: Callable[[SimpleNamespace, Path, str], list]
    run_dir: Callable[[Path], Path]  # root folder -> the folder with checkpoints/ and metrics.jsonl
    interrupt_at: int  # Ctrl-C just before this optimizer step
    final_step: int | None = None  # the step every run ends at, when the command fixes it (--max-steps)


RESUMABLE = {
    "word2vec": Resumable(lambda d, root, dev: embed_argv(d.corpus, root / "v.npz", "skipgram-negative", dev,
                                                          "--backend", "torch"),
                          lambda root: root / "v.npz.run", 20),
    "glove": Resumable(lambda d, root, dev: embed_argv(d.corpus, root / "g.npz", "glove", dev, "--backend", "torch"),
                       lambda root: root / "g.npz.run", 4),
    "mf": Resumable(lambda d, root, dev: rec_argv(d.ratings, root / "model", "mf", dev, epochs=4),
                    lambda root: root / "model", 20),
    "neumf": Resumable(lambda d, root, dev: rec_argv(d.ratings, root / "model", "neumf", dev, epochs=4),
                       lambda root: root / "model", 10),
    "transformer": Resumable(lambda d, root, dev: translate_argv(d.pairs, root / "model", "transformer", dev, 40, 20),
                             lambda root: root / "model", 15, final_step=40),
    "textcnn": Resumable(lambda d, root, dev: classify_argv(d.labelled, root / "model", "textcnn", dev),
                         lambda root: root / "model", 12),
    "bert": Resumable(lambda d, root, dev: bert_argv(d.bert_corpus, root / "model", dev, 30),
                      lambda root: root / "model", 10, final_step=30),
}


def continued_from(run_dir: Path, logged: int, saved: int) -> int:
    """Check the resumed run's log goes on past step `saved` in order; returns its final step."""
    new = records(run_dir / "metrics.jsonl")[logged:]
    steps = [int(r["step"]) for r in new if "step" in r]
    assert steps and steps[0] > saved and steps == sorted(steps), (saved, steps)
    last = run_dir / "checkpoints" / "last.pt"
    final = checkpoint_step(last) if last.is_file() else steps[-1]  # finished embeddings keep no last.pt
    assert final >= steps[-1] > saved
    return final


@pytest.mark.parametrize("name", list(RESUMABLE))
def test_interrupted_on_gpu_resumes_on_gpu_and_on_cpu(name, data, tmp_path, capsys, monkeypatch):
    spec = RESUMABLE[name]
    gpu_root, cpu_root = tmp_path / "gpu", tmp_path / "cpu"
    gpu_root.mkdir()
    argv = spec.argv(data, gpu_root, DEVICE)
    with interrupted_before_step(monkeypatch, spec.interrupt_at):
        code, _, err = run_cli(capsys, *argv)
    assert code == 130, f"expected the interruption's exit status 130, got {code}: {err[-2000:]}"
    run_dir = spec.run_dir(gpu_root)
    saved = checkpoint_step(run_dir / "checkpoints" / "last.pt")
    assert saved == spec.interrupt_at - 1
    logged = len(records(run_dir / "metrics.jsonl")) if (run_dir / "metrics.jsonl").is_file() else 0
    shutil.copytree(gpu_root, cpu_root)

    train_ok(capsys, *argv, "--resume")  # GPU -> GPU
    on_gpu = continued_from(run_dir, logged, saved)

    done = run_cli_on_cpu(*spec.argv(data, cpu_root, "cpu"), "--resume")  # GPU -> CPU, no GPU visible
    assert done.returncode == 0, done.stderr[-3000:]
    on_cpu = continued_from(spec.run_dir(cpu_root), logged, saved)
    assert on_gpu == on_cpu
    if spec.final_step is not None:
        assert on_gpu == spec.final_step
