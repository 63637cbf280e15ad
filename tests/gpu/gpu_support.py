"""Helpers of the CUDA tests (tests/gpu/test_cuda.py): tiny data files, the CLI run here or in a
CPU-only interpreter, metrics logs, query answers and tie-tolerant comparisons.

Run as a script, this file is the CPU-only side of a comparison:

    CUDA_VISIBLE_DEVICES= python gpu_support.py SPEC.json

loads the artifact SPEC names on the CPU and prints its answers as JSON. The test process
computes the same answers with the same functions on the GPU (`answers(spec, "cuda")`) and
compares them.

`NLPREC_GPU_TESTS_DEVICE=cpu` runs the whole module on the CPU instead of CUDA (every "GPU"
step on the CPU): a dry run of the tests' own logic on a machine without a GPU. Unset, the
tests need CUDA and skip without it.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import torch

SKIP_REASON = "needs CUDA (torch.cuda.is_available() is False)"
DRY_RUN_VARIABLE = "NLPREC_GPU_TESTS_DEVICE"


def chosen_device() -> str:
    """"cuda", or "cpu" for a dry run of the tests' logic (NLPREC_GPU_TESTS_DEVICE=cpu)."""
    chosen = os.environ.get(DRY_RUN_VARIABLE, "cuda")
    if chosen not in ("cuda", "cpu"):
        raise ValueError(f"{DRY_RUN_VARIABLE}={chosen!r}: expected cuda (the default) or cpu (a dry run)")
    return chosen


def runnable() -> bool:
    """Whether the module can run here: CUDA is present, or a CPU dry run was asked for."""
    return chosen_device() == "cpu" or torch.cuda.is_available()


# ----- tiny data --------------------------------------------------------------------------------

TOPICS = {"animals": "cat dog bird fish mouse".split(), "colours": "red blue green black white".split(),
          "moves": "run jump swim fly walk".split(), "numbers": "one two three four five".split()}
SENTIMENT = {"pos": "good great fine superb lovely".split(), "neg": "bad awful poor dull boring".split()}
FILLER = "the a film movie plot actor scene it was and".split()
PAIR_WORDS = "cat dog bird fish runs sleeps eats small big red blue the a".split()


def write_corpus(path: Path, sentences: int = 6000) -> Path:
    """The first sentences of the built-in demo corpus (about 8 tokens each, 421-word grammar)."""
    from nlprec_corpora.default_corpus import generate_text

    path.write_text(generate_text(n_sentences=sentences), encoding="ascii")
    return path


