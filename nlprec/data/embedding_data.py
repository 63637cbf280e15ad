"""Batches for word embeddings: an encoded corpus cut into chunks of whole sentences.

The corpus is streamed: each chunk's ids are read from the encoded corpus's file when the
chunk is trained (nlprec.data.word_corpus), so memory does not grow with the corpus.

A batch is a dict:
- "ids": (N,) int32 tensor, the word ids of the chunk's sentences, concatenated;
- "sentence_ends": (S,) int64 tensor, exclusive end of each sentence within "ids";
- "seed": int, the chunk's own random seed (derived from the run seed, epoch and chunk), so
  subsampling, windows and negatives are the same however the run was interrupted;
- "n_words": int, words in the chunk (the trainer's throughput unit).

The model expands a chunk into (context, target) predictions itself: a compiled kernel on CPU,
vectorised torch ops on GPU. Chunks are visited in corpus order, as word2vec.c and gensim do;
under torchrun rank r takes chunks r, r + world, ...
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterator

import numpy as np
import torch

from nlprec.data.embedding_tables import EmbeddingTables, build_tables

if TYPE_CHECKING:  # the corpus module needs pandas: imported where a corpus is encoded
    from nlprec.data.word_corpus import EncodedCorpus


class EmbeddingData:
    """The data module of word2vec: a corpus, its tables and its chunking."""

    def __init__(self, corpus: EncodedCorpus, sample: float = 1e-3, chunk_words: int = 100_000, seed: int = 0,
                 ns_exponent: float = 0.75, with_negative: bool = True, with_huffman: bool = True):
        self.corpus = corpus
        self.vocab = corpus.vocab
        self.seed = seed
        self.sample = sample
        self.tables: EmbeddingTables = build_tables(corpus.vocab.counts, sample, ns_exponent,
                                                    with_negative=with_negative, with_huffman=with_huffman)
        self.chunk_bounds = corpus.chunk_bounds(chunk_words)  # (C+1,) sentence indices

    def steps_per_epoch(self, world_size: int = 1) -> int:
        """Chunks this rank trains per epoch."""
        return len(range(0, len(self.chunk_bounds) - 1, world_size))

    def train_dataloader(self, epoch: int, rank: int = 0, world_size: int = 1) -> Iterator[dict[str, Any]]:
        """The epoch's chunks, in corpus order (this rank's share)."""
        for chunk in range(rank, len(self.chunk_bounds) - 1, world_size):
            first, last = int(self.chunk_bounds[chunk]), int(self.chunk_bounds[chunk + 1])
            ends = self.corpus.read_sentence_ends(max(first - 1, 0), last)  # (S_c,) or (S_c + 1,)
            start = int(ends[0]) if first > 0 else 0
            ends = ends[1:] if first > 0 else ends  # (S_c,)
            stop = int(ends[-1])
            yield {
                "ids": torch.from_numpy(self.corpus.read_ids(start, stop)),
                "sentence_ends": torch.from_numpy(ends - start),
                "seed": _chunk_seed(self.seed, epoch, chunk),
                "n_words": stop - start,
            }

    def state_dict(self) -> dict[str, Any]:
        """The vocabulary and data checksum, so a resume trains on the same ids."""
        return {"vocab": self.vocab.state_dict(), "checksum": self.corpus.checksum, "sample": self.sample}


def _chunk_seed(seed: int, epoch: int, chunk: int) -> int:
    """A well-mixed 63-bit seed per (run seed, epoch, chunk)."""
    return int(np.random.SeedSequence([seed, epoch, chunk]).generate_state(1, np.uint64)[0] >> np.uint64(1))


def skipgram_pairs(ids: torch.Tensor, sentence: torch.Tensor, reach: torch.Tensor,
                   window: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(centre ids, context ids) of every skip-gram prediction in a subsampled chunk.

    ids (n,) word ids, sentence (n,) sentence of each word, reach (n,) each centre's reduced
    window in [1, window]. A pair is kept when both words share a sentence and the distance is
    within the centre's reach. One vectorised pass per offset, no loop over words.
    """
    centres, contexts = [], []
    for offset in range(1, window + 1):
        left = torch.arange(len(ids) - offset, device=ids.device)  # (n - offset,)
        right = left + offset
        same = sentence[left] == sentence[right]
        for centre, context in ((left, right), (right, left)):
            chosen = same & (reach[centre] >= offset)
            centres.append(ids[centre[chosen]])
            contexts.append(ids[context[chosen]])
    return torch.cat(centres), torch.cat(contexts)  # (P,), (P,)
