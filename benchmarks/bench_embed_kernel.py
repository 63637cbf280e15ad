"""CPU seconds of the compiled word2vec / fastText kernels alone, on the first N IMDb words.

    python benchmarks/bench_embed_kernel.py --variants cbow-hs,sg-neg --words 2000000 --threads 1
    PYTHONPATH=/tmp/old-checkout python benchmarks/bench_embed_kernel.py ...   # another commit's kernels

Times one `train_chunk` call (after a warm-up call that compiles or loads the kernel) in this
process: the IMDb corpus of bench_word2vec.py encoded once, its tables, weights initialised as
the models do, dim 100, window 5, negative 5, lr 0.025 (fastText 0.05) falling to 1e-4, seed 1.
Subsampling 1e-3 (fastText: 1e-4, its default). Reports CPU and wall seconds and the mean loss
(equal losses between two commits mean the same arithmetic). Used for the kernel before/after
table of BENCHMARKS.md (word embeddings, 2026-12-05); the whole-process race is bench_embed_scale.py.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from common import corpora_dir, imdb_token_file, write_json
from nlprec.data.embedding_tables import build_tables
from nlprec.data.subwords import SubwordSpec, subword_rows
from nlprec.data.word_corpus import encode_corpus
from nlprec.nn import embedding_kernels, subword_kernels

VARIANTS = ("sg-neg", "sg-hs", "cbow-neg", "cbow-hs", "ft-sg", "ft-cbow")
DIM, BUCKETS = 100, 2_000_000


def word2vec_call(variant: str, ids, ends, counts, threads: int):
    """A closure training (ids, ends) once with fresh weights; returns (loss, predictions, kept)."""
    negative = variant.endswith("neg")
    tables = build_tables(counts, 1e-3, with_negative=negative, with_huffman=not negative)
    rng = np.random.default_rng(0)
    syn0 = ((rng.random((len(counts), DIM), np.float32) - 0.5) / DIM).astype(np.float32)  # (V, d)
    out = np.zeros((len(counts) if negative else len(counts) - 1, DIM), np.float32)  # (V, d) or (V-1, d)
    dummy = np.zeros((1, DIM), np.float32)
    return lambda i, e: embedding_kernels.train_chunk(
        syn0, out if negative else dummy, dummy if negative else out, i, e, tables.keep_prob, tables.negative_alias,
        tables.points, tables.codes, tables.code_lengths, variant.startswith("sg"), negative, 5, 5, True, 0.025,
        1e-4, 1, threads)


def fasttext_call(variant: str, ids, ends, counts, words: list[str], threads: int):
    tables = build_tables(counts, 1e-4, with_negative=True, with_huffman=False)
    offsets, rows = subword_rows(words, SubwordSpec(3, 6, BUCKETS), np.arange(len(words)), len(words))
    rng = np.random.default_rng(0)
    weights = ((rng.random((len(words) + BUCKETS, DIM), np.float32) - 0.5) / DIM).astype(np.float32)  # (V+B, d)
    out = np.zeros((len(words), DIM), np.float32)  # (V, d)
    return lambda i, e: subword_kernels.train_chunk(
        weights, out, offsets, rows, i, e, tables.keep_prob, tables.negative_alias, variant == "ft-sg", 5, 5, 0.05,
        1e-4, 1, threads)


def time_variant(variant: str, corpus, n_words: int, threads: int) -> dict[str, float]:
    ends = corpus.sentence_ends[:np.searchsorted(corpus.sentence_ends, n_words) + 1]  # (S,)
    ids = corpus.read_ids(0, int(ends[-1]))  # (N,)
    counts = np.asarray(corpus.vocab.counts, np.int64)
    if variant.startswith("ft"):
        train = fasttext_call(variant, ids, ends, counts, list(corpus.vocab.words), threads)
    else:
        train = word2vec_call(variant, ids, ends, counts, threads)
    warm = np.searchsorted(ends, 20_000)
    train(ids[:ends[warm]], ends[:warm + 1])
    cpu, wall = time.process_time(), time.perf_counter()
    loss, predictions, kept = train(ids, ends)
    return {"variant": variant, "words": int(ends[-1]), "threads": threads, "cpu_seconds": time.process_time() - cpu,
            "wall_seconds": time.perf_counter() - wall, "mean_loss": loss / max(predictions, 1), "kept": kept}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpora")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--words", type=int, default=2_000_000, help="first words of the IMDb corpus")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "nlprec-bench")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/embed_kernel.json"))
    args = parser.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)
    corpus = encode_corpus(imdb_token_file(corpora_dir(args.corpora), args.cache))
    rows = []
    for variant in args.variants.split(","):
        rows.append(time_variant(variant, corpus, args.words, args.threads))
        print(f"{variant:<9} {rows[-1]['cpu_seconds']:.3f} s CPU  {rows[-1]['wall_seconds']:.3f} s wall  "
              f"loss {rows[-1]['mean_loss']:.5f}  kept {rows[-1]['kept']:,}", flush=True)
    write_json(args.out, {"benchmark": "embed_kernel", "rows": rows})


if __name__ == "__main__":
    main()
