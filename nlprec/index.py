"""FAISS indexes over `Vectors`, and the exact kernels behind their queries.

The queries themselves are methods of `Vectors` (`most_similar`, `analogy`, `batch_analogy`);
this module builds and searches the indexes they use. Cosine similarity is always L2-normalise +
inner product in float32. Without an explicit index, queries go to an exact `IndexFlatIP` over
the unit vectors, built once per `Vectors` (`flat_index`) and searched by `search_vectors`. A
`VectorIndex` can also be an IVF / HNSW preset for large vocabularies, with `recall_at_k`
measuring it against exact search (a chunked numpy matmul). Evaluation over thousands of analogy
questions scores whole blocks with one matmul (`analogy_top_k`).

Analogies "a : b :: c : ?" (Mikolov et al. 2013, "Linguistic Regularities in Continuous Space
Word Representations"; Levy & Goldberg 2014, "Linguistic Regularities in Sparse and Explicit
Word Representations"), on unit vectors, never answering one of the three input words:

- 3CosAdd: argmax_x cos(x, b - a + c)
- 3CosMul: argmax_x cos'(x, b) * cos'(x, c) / (cos'(x, a) + eps), cos' = (cos + 1) / 2 in [0, 1],
  eps = 1e-3 as in the paper (gensim's `most_similar_cosmul` uses 1e-6).
"""

from __future__ import annotations

import json
import math
import os
import weakref
from collections.abc import Collection, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np

from nlprec import __version__
from nlprec.errors import NlprecError
from nlprec.io import atomic_write

IndexKind = Literal["flat", "ivf", "hnsw"]
IndexMetric = Literal["cosine", "ip"]
AnalogyMethod = Literal["3cosadd", "3cosmul"]

COSMUL_EPS = 1e-3
# Largest score block computed at once: 2**25 float32 = 128 MiB (e.g. 1024 queries x 32k words).
_SCORE_BLOCK = 1 << 25
_INDEX_FILE, _KEYS_FILE, _CONFIG_FILE = "index.faiss", "keys.json", "index.json"


class IndexedVectors(Protocol):
    """What an index reads from the vectors it is built over: `nlprec.vectors.Vectors` has it.

    Spelled out here because `nlprec.vectors` imports this module for its queries, and this
    module must not import it back.
    """

    keys: list[str]  # the words, one per row
    matrix: np.ndarray  # (n, dim) float32

    @property
    def dim(self) -> int: ...

    def __len__(self) -> int: ...

    def unit_matrix(self) -> np.ndarray: ...


def _faiss() -> Any:
    """Import FAISS on first use, with the install command when it is missing."""
    try:
        import faiss
    except ImportError as err:
        raise ImportError("nlprec.index needs FAISS for VectorIndex: pip install faiss-cpu "
                          "(or faiss-gpu), or call most_similar/analogy without an index") from err
    return faiss


@dataclass(frozen=True)
class IndexConfig:
    """How a `VectorIndex` is built and searched."""

    kind: IndexKind = "flat"  # flat: exact; ivf: inverted lists (k-means cells); hnsw: proximity graph
    metric: IndexMetric = "cosine"  # cosine: L2-normalise rows and queries; ip: raw inner product
    nlist: int = 0  # IVF cells, >= 1; 0 picks 4*sqrt(n), at most n/39 (FAISS's points per cell)
    nprobe: int = 32  # IVF cells visited per query, 1..nlist; more is slower and more exact
    hnsw_m: int = 32  # HNSW links per node, 4..64; more is more memory and more exact
    ef_construction: int = 200  # HNSW build beam width, >= hnsw_m
    ef_search: int = 128  # HNSW search beam width, raised to k + exclusions when smaller
    threads: int = 0  # FAISS OpenMP threads (process-wide), >= 0; 0 = min(4, CPU cores)
    seed: int = 0  # IVF k-means seed, so builds repeat

    def __post_init__(self) -> None:
        if self.kind not in ("flat", "ivf", "hnsw"):
            raise NlprecError(f"index kind {self.kind!r}: expected 'flat', 'ivf' or 'hnsw'")
        if self.metric not in ("cosine", "ip"):
            raise NlprecError(f"index metric {self.metric!r}: expected 'cosine' or 'ip'")
        for name in ("nprobe", "hnsw_m", "ef_construction", "ef_search"):
            if getattr(self, name) < 1:
                raise NlprecError(f"index {name}={getattr(self, name)}: expected >= 1")
        if self.nlist < 0 or self.threads < 0:
            raise NlprecError(f"index nlist={self.nlist}, threads={self.threads}: expected >= 0")