def write_ratings(path: Path, users: int = 60, items: int = 50, per_user: int = 15) -> Path:
    """u.data layout; two taste groups, so a model has something to learn."""
    rng = np.random.default_rng(0)
    lines = []
    for user in range(users):
        for item in rng.choice(items, per_user, replace=False):
            rating = int(np.clip(rng.normal(4.2 if item % 2 == user % 2 else 2.0, 0.7), 1, 5).round())
            lines.append(f"{100 + user}\t{500 + item}\t{rating}\t{880000000 + int(rng.integers(0, 10**6))}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_pairs(path: Path, n: int = 400) -> Path:
    """source<TAB>target, the target being the source reversed and upper-cased."""
    rng = np.random.default_rng(0)
    lines = []
    for _ in range(n):
        words = list(rng.choice(PAIR_WORDS, rng.integers(1, 6)))
        lines.append(" ".join(words) + "\t" + " ".join(w.upper() for w in reversed(words)))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_labelled(path: Path, n: int = 160) -> Path:
    """label<TAB>text: filler words plus two words of the label's pool."""
    rng = np.random.default_rng(0)
    lines = []
    for row in range(n):
        label = "pos" if row % 2 else "neg"
        words = list(rng.choice(FILLER, rng.integers(3, 8))) + list(rng.choice(SENTIMENT[label], 2))
        rng.shuffle(words)
        lines.append(f"{label}\t{' '.join(words)}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_bert_corpus(path: Path, n_docs: int = 40) -> Path:
    """One sentence per line, a blank line between documents, each document on one topic."""
    rng = np.random.default_rng(0)
    topics = list(TOPICS.values())
    docs = []
    for d in range(n_docs):
        words = topics[d % len(topics)]
        docs.append("\n".join(" ".join(["the", *rng.choice(words, rng.integers(2, 6))]) + " ." for _ in range(6)))
    path.write_text("\n\n".join(docs) + "\n", encoding="utf-8")
    return path


def write_topic_labels(path: Path, n: int = 80) -> Path:
    """label<TAB>text over the BERT corpus's words: animals against colours."""
    rng = np.random.default_rng(1)
    rows = [f"{label}\tthe {' '.join(rng.choice(TOPICS[label], 3))} ." for _ in range(n // 2)
            for label in ("animals", "colours")]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


# ----- running the CLI ----------------------------------------------------------------------------


def run_cli(capsys, *argv: Any) -> tuple[int, str, str]:
    """`nlprec *argv` in this process: (exit status, stdout, stderr)."""
    from nlprec_cli.main import main

    capsys.readouterr()
    try:
        main([str(arg) for arg in argv])
        code = 0
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else 1
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def cpu_only_env() -> dict[str, str]:
    """This environment with every GPU hidden: torch.cuda.is_available() is False there."""
    return {**os.environ, "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "2"}


def run_cli_on_cpu(*argv: Any, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """`python -m nlprec_cli.main *argv` in a fresh interpreter that sees no GPU."""
    command = [sys.executable, "-m", "nlprec_cli.main", *map(str, argv)]
    return subprocess.run(command, env=cpu_only_env(), capture_output=True, text=True, timeout=600, cwd=cwd)


def cpu_answers(spec: dict[str, Any], folder: Path) -> dict[str, Any]:
    """`answers(spec, "cpu", library_search=True)` from this file run as a script with every GPU hidden."""
    spec_file = folder / "cpu-spec.json"
    spec_file.write_text(json.dumps(spec), encoding="utf-8")
    done = subprocess.run([sys.executable, __file__, str(spec_file)], env=cpu_only_env(), capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)
    assert result["cuda_available"] is False, "the CPU-only interpreter saw a GPU"
    return result["answers"]


@contextlib.contextmanager
def interrupted_before_step(monkeypatch, n: int) -> Iterator[None]:
    """Ctrl-C just before the trainer's n-th optimizer step of this process: the trainer saves
    last.pt at step n - 1 and the CLI exits with 130, as after a real interruption."""
    from nlprec.train import trainer

    original = trainer.Trainer._step
    calls = [0]

    def step(self, micro_batches):
        calls[0] += 1
        if calls[0] == n:
            raise KeyboardInterrupt
        return original(self, micro_batches)

    monkeypatch.setattr(trainer.Trainer, "_step", step)
    try:
        yield
    finally:
        monkeypatch.setattr(trainer.Trainer, "_step", original)


# ----- logs and checkpoints ---------------------------------------------------------------------


def records(metrics: Path) -> list[dict[str, Any]]:
    """The trainer's JSONL log, one dict per line."""
    return [json.loads(line) for line in metrics.read_text(encoding="utf-8").splitlines() if line.strip()]


def epoch_losses(metrics: Path) -> list[float]:
    """Mean training loss of each epoch, in order."""
    return [float(r["loss"]) for r in records(metrics) if r.get("event") == "epoch" and "loss" in r]


def assert_loss_falls(metrics: Path) -> list[float]:
    losses = epoch_losses(metrics)
    assert len(losses) >= 2 and all(math.isfinite(x) for x in losses), (metrics, losses)
    assert losses[-1] < losses[0], f"the loss did not fall: {losses}"
    return losses


def checkpoint_step(path: Path) -> int:
    from nlprec.train import load_checkpoint

    return int(load_checkpoint(path)["train_state"]["step"])


# ----- answers: the same function on either device ------------------------------------------------


@contextlib.contextmanager
def exact_fp32() -> Iterator[None]:
    """fp32 matrix products and convolutions without TF32 on CUDA (a no-op on the CPU), restored after."""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def answers(spec: dict[str, Any], device: str, library_search: bool = False) -> dict[str, Any]:
    """What the artifact `spec["path"]` answers to spec's queries when loaded on `device`.

    kinds: "vectors" (top-k neighbours: a torch cosine top-k on `device`, or with
    `library_search` the library's own query, an exact FAISS search on the CPU),
    "recommender", "translator", "classifier", "bert".
    """
    kind = spec["kind"]
    with exact_fp32(), torch.no_grad():
        if kind == "vectors":
            return {"neighbours": _neighbours(spec["path"], spec["words"], spec["k"], device, library_search)}
        if kind == "recommender":
            return _recommender(spec, device)
        if kind == "translator":
            return _translator(spec, device)
        if kind == "classifier":
            from nlprec.tasks.classify import Classifier

            classifier = Classifier.load(spec["path"], device)
            proba = classifier.predict_proba(spec["texts"], batch_size=8, precision="fp32")
            return {"classes": classifier.classes, "probabilities": proba.tolist(),
                    "device": str(next(classifier.model.parameters()).device)}
        if kind == "bert":
            from nlprec.tasks.bert import PretrainedBert

            bert = PretrainedBert.load(spec["path"], device)
            guesses = bert.fill(spec["texts"], spec["k"])
            return {"fill": [[[[g.piece, g.probability] for g in mask] for mask in text] for text in guesses],
                    "device": str(bert.device)}
    raise ValueError(f"unknown kind {kind!r}")


def _neighbours(path: str, words: list[str], k: int, device: str, library_search: bool) -> list[list[list]]:
    from nlprec.subword_vectors import load_vectors

    vectors = load_vectors(path)
    if library_search:  # the product's query: exact FAISS search (the subword store: its own matmul)
        return [[[word, score] for word, score in rows] for rows in vectors.most_similar(words, k)]
    unit = torch.nn.functional.normalize(torch.from_numpy(np.array(vectors.matrix, np.float32)).to(device), dim=1)
    queries = torch.nn.functional.normalize(torch.from_numpy(vectors.vectors_for(words)).to(device), dim=1)
    scores = queries @ unit.T  # (Q, V)
    for row, word in enumerate(words):
        if word in vectors.key_to_index:
            scores[row, vectors.key_to_index[word]] = float("-inf")  # the query word itself is left out
    top = scores.topk(k, dim=1)
    return [[[vectors.keys[int(i)], float(s)] for s, i in zip(values.tolist(), indices.tolist())]
            for values, indices in zip(top.values, top.indices)]


def _recommender(spec: dict[str, Any], device: str) -> dict[str, Any]:
    from nlprec.tasks.recommender import Recommender

    recommender = Recommender.load(spec["path"], device=device)
    scores = recommender.score(spec["users"], spec["items"]).scores
    top = [[[item, score] for item, score in recommender.recommend(user, spec["k"]).items]
           for user in spec["recommend_users"]]
    return {"scores": scores.tolist(), "recommend": top, "device": str(recommender.device)}


def _translator(spec: dict[str, Any], device: str) -> dict[str, Any]:
    from nlprec.tasks.translate import Translator

    translator = Translator.load(spec["path"], device)
    out: dict[str, Any] = {"device": str(next(translator.model.parameters()).device)}
    for name, beam, nbest in (("greedy", 1, 1), ("beam", 4, 2)):
        out[name] = [[{"text": h.text, "score": h.score, "tokens": h.tokens} for h in hypotheses]
                     for hypotheses in translator.translate(spec["sentences"], beam=beam, nbest=nbest)]
    out["forced"] = [forced_log_prob(translator, source, translator.tokenizer.target.encode([target])[0])
                     for source, target in zip(spec["sentences"], spec["targets"])]
    out["forced_other"] = [[forced_log_prob(translator, source, tokens) for tokens in per_source]
                           for source, per_source in zip(spec["sentences"], spec.get("score_tokens", []))]
    return out


def forced_log_prob(translator, source: str, target_ids: Sequence[int]) -> float:
    """Summed log-probability of `target_ids` then eos given `source`, by teacher forcing through
    the decoding interface (`encode`, `decode_step`) that greedy and beam search use."""
    from nlprec.data.tokenize import BOS_ID, EOS_ID

    model = translator.model
    device = next(model.parameters()).device
    limit = getattr(model.config, "max_positions", None)
    source_ids = translator.tokenizer.source.encode([source])[0]
    source_ids = source_ids[:limit] if limit else source_ids
    state = model.encode(torch.tensor([source_ids], device=device))
    token = torch.tensor([BOS_ID], device=device)
    total = 0.0
    for step, target in enumerate([*target_ids, EOS_ID]):
        log_probs, state = model.decode_step(token, state, step)  # (1, V)
        total += float(log_probs[0, target])
        token = torch.tensor([target], device=device)
    return total


# ----- comparisons -------------------------------------------------------------------------------


def assert_same_ranking(first: Sequence[Sequence], second: Sequence[Sequence], atol: float, what: str) -> None:
    """Two best-first lists of (key, score) agree up to ties: the scores rank by rank within
    `atol`, a key's score within `atol` wherever both lists hold it, and every key scoring more
    than 2 x atol above the other list's last score present in both."""
    assert len(first) == len(second), (what, first, second)
    for rank, ((_, a), (_, b)) in enumerate(zip(first, second)):
        assert abs(a - b) <= atol, f"{what}: rank {rank + 1} scores {a} and {b} differ by more than {atol}"
    scores_a, scores_b = dict(first), dict(second)
    for key in scores_a.keys() & scores_b.keys():
        assert abs(scores_a[key] - scores_b[key]) <= atol, f"{what}: {key!r} scores {scores_a[key]} and {scores_b[key]}"
    for mine, other in ((first, second), (second, first)):
        if not other:
            continue
        cut = other[-1][1] + 2 * atol
        missing = [key for key, score in mine if score > cut and key not in dict(other)]
        assert not missing, f"{what}: {missing} clearly in one top list and absent from the other: {first} vs {second}"


def assert_same_translations(cpu: dict[str, Any], gpu: dict[str, Any], alpha: float = 0.6, atol: float = 1e-3) -> None:
    """Same output strings for greedy and beam search, or, where a string differs, a tie: the
    GPU model gives the CPU's output the CPU's log-probability (within atol) and its own output
    a length-normalised score within atol of the CPU's."""
    from nlprec.decoding import length_penalty

    assert len(cpu["forced"]) == len(gpu["forced"])
    for index, (a, b) in enumerate(zip(cpu["forced"], gpu["forced"])):
        assert abs(a - b) <= atol, f"sentence {index}: teacher-forced log-probs {a} (cpu) and {b} (gpu)"
    for name in ("greedy", "beam"):
        for index, (on_cpu, on_gpu) in enumerate(zip(cpu[name], gpu[name])):
            assert len(on_cpu) == len(on_gpu), (name, index)
            for rank, (h_cpu, h_gpu) in enumerate(zip(on_cpu, on_gpu)):
                if h_cpu["text"] == h_gpu["text"]:
                    assert abs(h_cpu["score"] - h_gpu["score"]) <= atol, (name, index, rank, h_cpu, h_gpu)
                    continue
                rescored = gpu["forced_other"][index][_position(cpu, name, index, rank)]
                on_cpu_log_prob = h_cpu["score"] * length_penalty(len(h_cpu["tokens"]) + 1, alpha)
                assert abs(rescored - on_cpu_log_prob) <= atol, (
                    f"{name} sentence {index} rank {rank}: {h_cpu['text']!r} (cpu) vs {h_gpu['text']!r} (gpu); the GPU "
                    f"model gives the CPU output log-prob {rescored}, the CPU {on_cpu_log_prob}")
                assert abs(h_cpu["score"] - h_gpu["score"]) <= atol, (
                    f"{name} sentence {index} rank {rank}: {h_cpu['text']!r} ({h_cpu['score']}) on the CPU and "
                    f"{h_gpu['text']!r} ({h_gpu['score']}) on the GPU are no tie")


def hypotheses_to_rescore(cpu: dict[str, Any]) -> list[list[list[int]]]:
    """Per sentence, the token ids of every CPU hypothesis (greedy, then beam), for `forced_other`."""
    return [[h["tokens"] for h in greedy + beam] for greedy, beam in zip(cpu["greedy"], cpu["beam"])]


def _position(cpu: dict[str, Any], name: str, index: int, rank: int) -> int:
    return rank if name == "greedy" else len(cpu["greedy"][index]) + rank


def main(argv: list[str]) -> None:
    spec = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    result = answers(spec, "cpu", library_search=True)
    print(json.dumps({"cuda_available": torch.cuda.is_available(), "answers": result}))


if __name__ == "__main__":
    main(sys.argv[1:])
