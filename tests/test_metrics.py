"""Embedding metrics: analogy accuracy and word-pair similarity, checked against gensim."""

from __future__ import annotations

import numpy as np
import pytest

from nlprec.errors import NlprecError
from nlprec.metrics import analogy_accuracy, word_similarity
from nlprec.vectors import Vectors

COUNTRIES = ["France", "Italy", "Spain", "Chile", "Peru", "Japan", "Egypt", "Kenya", "Norway", "Cuba"]
CAPITALS = ["Paris", "Rome", "Madrid", "Santiago", "Lima", "Tokyo", "Cairo", "Nairobi", "Oslo", "Havana"]
NOUNS = ["cat", "dog", "car", "tree", "book", "lamp", "door", "bird", "cup", "road"]


def analogy_world(dim: int = 24, noise: float = 1.2, seed: int = 0) -> Vectors:
    """Capitals = country + offset and plurals = noun + offset, with enough noise to miss some.

    Lower-case and upper-case variants of a few words come later in the vocabulary with their
    own vectors (case folding must use the first spelling), then random distractors; "Cuba" and
    "Havana" come last, so a small `restrict_vocab` cuts them off.
    """
    rng = np.random.default_rng(seed)
    capital, plural = rng.standard_normal(dim), rng.standard_normal(dim)
    words: dict[str, np.ndarray] = {}
    for country, city in zip(COUNTRIES[:-1], CAPITALS[:-1]):
        words[country] = rng.standard_normal(dim)
        words[city] = words[country] + capital + noise * rng.standard_normal(dim)
    for noun in NOUNS:
        words[noun] = rng.standard_normal(dim)
        words[noun + "s"] = words[noun] + plural + noise * rng.standard_normal(dim)
    for variant in ["paris", "ROME", "france", "Dog", "CATS"]:
        words[variant] = rng.standard_normal(dim)
    for i in range(60):
        words[f"filler{i}"] = rng.standard_normal(dim)
    words["Cuba"] = rng.standard_normal(dim)
    words["Havana"] = words["Cuba"] + capital
    return Vectors(list(words), np.array(list(words.values())))


def write_analogy_file(path) -> None:
    """Every ordered pair of pairs per section; plurals in upper case; one unknown word."""
    lines = [": capital-world"]
    capitals = list(zip(COUNTRIES, CAPITALS)) + [("Atlantis", "Poseidonia")]
    lines += [f"{a} {b} {c} {d}" for a, b in capitals for c, d in capitals if a != c]
    lines.append(": gram-plural")
    lines += [f"{a.upper()} {a.upper()}S {c.upper()} {c.upper()}S" for a in NOUNS for c in NOUNS if a != c]
    path.write_text("\n".join(lines) + "\n")


def gensim_analogies(path, vector_file, restrict_vocab: int):
    """(accuracy, {section: correct}, skipped) from gensim on the same file."""
    from gensim import models as gensim_models

    kv = gensim_models.KeyedVectors.load_word2vec_format(str(vector_file), binary=True)
    accuracy, sections = kv.evaluate_word_analogies(str(path), restrict_vocab=restrict_vocab)
    total = sum(len(s["correct"]) + len(s["incorrect"]) for s in sections[:-1])
    return accuracy, {s["section"]: len(s["correct"]) for s in sections[:-1]}, total


# --- analogies --------------------------------------------------------------------------------


@pytest.mark.parametrize("restrict_vocab", [1000, 60])
def test_analogy_accuracy_matches_gensim(tmp_path, restrict_vocab):
    questions = tmp_path / "questions.txt"
    write_analogy_file(questions)
    vector_file = analogy_world().save(tmp_path / "v.bin")
    ours = analogy_accuracy(Vectors.load(vector_file), questions, restrict_vocab=restrict_vocab)
    accuracy, per_section, used = gensim_analogies(questions, vector_file, restrict_vocab)
    assert 0.2 < ours["accuracy"] < 0.95  # the planted noise makes it a real test
    assert ours["accuracy"] == pytest.approx(accuracy, abs=1e-12)
    assert ours["used"] == used
    assert {name: s["correct"] for name, s in ours["sections"].items()} == per_section