class VectorIndex:
    """A FAISS index over the rows of a `Vectors`, with its string<->id map.

    Args:
        vectors: the vectors to index; row i of the matrix is id i.
        kind, metric, **options: the `IndexConfig` fields (nlist, nprobe, hnsw_m,
            ef_construction, ef_search, threads, seed).
    """

    def __init__(
        self, vectors: IndexedVectors, kind: IndexKind = "flat", metric: IndexMetric = "cosine", **options: int
    ) -> None:
        self.config = IndexConfig(kind=kind, metric=metric, **options)
        if not len(vectors):
            raise NlprecError("cannot index an empty vocabulary")
        self.keys: list[str] = vectors.keys
        self.dim = vectors.dim
        data = vectors.unit_matrix() if metric == "cosine" else vectors.matrix  # (n, dim)
        self._index = self._build(np.ascontiguousarray(data, dtype=np.float32))

    def __len__(self) -> int:
        return len(self.keys)

    def __repr__(self) -> str:
        return f"VectorIndex({self.config.kind}, {self.config.metric}, {len(self):,} vectors, dim {self.dim})"

    def _build(self, data: np.ndarray) -> Any:
        faiss = self._set_threads()
        cfg, (n, dim) = self.config, data.shape
        if cfg.kind == "flat":
            index = faiss.IndexFlatIP(dim)
        elif cfg.kind == "hnsw":
            index = faiss.IndexHNSWFlat(dim, cfg.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = cfg.ef_construction
        else:
            nlist = cfg.nlist or max(1, min(int(4 * math.sqrt(n)), n // 39))
            if nlist > n:
                raise NlprecError(f"ivf nlist={nlist} is more cells than the {n:,} vectors to index")
            index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, nlist, faiss.METRIC_INNER_PRODUCT)
            index.cp.seed = cfg.seed
            index.train(data)
        index.add(data)
        return index

    def _set_threads(self) -> Any:
        """FAISS's thread count is process-wide, so it is set before every build and search."""
        faiss = _faiss()
        faiss.omp_set_num_threads(self.config.threads or min(4, os.cpu_count() or 1))
        return faiss

    def search(
        self, queries: np.ndarray, k: int, exclude: Sequence[Collection[int]] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Best `k` ids per query row, best first, skipping each row's `exclude` ids.

        Args:
            queries: (Q, dim) vectors; normalised here when the metric is cosine.
            k: neighbours per query.
            exclude: one collection of ids per query (e.g. the query word itself).

        Returns:
            scores (Q, k) float32 and ids (Q, k) int64; where fewer than `k` ids are found
            (k > n, or an approximate index came up short) ids are -1 and scores -inf.
        """
        _check_k(k)
        queries = self._prepare_queries(queries)
        pad = _exclusion_table(exclude, len(queries))  # (Q, m)
        fetch = k + pad.shape[1]
        self._set_threads()
        if self.config.kind == "hnsw":
            self._index.hnsw.efSearch = max(self.config.ef_search, fetch)
        elif self.config.kind == "ivf":
            self._index.nprobe = min(self.config.nprobe, self._index.nlist)
        scores, ids = self._index.search(queries, fetch)  # (Q, fetch) each
        drop = (ids < 0) | (ids[:, :, None] == pad[:, None, :]).any(axis=2)  # (Q, fetch)
        keep = np.argsort(drop, axis=1, kind="stable")[:, :k]  # kept columns first, order intact
        scores, ids = np.take_along_axis(scores, keep, 1), np.take_along_axis(ids, keep, 1)
        dropped = np.take_along_axis(drop, keep, 1)
        scores[dropped], ids[dropped] = -np.inf, -1
        return scores.astype(np.float32), ids.astype(np.int64)

    def _prepare_queries(self, queries: np.ndarray) -> np.ndarray:
        queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)  # (Q, dim)
        if queries.shape[1] != self.dim:
            raise NlprecError(f"queries have dim {queries.shape[1]}, the index has dim {self.dim}")
        return normalise(queries) if self.config.metric == "cosine" else queries

    def recall_at_k(self, k: int = 10, n_queries: int = 1000, seed: int = 0) -> float:
        """Share of the exact top-`k` neighbours this index finds, over sampled stored vectors.

        Each query is a stored vector with itself excluded (it would always be found). Exact
        search is a flat inner-product scan over the same stored vectors, so flat gives 1.0.
        """
        stored = self._stored_vectors()  # (n, dim)
        rng = np.random.default_rng(seed)
        rows = rng.choice(len(stored), size=min(n_queries, len(stored)), replace=False)
        exclude = [[int(row)] for row in rows]
        _, found = self.search(stored[rows], k, exclude)  # (Q, k)
        _, truth = _exact_search(stored, stored[rows], k, exclude)  # (Q, k)
        hits = (found[:, :, None] == truth[:, None, :]) & (truth[:, None, :] >= 0)  # (Q, k, k)
        return float(hits.any(axis=1).sum() / max(1, (truth >= 0).sum()))

    def _stored_vectors(self) -> np.ndarray:
        if self.config.kind == "ivf":
            _faiss().extract_index_ivf(self._index).make_direct_map()
        return self._index.reconstruct_n(0, self._index.ntotal)

    def matches(self, vectors: IndexedVectors) -> bool:
        """Whether this index was built over the same vocabulary, in the same order."""
        return self.keys is vectors.keys or (len(self.keys) == len(vectors) and self.keys == vectors.keys)

    def save(self, directory: str | os.PathLike) -> Path:
        """Write `index.faiss`, `keys.json` (id -> word) and `index.json` (config) atomically."""
        directory = Path(directory)
        blob = _faiss().serialize_index(self._index)  # (bytes,) uint8; a CPU index
        with atomic_write(directory / _INDEX_FILE) as handle:
            handle.write(blob.tobytes())
        with atomic_write(directory / _KEYS_FILE, "w", encoding="utf-8") as handle:
            json.dump(self.keys, handle, ensure_ascii=False)
        with atomic_write(directory / _CONFIG_FILE, "w", encoding="utf-8") as handle:  # last: marks completion
            json.dump({"config": asdict(self.config), "count": len(self), "dim": self.dim,
                       "nlprec_version": __version__}, handle, indent=2)
        return directory

    @classmethod
    def load(cls, directory: str | os.PathLike, mmap: bool = False) -> "VectorIndex":
        """Read an index written by `save`; `mmap` maps the stored vectors from the file (FAISS
        IO_FLAG_MMAP_IFC) instead of copying them, so processes using one file share its pages."""
        directory = Path(directory)
        for name in (_CONFIG_FILE, _KEYS_FILE, _INDEX_FILE):
            if not (directory / name).is_file():
                raise NlprecError(f"{directory}: not a saved index (missing {name})")
        try:
            saved = json.loads((directory / _CONFIG_FILE).read_text(encoding="utf-8"))
            keys = json.loads((directory / _KEYS_FILE).read_text(encoding="utf-8"))
            config = IndexConfig(**saved["config"])
        except (ValueError, KeyError, TypeError) as err:
            raise NlprecError(f"{directory}: unreadable index metadata ({err})") from None
        self = cls.__new__(cls)
        self.config, self.keys, self.dim = config, keys, int(saved["dim"])
        faiss = _faiss()
        if mmap:
            self._index = faiss.read_index(str(directory / _INDEX_FILE), faiss.IO_FLAG_MMAP_IFC)
        else:
            self._index = faiss.deserialize_index(np.fromfile(directory / _INDEX_FILE, dtype=np.uint8))
        if self._index.ntotal != len(keys) or self._index.d != self.dim:
            raise NlprecError(f"{directory}: {_INDEX_FILE} holds {self._index.ntotal:,} vectors of dim "
                              f"{self._index.d} but {_KEYS_FILE} has {len(keys):,} words and dim {self.dim}")
        return self


# --- exact search -----------------------------------------------------------------------------


def _check_k(k: int) -> None:
    if k < 1:
        raise NlprecError(f"k={k}: expected at least 1 result per query")


def normalise(rows: np.ndarray) -> np.ndarray:
    """(Q, d) rows scaled to unit L2 norm in float32; all-zero rows stay zero."""
    norms = np.linalg.norm(rows, axis=1, keepdims=True)  # (Q, 1)
    return (rows / np.where(norms > 0, norms, 1)).astype(np.float32, copy=False)


def _exclusion_table(exclude: Sequence[Collection[int]] | None, n_queries: int) -> np.ndarray:
    """Per-query excluded ids as a (Q, m) int64 table padded with -2 (never an id, nor FAISS's -1)."""
    if exclude is None:
        return np.full((n_queries, 0), -2, dtype=np.int64)
    if len(exclude) != n_queries:
        raise NlprecError(f"exclude has {len(exclude)} entries for {n_queries} queries: expected one per query")
    table = np.full((n_queries, max((len(ids) for ids in exclude), default=0)), -2, dtype=np.int64)
    for row, ids in enumerate(exclude):
        table[row, : len(ids)] = list(ids)
    return table


def _pad_columns(scores: np.ndarray, ids: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Widen (Q, j) results to (Q, k) with -inf / -1 when fewer than k candidates exist."""
    missing = k - ids.shape[1]
    if missing <= 0:
        return scores, ids
    return (np.pad(scores, ((0, 0), (0, missing)), constant_values=-np.inf),
            np.pad(ids, ((0, 0), (0, missing)), constant_values=-1))


def _top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Best `k` columns of each row of (Q, V) scores, best first; -inf columns come back as -1."""
    n = scores.shape[1]
    k = min(k, n)
    if k == 1:  # argmax is ~50x faster than a partition, and evaluation wants one answer
        part = scores.argmax(axis=1)[:, None]  # (Q, 1)
    else:
        part = np.argpartition(scores, n - k, axis=1)[:, n - k :]  # (Q, k), unordered
    part_scores = np.take_along_axis(scores, part, 1)  # (Q, k)
    order = np.argsort(-part_scores, axis=1, kind="stable")  # (Q, k)
    top_scores, top_ids = np.take_along_axis(part_scores, order, 1), np.take_along_axis(part, order, 1)
    top_ids[np.isneginf(top_scores)] = -1
    return top_scores, top_ids.astype(np.int64)


def _block_rows(n_columns: int, limit: int = 1024) -> int:
    """How many query rows fit one score block of `n_columns` candidates."""
    return max(1, min(limit, _SCORE_BLOCK // max(1, n_columns)))


def _exact_search(
    matrix: np.ndarray, queries: np.ndarray, k: int, exclude: Sequence[Collection[int]] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-`k` inner products of `queries` (Q, d) against `matrix` (V, d), in row blocks."""
    _check_k(k)
    table = _exclusion_table(exclude, len(queries))  # (Q, m)
    step = _block_rows(len(matrix))
    results = []
    for start in range(0, len(queries), step):
        scores = queries[start : start + step] @ matrix.T  # (B, V)
        block = table[start : start + step]  # (B, m)
        rows, cols = np.nonzero(block >= 0)
        scores[rows, block[rows, cols]] = -np.inf
        results.append(_top_k(scores, k))
    if not results:
        return np.zeros((0, k), np.float32), np.zeros((0, k), np.int64)
    return _pad_columns(np.concatenate([r[0] for r in results]), np.concatenate([r[1] for r in results]), k)


_FLAT_INDEXES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def flat_index(vectors: IndexedVectors) -> VectorIndex:
    """The exact cosine index of `vectors` (IndexFlatIP on unit rows), cached while they live."""
    if vectors not in _FLAT_INDEXES:
        _FLAT_INDEXES[vectors] = VectorIndex(vectors, kind="flat", metric="cosine")
    return _FLAT_INDEXES[vectors]


def search_vectors(vectors: IndexedVectors, index: VectorIndex | None, queries: np.ndarray, k: int,
                   exclude: Sequence[Collection[int]]) -> tuple[np.ndarray, np.ndarray]:
    """Best `k` rows of `vectors` per query row, as `VectorIndex.search` returns them.

    Searches `index` when given (checking it was built over `vectors`), else the exact FAISS
    inner-product index over the unit vectors, built once per `Vectors` and kept (`flat_index`).
    """
    if index is None:
        index = flat_index(vectors)
    if not index.matches(vectors):
        raise NlprecError(f"the index holds {len(index):,} words that differ from these {len(vectors):,} "
                          "vectors: rebuild it from the same vectors")
    return index.search(queries, k, exclude)


def analogy_scores(unit: np.ndarray, triples: np.ndarray, method: AnalogyMethod = "3cosadd") -> np.ndarray:
    """Score every row of `unit` (V, d) as the answer to each (a, b, c) id triple (Q, 3).

    Returns (Q, V) float32: cos(x, b - a + c) for 3CosAdd; the 3CosMul ratio otherwise.
    """
    a, b, c = unit[triples[:, 0]], unit[triples[:, 1]], unit[triples[:, 2]]  # (Q, d) each
    if method == "3cosadd":
        return normalise(b - a + c) @ unit.T  # (Q, V)
    # cos'b cos'c / (cos'a + eps) = (1 + cos b)(1 + cos c) / (2 (1 + cos a + 2 eps)), in place
    scores = b @ unit.T  # (Q, V) cos(x, b)
    scores += 1
    other = c @ unit.T  # (Q, V) cos(x, c)
    other += 1
    scores *= other
    np.matmul(a, unit.T, out=other)  # (Q, V) cos(x, a)
    other += 1 + 2 * COSMUL_EPS
    other *= 2
    scores /= other
    return scores


def analogy_top_k(
    unit: np.ndarray, triples: np.ndarray, k: int, method: AnalogyMethod = "3cosadd",
    groups: np.ndarray | None = None, batch_size: int = 1024,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-`k` answers to id triples (Q, 3) over `unit` (V, d), in blocks of questions.

    Args:
        groups: (V,) for each row the first row of its group, e.g. of its case-folded spelling;
            every row in the group of an input word is excluded. Default: each row on its own.
        batch_size: most questions scored at once (also capped to ~128 MiB of scores).

    Returns:
        scores (Q, k) float32 and ids (Q, k) int64, best first.
    """
    _check_k(k)
    groups = np.arange(len(unit)) if groups is None else groups  # (V,)
    variants = np.flatnonzero(groups != np.arange(len(unit)))  # (W,) rows that are not first in their group
    step = _block_rows(len(unit), batch_size)
    out_scores = np.full((len(triples), min(k, len(unit))), -np.inf, dtype=np.float32)
    out_ids = np.full(out_scores.shape, -1, dtype=np.int64)
    for start in range(0, len(triples), step):
        block = triples[start : start + step]  # (B, 3)
        scores = analogy_scores(unit, block, method)  # (B, V)
        firsts = groups[block]  # (B, 3) first row of each input word's group
        scores[np.arange(len(block))[:, None], firsts] = -np.inf
        rows, cols = np.nonzero((groups[variants][None, :, None] == firsts[:, None, :]).any(axis=2))  # of (B, W)
        scores[rows, variants[cols]] = -np.inf
        out_scores[start : start + step], out_ids[start : start + step] = _top_k(scores, k)
    return _pad_columns(out_scores, out_ids, k)
