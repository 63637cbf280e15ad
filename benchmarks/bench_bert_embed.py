"""Sentence embeddings: `nlprec bert embed` (PretrainedBert.embed) against
sentence-transformers' `SentenceTransformer.encode`, side by side in one run.

The model is shaped as all-MiniLM-L6-v2 (6 layers, hidden 384, 12 heads, FFN 1,536, 512
positions, 30,522 WordPiece pieces, mean pooling + Normalize, 256 tokens at most): a
transformers BertModel with random weights made here (the cost of a forward pass does not depend
on the values), its WordPiece vocabulary trained by `tokenizers` on the IMDb train reviews
(padded with [unusedN] pieces to 30,522 if the text gives fewer), saved by sentence-transformers
and imported with `nlprec bert import`. Sentences: IMDb test reviews cut into sentences (the rule
of nlprec.data.bert_data), a seeded sample of --sentences of them, of mixed length, plus a
seeded share of whole reviews (long inputs, cut at 256 tokens by both).

Both run in fp32 on --threads CPU threads (torch and the tokenizers' thread pool), from an
already loaded model, over the same list; each is timed --repeats times, alternating which
goes first, and the best and median are kept. The vectors are compared (max |difference|).
nlprec batches by a token budget (--batch-tokens padded tokens, sorted by length);
sentence-transformers by its batch_size (32, its default; it also sorts by length).

    python benchmarks/bench_bert_embed.py            # writes benchmarks/results/bert_embed.json
"""

from __future__ import annotations

import argparse
import gzip
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

from common import corpora_dir, write_json  # noqa: E402


def imdb_reviews(corpora: Path, name: str, limit: int | None = None) -> list[str]:
    texts = []
    with gzip.open(corpora / "imdb" / name, "rt", encoding="utf-8", newline="\n") as handle:
        for line in handle:
            texts.append(line.rstrip("\n").split("\t", 1)[1].replace("<br />", " "))
            if limit and len(texts) >= limit:
                break
    return texts


def build_model(corpora: Path, work: Path, vocab_size: int, seed: int) -> Path:
    """The MiniLM-shaped sentence-transformers folder (built once into `work`)."""
    folder = work / "minilm-st"
    if (folder / "modules.json").is_file():
        return folder
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers
    from transformers import BertConfig, BertModel, BertTokenizerFast

    body = work / "minilm-body"
    body.mkdir(parents=True, exist_ok=True)
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.train_from_iterator(imdb_reviews(corpora, "imdb_train.tsv.gz"),
                                  trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=specials,
                                                            show_progress=False))
    pieces = [p for p, _ in sorted(tokenizer.get_vocab().items(), key=lambda item: item[1])]
    pieces += [f"[unused{i}]" for i in range(vocab_size - len(pieces))]
    (body / "vocab.txt").write_text("\n".join(pieces) + "\n", encoding="utf-8")
    BertTokenizerFast(vocab_file=str(body / "vocab.txt"), model_max_length=512).save_pretrained(str(body))
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=vocab_size, hidden_size=384, num_hidden_layers=6, num_attention_heads=12,
                        intermediate_size=1536, max_position_embeddings=512)
    BertModel(config).save_pretrained(str(body))
    transformer = Transformer(str(body), max_seq_length=256)
    model = SentenceTransformer(modules=[transformer, Pooling(384, "mean"), Normalize()], device="cpu")
    model.save(str(folder))
    return folder


