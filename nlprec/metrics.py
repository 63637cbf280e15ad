"""Evaluation metrics, one section per model family.

Every metric reads plain files, checks them line by line (a bad line raises `NlprecError`
naming the file and line) and returns a JSON-ready dict.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

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


def _read_pairs(path: str | os.PathLike) -> tuple[list[list[str]], np.ndarray]:
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

    pairs, gold = _read_pairs(path)
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
