"""Encoding a word corpus: an ASCII corpus never loads pandas, and the compiled scan and the regex give the same ids."""

from __future__ import annotations

import subprocess
import sys

import numpy as np

from nlprec.data.tokenize import RegexTokenizer
from nlprec.data.word_corpus import encode_corpus


def test_encoding_an_ascii_corpus_does_not_import_pandas(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text("The cat sat on the mat.\nthe dog sat\n" * 20, encoding="ascii")
    code = ("import sys; from nlprec.data.word_corpus import encode_corpus; "
            f"corpus = encode_corpus({str(path)!r}, min_count=1); "
            "assert 'pandas' not in sys.modules, 'pandas was imported'; print(len(corpus.vocab))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["6"]


def test_corpus_encodes_the_same_through_the_scan_and_the_regex(tmp_path, monkeypatch):
    import nlprec.data.ascii_kernels as kernels
    import nlprec.data.word_corpus as corpus_module

    scanned_blocks = []
    monkeypatch.setattr(corpus_module, "READ_BLOCK_BYTES", 256)  # many blocks: ASCII ones and two that are not
    scan = kernels.factorize_ascii
    monkeypatch.setattr(kernels, "factorize_ascii", lambda block: scanned_blocks.append(block) or scan(block))
    path = tmp_path / "corpus.txt"
    ascii_lines = ["The cat sat on the mat.", "", "Don't STOP, 2 cats!", "the cat's mat"] * 50
    path.write_text("\n".join(ascii_lines + ["café naïve cat", "Straße the"] + ascii_lines) + "\n", encoding="utf-8")
    scanned = encode_corpus(path, RegexTokenizer(), min_count=1)  # ASCII blocks: the compiled scan
    assert len(scanned_blocks) > 10
    regex = encode_corpus(path, RegexTokenizer(pattern="(?:[a-z0-9']+)"), min_count=1)  # the same tokens by regex
    assert scanned.vocab.words == regex.vocab.words
    assert np.array_equal(scanned.vocab.counts, regex.vocab.counts)
    assert np.array_equal(scanned.ids, regex.ids) and np.array_equal(scanned.sentence_ends, regex.sentence_ends)


LIMITED_RUN = """
import resource, sys
import nlprec.data.word_corpus as word_corpus
from nlprec.tasks.embeddings import EmbedOptions, train

corpus, warm, out, headroom = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
word_corpus.READ_BLOCK_BYTES = 256 << 10  # small tokenizer blocks: their buffers are not what is tested
options = EmbedOptions(arch="cbow", objective="hierarchical", dim=8, epochs=1, min_count=1, threads=1,
                       progress=False, device="cpu", chunk_words=100_000)  # a step's ids: 0.4 MB of the 8
train(warm, out + ".warm.bin", options, log=lambda *_: None)  # imports, numba's cache, thread pool
data = int(next(l.split()[1] for l in open("/proc/self/status") if l.startswith("VmData:"))) * 1024
resource.setrlimit(resource.RLIMIT_DATA, (data + headroom, data + headroom))
vectors = train(corpus, out, options, log=lambda *_: None)
print(len(vectors), vectors.meta["corpus_tokens"])
"""


def test_a_corpus_larger_than_the_memory_limit_trains(tmp_path):
    """The encoded corpus (12 MB of ids) is more than the 8 MB the process may still allocate,
    so it must be streamed from disk rather than held: training ends and writes the vectors."""
    rng = np.random.default_rng(0)
    words = np.array([f"w{i}" for i in range(500)])
    tokens = 3_000_000
    lines = words[rng.zipf(1.3, tokens) % len(words)].reshape(-1, 20)  # (150000, 20)
    corpus = tmp_path / "big.txt"
    corpus.write_text("\n".join(" ".join(line) for line in lines) + "\n", encoding="ascii")
    warm = tmp_path / "warm.txt"
    warm.write_text("\n".join(" ".join(line) for line in lines[:200]) + "\n", encoding="ascii")
    headroom = 8 << 20
    assert 4 * tokens > headroom
    result = subprocess.run([sys.executable, "-c", LIMITED_RUN, str(corpus), str(warm), str(tmp_path / "v.bin"),
                             str(headroom)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    vocab_size, corpus_tokens = map(int, result.stdout.split())
    assert corpus_tokens == tokens and 0 < vocab_size <= 500
    assert (tmp_path / "v.bin").is_file()


def test_streamed_reads_and_chunks_match_the_whole_arrays(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text("".join(f"a b c {'d ' * (i % 7)}\n\n" for i in range(300)), encoding="ascii")
    corpus = encode_corpus(path, min_count=1)
    ids, ends = corpus.ids, corpus.sentence_ends
    assert ends[-1] == len(ids) == corpus.n_words and len(ends) == corpus.n_sentences == 300
    assert np.array_equal(corpus.read_ids(17, 50), ids[17:50])
    for chunk_words in (1, 10, 64, 10_000):
        bounds = corpus.chunk_bounds(chunk_words)
        targets = np.arange(chunk_words, ends[-1], chunk_words)
        expected = np.unique(np.concatenate([[0], np.searchsorted(ends, targets) + 1, [len(ends)]]))
        assert np.array_equal(bounds, expected)
