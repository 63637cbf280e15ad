"""A vocabulary with a stable order: most frequent first, ties broken by the token itself.

pandas loads only in `encode` (many tokens, factorized first), so encoding an ASCII corpus for
`nlprec embed train` never imports it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np
import torch

from nlprec.errors import NlprecError

if TYPE_CHECKING:
    import pandas as pd


@dataclass
class Vocab:
    """Words and their corpus counts, sorted by (count descending, word ascending)."""

    words: list[str]  # index -> word
    counts: np.ndarray  # (V,) int64 corpus count of each word
    _index: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.counts = np.asarray(self.counts, dtype=np.int64)
        if len(self.words) != len(self.counts):
            raise ValueError("words and counts differ in length")
        self._index = {word: i for i, word in enumerate(self.words)}

    @classmethod
    def from_counts(cls, counts: Mapping[str, int] | pd.Series, min_count: int = 1,
                    max_size: int | None = None, source: str = "the corpus") -> Vocab:
        """Keep words seen at least `min_count` times, at most `max_size` of the most frequent."""
        if isinstance(counts, Mapping):
            words, values = list(counts.keys()), list(counts.values())
        else:  # a pandas Series, the words its index
            words, values = list(counts.index), counts.to_numpy()
        return cls.from_arrays(words, values, min_count, max_size, source)

    @classmethod
    def from_arrays(cls, words: Sequence[str] | np.ndarray, counts: Sequence[int] | np.ndarray, min_count: int = 1,
                    max_size: int | None = None, source: str = "the corpus") -> Vocab:
        """`from_counts` with the distinct words and their counts as two parallel arrays."""
        counts = np.asarray(counts, dtype=np.int64)  # (u,)
        if len(counts) == 0:
            raise NlprecError(f"{source} has no tokens; expected text with at least one word")
        kept = np.flatnonzero(counts >= min_count)  # (k,)
        if len(kept) == 0:
            raise NlprecError(f"{source}: no word occurs at least {min_count} times (min-count); "
                              f"the most frequent occurs {int(counts.max())} times: lower --min-count")
        kept_words = [str(words[i]) for i in kept]
        by_word = sorted(range(len(kept)), key=kept_words.__getitem__)  # ties: the word ascending
        order = np.asarray(by_word, dtype=np.int64)[np.argsort(-counts[kept][by_word], kind="stable")]  # (k,)
        if max_size is not None:
            order = order[:max_size]
        return cls([kept_words[i] for i in order], counts[kept][order])

    def __len__(self) -> int:
        return len(self.words)

    def __contains__(self, word: str) -> bool:
        return word in self._index

    def encode(self, tokens: np.ndarray | list[str]) -> np.ndarray:
        """Ids of `tokens` (int64), -1 for words outside the vocabulary.

        The tokens are factorized first, so each distinct one is looked up once: 3x faster than
        looking up every token (IMDb test, 5.8M tokens of 86k distinct: 0.50 s against 1.57 s).
        """
        import pandas as pd

        codes, distinct = pd.factorize(np.asarray(tokens, dtype=object))  # (n,), (u,)
        return self.lookup(distinct)[codes]  # (n,)

    def lookup(self, words: Sequence[str] | np.ndarray) -> np.ndarray:
        """(len(words),) int64 id of each word, -1 outside the vocabulary (a dict lookup each:
        meant for distinct words)."""
        index = self._index
        return np.fromiter((index.get(word, -1) for word in words), np.int64, len(words))

    @property
    def total(self) -> int:
        """Total count of the kept words."""
        return int(self.counts.sum())

    def state_dict(self) -> dict[str, Any]:
        """Plain types only, for weights-only checkpoints."""
        return {"words": list(self.words), "counts": torch.from_numpy(self.counts.copy())}

    @classmethod
    def from_state_dict(cls, state: Mapping[str, Any]) -> Vocab:
        counts = state["counts"]
        return cls(list(state["words"]), counts.numpy() if isinstance(counts, torch.Tensor) else counts)