def test_analogy_counts_skipped_and_sections(tmp_path):
    questions = tmp_path / "questions.txt"
    write_analogy_file(questions)
    result = analogy_accuracy(analogy_world(), questions, restrict_vocab=60)  # Cuba, Havana cut off
    assert result["total"] == 110 + 90
    assert result["sections"]["capital-world"]["skipped"] == 110 - 72  # rows with Cuba or Atlantis
    assert result["sections"]["gram-plural"]["skipped"] == 0
    assert result["skipped"] == 38 and result["used"] == 162
    assert result["correct"] == sum(s["correct"] for s in result["sections"].values())
    assert result["method"] == "3cosadd" and result["restrict_vocab"] == 60
    assert set(result) == {"accuracy", "correct", "used", "skipped", "total", "sections", "method", "restrict_vocab"}


def test_case_folding(tmp_path):
    questions = tmp_path / "questions.txt"
    write_analogy_file(questions)
    vectors = analogy_world(noise=0.0)
    folded = analogy_accuracy(vectors, questions)
    assert folded["sections"]["gram-plural"] == {"correct": 90, "used": 90, "skipped": 0}
    exact = analogy_accuracy(vectors, questions, case_insensitive=False)
    assert exact["sections"]["gram-plural"] == {"correct": 0, "used": 0, "skipped": 90}
    assert exact["sections"]["capital-world"]["used"] == 90


def test_first_spelling_stands_for_a_folded_word(tmp_path):
    questions = tmp_path / "q.txt"
    questions.write_text(": s\na b c d\n")
    rest = {"B": [1, 1, 0], "C": [0, 0, 1], "D": [0, 1, 1], "E": [1, 0, 1]}
    good = {"a": [1, 0, 0], **rest, "A": [0, 1, 0]}  # b - a + c = D
    bad = {"A": [0, 1, 0], **rest, "a": [1, 0, 0]}  # b - A + c = E
    assert analogy_accuracy(Vectors(list(good), list(good.values())), questions)["correct"] == 1
    assert analogy_accuracy(Vectors(list(bad), list(bad.values())), questions)["correct"] == 0


def test_3cosmul_and_nothing_used(tmp_path):
    questions = tmp_path / "questions.txt"
    write_analogy_file(questions)
    vectors = analogy_world(noise=0.0)
    assert analogy_accuracy(vectors, questions, method="3cosmul")["sections"]["gram-plural"]["correct"] == 90
    nothing = Vectors(["zebra"], [[1.0]])
    result = analogy_accuracy(nothing, questions)
    assert result["accuracy"] == 0.0 and result["used"] == 0 and result["skipped"] == result["total"] == 200


@pytest.mark.parametrize("text, expected", [
    (": s\na b c d\na b c\n", r"q.txt line 3: expected 4 words 'a b c d' or a ': section' line, got 3 words"),
    ("a b c d\n", r"q.txt line 1: expected a ': section' line before the first question"),
    (b": s\n\xff b c d\n", r"q.txt line 2: not UTF-8 text"),
])
def test_bad_analogy_lines(tmp_path, text, expected):
    path = tmp_path / "q.txt"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(NlprecError, match=expected):
        analogy_accuracy(analogy_world(), path)


def test_missing_files(tmp_path):
    with pytest.raises(NlprecError, match="analogy file .*nope.txt' does not exist"):
        analogy_accuracy(analogy_world(), tmp_path / "nope.txt")
    with pytest.raises(NlprecError, match="word-pair file .*nope.tsv' does not exist"):
        word_similarity(analogy_world(), tmp_path / "nope.tsv")


# --- word pairs -------------------------------------------------------------------------------