def sentences(corpora: Path, n: int, whole_share: float, seed: int) -> list[str]:
    """A seeded sample of IMDb test sentences, with a share of whole reviews, in a seeded order."""
    import numpy as np

    from nlprec.data.bert_data import split_sentences

    reviews = imdb_reviews(corpora, "imdb_test.tsv.gz")
    rng = np.random.default_rng(seed)
    pool = [s for review in rng.choice(reviews, 4 * n, replace=False) for s in split_sentences(review)]
    whole = int(n * whole_share)
    chosen = [pool[i] for i in rng.choice(len(pool), n - whole, replace=False)]
    chosen += [reviews[i] for i in rng.choice(len(reviews), whole, replace=False)]
    return [chosen[i] for i in rng.permutation(len(chosen))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpora")
    parser.add_argument("--work", default="/tmp/nlprec-bench/bert_embed", help="model folders (built once)")
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "bert_embed.json"))
    parser.add_argument("--sentences", type=int, default=2000)
    parser.add_argument("--whole-share", type=float, default=0.05, help="share of whole reviews among the inputs")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-tokens", type=int, default=1024)
    parser.add_argument("--st-batch-size", type=int, default=32)
    parser.add_argument("--vocab-size", type=int, default=30522)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    os.environ["RAYON_NUM_THREADS"] = str(args.threads)  # the tokenizers' thread pool, before it starts
    import numpy as np
    import torch

    torch.set_num_threads(args.threads)
    corpora, work = corpora_dir(args.corpora), Path(args.work)
    folder = build_model(corpora, work, args.vocab_size, args.seed)
    imported = work / "minilm-nlprec"
    from nlprec.tasks.bert import PretrainedBert
    from nlprec.tasks.bert_checkpoints import import_checkpoint

    if not (imported / "config.json").is_file():
        import_checkpoint(folder, imported, log=lambda message: None)
    from sentence_transformers import SentenceTransformer

    peer = SentenceTransformer(str(folder), device="cpu")
    ours = PretrainedBert.load(imported)
    texts = sentences(corpora, args.sentences, args.whole_share, args.seed)
    tokens = [len(ids) for ids in ours.tokenize(texts, truncate=True)]

    def run_nlprec() -> np.ndarray:
        return ours.embed(texts, batch_tokens=args.batch_tokens)

    def run_peer() -> np.ndarray:
        return peer.encode(texts, batch_size=args.st_batch_size, convert_to_numpy=True)

    runs = {"nlprec": run_nlprec, "sentence-transformers": run_peer}
    seconds: dict[str, list[float]] = {name: [] for name in runs}
    vectors = {}
    for name, fn in runs.items():  # warm-up (allocator, thread pools), untimed
        vectors[name] = fn()
    for repeat in range(args.repeats):
        order = list(runs) if repeat % 2 == 0 else list(reversed(runs))
        for name in order:
            start = time.perf_counter()
            runs[name]()
            seconds[name].append(time.perf_counter() - start)
    results = {name: {"seconds": times, "best_sentences_per_s": len(texts) / min(times),
                      "median_sentences_per_s": len(texts) / statistics.median(times)} for name, times in seconds.items()}
    difference = float(np.abs(vectors["nlprec"] - vectors["sentence-transformers"]).max())
    summary = {"benchmark": "bert_embed", "command": " ".join(["python", *sys.argv]), "threads": args.threads,
               "model": "MiniLM-L6 shape: 6 layers, 384 hidden, 12 heads, FFN 1536, 30,522 pieces, mean + Normalize, "
                        "256 tokens", "sentences": len(texts), "whole_reviews": int(len(texts) * args.whole_share),
               "tokens": {"total": int(sum(tokens)), "mean": float(np.mean(tokens)), "median": float(np.median(tokens)),
                          "max": int(max(tokens))},
               "nlprec_batch_tokens": args.batch_tokens, "st_batch_size": args.st_batch_size,
               "max_abs_difference": difference, "results": results,
               "speedup_best": results["nlprec"]["best_sentences_per_s"] /
               results["sentence-transformers"]["best_sentences_per_s"]}
    write_json(Path(args.out), summary)
    for name, result in results.items():
        print(f"{name:>22}: best {result['best_sentences_per_s']:.1f} sentences/s, median "
              f"{result['median_sentences_per_s']:.1f} ({', '.join(f'{s:.2f}' for s in seconds[name])} s)")
    print(f"nlprec / sentence-transformers (best): {summary['speedup_best']:.2f}x; max |difference| {difference:.2e}; "
          f"{len(texts)} inputs, {summary['tokens']['mean']:.1f} tokens on average")


if __name__ == "__main__":
    main()