def test_word_pairs_parse_header_comments_and_case(tmp_path):
    path = tmp_path / "pairs.txt"
    path.write_text("word1 word2 SimLex999\n# comment\nA B 3.5\nb c 2\n\nA c 1.0\nA unknown 5\n")
    vectors = Vectors(["a", "b", "c"], [[1, 0], [1, 0.5], [1, 2]])  # cos(b,c) > cos(a,b) > cos(a,c)
    result = word_similarity(vectors, path)
    assert result == {"spearman": pytest.approx(1.0), "pearson": result["pearson"],
                      "pairs": 4, "used": 3, "skipped": 1, "oov_ratio": 0.25}
    assert word_similarity(vectors, path, case_insensitive=False)["used"] == 1


def test_word_pairs_too_few_gives_none(tmp_path):
    path = tmp_path / "pairs.tsv"
    path.write_text("a\tb\t1.0\n")
    result = word_similarity(Vectors(["a", "b"], np.eye(2)), path)
    assert result["spearman"] is None and result["pearson"] is None and result["used"] == 1


@pytest.mark.parametrize("text, expected", [
    ("a b 1\na b high\n", r"pairs.tsv line 2: expected a numeric score, got 'high'"),
    ("a\tb\t1\na\tb\n", r"pairs.tsv line 2: expected 'word1<TAB>word2<TAB>score', got 2 fields"),
    ("a b nan\n", r"pairs.tsv line 1: expected a finite score"),
])
def test_bad_pair_lines(tmp_path, text, expected):
    (tmp_path / "pairs.tsv").write_text(text)
    with pytest.raises(NlprecError, match=expected):
        word_similarity(Vectors(["a", "b"], np.eye(2)), tmp_path / "pairs.tsv")


# --- real data sets ---------------------------------------------------------------------------


def vectors_for_eval_words(corpora_dir, drop_every: int = 9) -> Vectors:
    """Random vectors for the words of the three evaluation files, every 9th word left out."""
    wordeval = corpora_dir / "wordeval"
    words: list[str] = []
    for line in (wordeval / "questions-words.txt").read_text().split("\n"):
        if not line.startswith(":"):
            words += line.split()
    for name in ("wordsim353.tsv", "simlex999.txt"):
        for line in (wordeval / name).read_text().split("\n"):
            if line and not line.startswith("#"):
                words += line.split("\t")[:2]
    unique = [w for i, w in enumerate(dict.fromkeys(words)) if i % drop_every]
    return Vectors(unique, np.random.default_rng(0).standard_normal((len(unique), 32)))


@pytest.mark.corpora
def test_real_questions_words_matches_gensim(tmp_path, corpora_dir):
    path = corpora_dir / "wordeval" / "questions-words.txt"
    vector_file = vectors_for_eval_words(corpora_dir).save(tmp_path / "v.bin")
    ours = analogy_accuracy(Vectors.load(vector_file), path, restrict_vocab=700)
    assert ours["total"] == 19_544 and len(ours["sections"]) == 14 and 0 < ours["used"] < ours["total"]
    accuracy, per_section, used = gensim_analogies(path, vector_file, 700)
    assert ours["accuracy"] == pytest.approx(accuracy, abs=1e-12) and ours["used"] == used
    assert {name: s["correct"] for name, s in ours["sections"].items()} == per_section


@pytest.mark.corpora
@pytest.mark.parametrize("name, pairs", [("wordsim353.tsv", 353), ("simlex999.txt", 999)])
def test_real_word_pairs_match_gensim(tmp_path, corpora_dir, name, pairs):
    from gensim import models as gensim_models

    path = corpora_dir / "wordeval" / name
    vector_file = vectors_for_eval_words(corpora_dir).save(tmp_path / "v.bin")
    ours = word_similarity(Vectors.load(vector_file), path)
    kv = gensim_models.KeyedVectors.load_word2vec_format(str(vector_file), binary=True)
    pearson, spearman, oov_percent = kv.evaluate_word_pairs(str(path))
    assert ours["pairs"] == pairs and 0 < ours["skipped"] < pairs
    assert ours["spearman"] == pytest.approx(spearman.statistic, abs=1e-6)
    assert ours["pearson"] == pytest.approx(pearson.statistic, abs=1e-6)
    assert ours["oov_ratio"] * 100 == pytest.approx(oov_percent)
