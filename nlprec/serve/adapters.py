"""One small adapter per servable model kind, over the Python API the CLI calls.

An adapter says which paths it serves (a vectors file, or a folder whose config.json has one of
its `formats`), loads and warms a model, reports its provenance, and lists its operations. An
operation pairs the pydantic request and response models of one route with three functions:

- `prepare(model, request) -> (batch key, items)`: checks the request against the model with
  cheap lookups, on the event loop (an unknown word, user or item raises `UnknownKey`; a bad
  value `NlprecError`);
- `run(model, key, items) -> answers`: ONE batched call of the Python API over the items of
  many requests (one FAISS search, one matrix product, one beam search);
- `respond(model, request, answers) -> dict`: the JSON of one request, the objects the CLI's
  --json prints.

Adding a kind is one class here with `@adapter`; the app builds its routes, batcher, limits and
metrics from it. No model logic lives here: every answer comes from nlprec's public functions.
"""

from __future__ import annotations

import abc
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Hashable, Literal

from pydantic import BaseModel, ConfigDict, Field

from nlprec import __version__
from nlprec.errors import NlprecError
from nlprec.serve import openai_embeddings
from nlprec.serve.settings import ModelSpec, ServeSettings

VECTOR_SUFFIXES = (".npz", ".bin", ".vec", ".txt")


class UnknownKey(NlprecError):
    """A word, user or item the model does not know (answered 404, with suggestions when any).

    `describe()` gives the message; `prepare` runs on the event loop, so a message that costs
    time (close spellings over a large vocabulary) is passed as a function, run on a thread."""

    def __init__(self, message: str = "", describe: Callable[[], str] | None = None) -> None:
        super().__init__(message)
        self._describe = describe

    def describe(self) -> str:
        return self._describe() if self._describe is not None else str(self)


class Request(BaseModel):
    """Every request body: unknown fields are an error, not silently ignored."""

    model_config = ConfigDict(extra="forbid")


@dataclass(frozen=True)
class Operation:
    """One route of a kind: POST {adapter.prefix}/{name}{path}."""

    name: str  # metrics label and route name, e.g. "similar"
    path: str  # after the model name, e.g. "/similar"; "" for a kind's only route
    request: type[BaseModel]
    response: type[BaseModel]
    items_field: str  # the request's list field, checked against --max-items
    prepare: Callable[[Any, Any], tuple[Hashable, list]]
    run: Callable[[Any, Hashable, list], list]
    respond: Callable[[Any, Any, list], dict] | None  # None when `own_route` writes the answer itself
    summary: str = ""  # one line for the OpenAPI docs
    own_route: bool = False  # True: batched under `name` but served at `path` by a route of its own (the
    #                          model named in the body: POST /v1/embeddings, nlprec.serve.openai_embeddings)


class Adapter(abc.ABC):
    """Base of the kind adapters (see the module docstring): each kind implements load and provenance."""

    kind: str = ""  # name in /v1/models
    prefix: str = ""  # route prefix before the model name, e.g. "/v1/embeddings"
    formats: tuple[str, ...] = ()  # config.json "format" values of the folders it serves
    operations: tuple[Operation, ...] = ()

    def accepts_file(self, path: Path) -> bool:
        return False

    @abc.abstractmethod
    def load(self, spec: ModelSpec, settings: ServeSettings) -> Any:
        """The model object the operations call, loaded from `spec.path`."""

    def warmup(self, model: Any) -> list[tuple[Operation, dict]]:
        """Requests answered before the model is ready (builds indexes, touches pages)."""
        return []

    @abc.abstractmethod
    def provenance(self, model: Any) -> dict:
        """Config, seed, data sha256 and version of `model`, for /v1/models."""


ADAPTERS: list[Adapter] = []


def adapter(cls: type[Adapter]) -> type[Adapter]:
    """Register a kind: the one place a new model kind is added."""
    ADAPTERS.append(cls())
    return cls


def detect(path: str) -> Adapter:
    """The adapter for what `path` holds; a one-line `NlprecError` when it is no servable model."""
    where = Path(path)
    if not where.exists():
        raise NlprecError(f"--model path {path!r} does not exist")
    if where.is_dir():
        return _detect_folder(where)
    for candidate in ADAPTERS:
        if candidate.accepts_file(where):
            return candidate
    raise NlprecError(f"{path}: cannot tell what it holds: expected a vectors file ({', '.join(VECTOR_SUFFIXES)}) "
                      "or a model folder with a config.json")


def _detect_folder(folder: Path) -> Adapter:
    config = folder / "config.json"
    if not config.is_file():
        raise NlprecError(f"{folder}: a folder without config.json is not a model folder (train one with nlprec "
                          "rec train, nlprec translate train, ...)")
    try:
        fmt = json.loads(config.read_text(encoding="utf-8")).get("format")
    except (OSError, UnicodeDecodeError, ValueError, AttributeError) as err:
        raise NlprecError(f"{config}: not a readable JSON object ({err.__class__.__name__})") from None
    for candidate in ADAPTERS:
        if fmt in candidate.formats:
            return candidate
    known = ", ".join(f for candidate in ADAPTERS for f in candidate.formats)
    raise NlprecError(f"{config}: format {fmt!r} is not a model nlprec serve knows (known: {known})")


# --- word vectors ------------------------------------------------------------------------------


class Scored(BaseModel):
    word: str
    score: float


class SimilarRequest(Request):
    words: list[str] = Field(min_length=1, description="Query words; one result list per word, in order.")
    k: int = Field(10, ge=1, description="Neighbours per word.")


class SimilarResponse(BaseModel):
    results: list[list[Scored]]


class MapRequest(Request):
    word: str = Field(description="The query word.")
    k: int = Field(10, ge=1, description="Neighbours drawn with it.")


class MapPoint(BaseModel):
    word: str
    score: float | None  # cosine to the query; null for the query itself
    x: float
    y: float


class MapResponse(BaseModel):
    points: list[MapPoint]


class AnalogyRequest(Request):
    a: str
    b: str
    c: str
    k: int = Field(5, ge=1)
    method: Literal["3cosadd", "3cosmul"] = "3cosadd"


class AnalogyResponse(BaseModel):
    results: list[Scored]


@dataclass
class ServedVectors:
    """Vectors with the index their lookups search (None for subword vectors, searched exactly)."""

    vectors: Any  # nlprec.vectors.Vectors, or a subclass that composes unseen words
    index: Any  # nlprec.index.VectorIndex or None
    path: str
    index_info: dict


def _check_words(vectors: Any, words: list[str]) -> None:
    """Every word must be answerable: in the vocabulary, or composable from n-grams (the message
    with close spellings is the one `vectors_for` raises, built on a thread when asked for)."""
    missing = vectors.unanswerable(words)
    if missing:
        raise UnknownKey(describe=lambda: _lookup_message(vectors, missing))


def _lookup_message(vectors: Any, words: list[str]) -> str:
    try:
        vectors.vectors_for(words)
    except NlprecError as err:
        return str(err)
    return f"unknown word {words[0]!r}"


def _prepare_similar(model: ServedVectors, request: SimilarRequest) -> tuple[Hashable, list]:
    _check_words(model.vectors, request.words)
    return ("similar", request.k), list(request.words)


def _run_similar(model: ServedVectors, key: Hashable, words: list) -> list:
    return model.vectors.most_similar(words, key[1], model.index)


def _prepare_map(model: ServedVectors, request: MapRequest) -> tuple[Hashable, list]:
    _check_words(model.vectors, [request.word])
    return ("map", request.k), [request.word]


def _run_map(model: ServedVectors, key: Hashable, words: list) -> list:
    """The query and its k neighbours (one batched search), each set projected on its own two
    principal components (nlprec.plot.project_2d, as `nlprec plot words` draws them)."""
    from nlprec.plot import project_2d

    answers = []
    for word, rows in zip(words, model.vectors.most_similar(words, key[1], model.index)):
        names = [word, *(neighbour for neighbour, _ in rows)]
        points = project_2d(model.vectors.vectors_for(names)) if len(names) > 1 else [[0.0, 0.0]]  # (N, 2)
        scores = [None, *(score for _, score in rows)]
        answers.append([{"word": name, "score": score, "x": float(point[0]), "y": float(point[1])}
                        for name, score, point in zip(names, scores, points)])
    return answers


def _prepare_analogy(model: ServedVectors, request: AnalogyRequest) -> tuple[Hashable, list]:
    _check_words(model.vectors, [request.a, request.b, request.c])
    return ("analogy", request.k, request.method), [(request.a, request.b, request.c)]


def _run_analogy(model: ServedVectors, key: Hashable, questions: list) -> list:
    _, k, method = key
    return model.vectors.batch_analogy(questions, k, method, model.index if method == "3cosadd" else None)


def _scored(rows: list[tuple[str, float]]) -> list[dict]:
    return [{"word": word, "score": score} for word, score in rows]


@adapter
class EmbeddingsAdapter(Adapter):
    """Word vectors (.npz, word2vec .bin/.vec/.txt, fastText .bin): /similar and /analogy.

    Plain vectors in an .npz are memory-mapped, and their FAISS index is built once per host in
    the cache folder and memory-mapped too, so uvicorn workers share both.
    """

    kind = "embeddings"
    prefix = "/v1/embeddings"
    operations = (
        Operation("similar", "/similar", SimilarRequest, SimilarResponse, "words", _prepare_similar, _run_similar,
                  lambda model, request, answers: {"results": [_scored(rows) for rows in answers]},
                  "The k nearest words by cosine to each query word (itself excluded)."),
        Operation("analogy", "/analogy", AnalogyRequest, AnalogyResponse, "", _prepare_analogy, _run_analogy,
                  lambda model, request, answers: {"results": _scored(answers[0])},
                  "Answers to a : b :: c : ?, best first, the three words excluded."),
        Operation("map", "/map", MapRequest, MapResponse, "", _prepare_map, _run_map,
                  lambda model, request, answers: {"points": answers[0]},
                  "A word and its k nearest words in 2-D: the PCA of their vectors (the query first)."),
    )

    def accepts_file(self, path: Path) -> bool:
        from nlprec.fasttext_io import is_fasttext_bin

        return path.suffix.lower() in VECTOR_SUFFIXES or is_fasttext_bin(path)

    def load(self, spec: ModelSpec, settings: ServeSettings) -> ServedVectors:
        import numpy as np

        from nlprec.subword_vectors import load_vectors
        from nlprec.vectors import Vectors

        path = Path(spec.path)
        plain_npz = False
        if path.suffix.lower() == ".npz":
            try:
                with np.load(path, allow_pickle=False) as archive:
                    plain_npz = "ngram_matrix" not in archive.files
            except (OSError, ValueError) as err:
                raise NlprecError(f"{path}: not a readable .npz vectors file ({err})") from None
        if plain_npz:
            _read_through(path)  # the page cache holds the mapped matrix before the first query
        vectors = Vectors.load(path, mmap=True) if plain_npz else load_vectors(path)
        if vectors.subwords:
            if spec.index != "flat":
                raise NlprecError(f"--index {spec.name}={spec.index}: subword vectors are searched exactly "
                                  "(their own matrix product); --index is for plain vectors")
            return ServedVectors(vectors, None, str(path), {"kind": "exact", "memory_mapped": False})
        index, info = _served_index(vectors, path, spec.index, settings.index_cache())
        return ServedVectors(vectors, index, str(path), {**info, "vectors_memory_mapped": isinstance(vectors.matrix,
                                                                                                      np.memmap)})

    def warmup(self, model: ServedVectors) -> list[tuple[Operation, dict]]:
        words = model.vectors.keys[:3] if len(model.vectors) >= 3 else []
        calls = [(self.operations[0], {"words": model.vectors.keys[:1], "k": 1})]
        if words:
            calls.append((self.operations[1], {"a": words[0], "b": words[1], "c": words[2], "k": 1}))
        return calls

    def provenance(self, model: ServedVectors) -> dict:
        vectors = model.vectors
        return {"file": model.path, "words": len(vectors), "dim": vectors.dim,
                "subwords": vectors.subwords, "index": model.index_info,
                "meta": vectors.meta}


def _served_index(vectors: Any, path: Path, index: str, cache: Path) -> tuple[Any, dict]:
    """The FAISS index `index` ("KIND[:options]") of `vectors`, built once into `cache` (keyed by the
    file's path, size, mtime and the index text) and memory-mapped from there; built in memory when
    the cache is not writable. Returns it with a description for the provenance."""
    import time

    from nlprec.index import VectorIndex
    from nlprec.serve.settings import index_options

    kind, options = index_options(index)
    # One FAISS thread unless asked: each model already has its own thread, and the event loop
    # needs a core; on a small, shared machine OpenMP's spinning threads cost more than they give.
    options.setdefault("threads", 1)
    stat = path.stat()
    tag = hashlib.sha256(f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{index}|{__version__}".encode())
    folder = cache / f"{path.stem}-{kind}-{tag.hexdigest()[:16]}"
    info: dict[str, Any] = {"kind": kind, "options": options, "memory_mapped": False, "build_seconds": None}
    for attempt in ("cached", "built"):
        if (folder / "index.json").is_file():
            try:
                loaded = VectorIndex.load(folder, mmap=True)
            except (NlprecError, RuntimeError):
                loaded = None
            if loaded is not None and loaded.matches(vectors):
                loaded.keys = vectors.keys  # one list per process, and `matches` is then an identity check
                _read_through(folder / "index.faiss")
                return loaded, {**info, "memory_mapped": True, "file": str(folder)}
        if attempt == "built":
            break
        started = time.perf_counter()
        built = VectorIndex(vectors, kind=kind, metric="cosine", **options)
        info["build_seconds"] = round(time.perf_counter() - started, 3)
        try:
            built.save(folder)
        except OSError:
            return built, info
    return built, info


def _read_through(path: Path, chunk: int = 1 << 24) -> None:
    """Read a memory-mapped file once, in order, so its pages are in the page cache before the
    first query: a graph index (HNSW) touches them at random, one disk read per page fault."""
    with open(path, "rb", buffering=0) as handle:
        while handle.read(chunk):
            pass


# --- recommenders ------------------------------------------------------------------------------


class RecommendRequest(Request):
    users: list[str] = Field(min_length=1, description="User ids; one answer per user, in order. Unknown users "
                                                        "get the most popular items.")
    k: int = Field(10, ge=1)
    exclude_seen: bool = Field(True, description="Leave out items the user interacted with in the data.")
    history: int = Field(0, ge=0, le=1000, description="Also return up to this many items each user interacted "
                                                       "with in the data, highest rated first (0: none).")


class ItemScore(BaseModel):
    item: str
    score: float
    title: str | None = Field(None, description="Only when the folder has item metadata (rec train --items).")


class HistoryItem(BaseModel):
    item: str
    rating: float | None  # null for ranking models
    title: str | None = Field(None, description="Only when the folder has item metadata (rec train --items).")


class Recommendation(BaseModel):
    user: str
    source: Literal["model", "popularity"]
    notice: str | None
    items: list[ItemScore]
    history: list[HistoryItem] | None = Field(None, description="Only when the request asks for it.")


class RecommendResponse(BaseModel):
    results: list[Recommendation]


class ScoreRequest(Request):
    pairs: list[tuple[str, str]] = Field(min_length=1, description="[user, item] pairs; one score per pair, in order.")
    unknown_items: Literal["error", "nan"] = Field(
        "error", description="An item the model does not know: error (404) or a null score.")


class PairScore(BaseModel):
    user: str
    item: str
    score: float | None  # null for an unknown item with unknown_items "nan"
    source: Literal["model", "popularity", "unknown_item"]


class ScoreResponse(BaseModel):
    results: list[PairScore]


def _prepare_recommend(model: Any, request: RecommendRequest) -> tuple[Hashable, list]:
    return ("recommend", request.k, request.exclude_seen, request.history), list(request.users)


def _run_recommend(model: Any, key: Hashable, users: list) -> list:
    _, k, exclude_seen, history = key
    answers = [answer.to_dict() for answer in model.recommend_many(users, k, exclude_seen)]
    if history:
        for answer in answers:
            answer["history"] = _history(model, answer["user"], history)
    return answers


def _history(model: Any, user: str, limit: int) -> list[dict]:
    rows = model.history(user)[:limit]
    titles = model.item_titles([item for item, _ in rows])
    entries = [{"item": item, "rating": rating} for item, rating in rows]
    return entries if titles is None else [{**entry, "title": title} for entry, title in zip(entries, titles)]


def _prepare_score(model: Any, request: ScoreRequest) -> tuple[Hashable, list]:
    if request.unknown_items == "error":
        for user, item in request.pairs:
            if model.train.item_index(item) is None:
                raise UnknownKey(f"unknown item {item!r} (the model knows {model.train.n_items:,} items); send "
                                 '"unknown_items": "nan" to score it null instead')
    return ("score",), [tuple(pair) for pair in request.pairs]


def _run_score(model: Any, key: Hashable, pairs: list) -> list:
    users, items = [p[0] for p in pairs], [p[1] for p in pairs]
    result = model.score(users, items, unknown_items="nan")
    source = ["model"] * len(pairs)
    for row in result.popularity_rows.tolist():
        source[row] = "popularity"
    for row in result.unknown_item_rows.tolist():
        source[row] = "unknown_item"
    return [{"user": u, "item": i, "score": None if s != s else s, "source": src}
            for u, i, s, src in zip(users, items, result.scores.tolist(), source)]


@adapter
class RecommenderAdapter(Adapter):
    """A folder from `nlprec rec train` (mf, autorec, neumf): /recommend and /score."""

    kind = "recommender"
    prefix = "/v1/rec"
    formats = ("nlprec-recommender-v1",)
    operations = (
        Operation("recommend", "/recommend", RecommendRequest, RecommendResponse, "users", _prepare_recommend,
                  _run_recommend, lambda model, request, answers: {"results": answers},
                  "The k best unseen items per user (popularity for unknown users)."),
        Operation("score", "/score", ScoreRequest, ScoreResponse, "pairs", _prepare_score, _run_score,
                  lambda model, request, answers: {"results": answers},
                  "Scores of user-item pairs: predicted rating or ranking score."),
    )

    def load(self, spec: ModelSpec, settings: ServeSettings) -> Any:
        from nlprec.tasks.recommender import Recommender

        return Recommender.load(spec.path)

    def warmup(self, model: Any) -> list[tuple[Operation, dict]]:
        user, item = model.user_ids[0], model.item_ids[0]
        return [(self.operations[0], {"users": [user], "k": 1}), (self.operations[1], {"pairs": [[user, item]]})]

    def provenance(self, model: Any) -> dict:
        return {"model": model.name, "task": model.task, "users": model.train.n_users, "items": model.train.n_items,
                "config": {key: value for key, value in model.info.items()}, "metrics": _top_metrics(model.metrics)}


def _top_metrics(metrics: dict | None) -> dict | None:
    if not metrics:
        return None
    return {key: value for key, value in metrics.items() if key in ("protocol", "metrics")}


# --- translation -------------------------------------------------------------------------------


class TranslateRequest(Request):
    texts: list[str] = Field(min_length=1, description="Sentences; one n-best list per sentence, in order.")
    beam: int = Field(5, ge=1, le=16, description="Beam width (1: greedy).")
    nbest: int = Field(1, ge=1, le=16, description="Hypotheses per sentence, <= beam.")
    alpha: float = Field(0.6, ge=0, le=5, allow_inf_nan=False, description="GNMT length-penalty exponent.")
    attention: bool = Field(False, description="Also return each hypothesis's cross-attention (last decoder "
                                               "layer, mean over heads).")


class Attention(BaseModel):
    source: list[str]  # source pieces
    target: list[str]  # output pieces, then "</s>"
    weights: list[list[float]]  # (len(target), len(source)); each row sums to 1


class Hypothesis(BaseModel):
    text: str
    score: float
    attention: Attention | None = Field(None, description="Only when asked; null for an empty sentence.")


class TranslateResponse(BaseModel):
    results: list[list[Hypothesis]]


def _prepare_translate(model: Any, request: TranslateRequest) -> tuple[Hashable, list]:
    if request.nbest > request.beam:
        raise NlprecError(f"nbest: {request.nbest} is more than beam ({request.beam}); expected nbest <= beam")
    return ("translate", request.beam, request.nbest, request.alpha, request.attention), list(request.texts)


def _run_translate(model: Any, key: Hashable, texts: list) -> list:
    _, beam, nbest, alpha, attention = key
    nbests = model.translate(texts, beam=beam, nbest=nbest, alpha=alpha, batch_size=max(1, len(texts)))
    answers = [[{"text": h.text, "score": h.score} for h in hypotheses] for hypotheses in nbests]
    if attention:
        _add_attention(model, texts, nbests, answers)
    return answers


def _add_attention(model: Any, texts: list, nbests: list, answers: list) -> None:
    """Each hypothesis's cross-attention, all in one batched decoder pass (None for a sentence
    without source pieces)."""
    has_source = [bool(ids) for ids in model.tokenizer.source.encode(texts)]
    entries = []
    for text, known, hypotheses, answer in zip(texts, has_source, nbests, answers):
        for hypothesis, entry in zip(hypotheses, answer):
            entry["attention"] = None
            if known:
                entries.append((text, hypothesis.tokens, entry))
    if not entries:
        return
    found = model.attention_of_many([text for text, _, _ in entries], [tokens for _, tokens, _ in entries])
    for (_, _, entry), (source, target, weights) in zip(entries, found):  # weights (T, S)
        entry["attention"] = {"source": source, "target": target, "weights": weights.astype(float).round(6).tolist()}


@adapter
class TranslationAdapter(Adapter):
    """A folder from `nlprec translate train`: POST /v1/translate/{name}."""

    kind = "translation"
    prefix = "/v1/translate"
    formats = ("nlprec-translation-v1",)
    operations = (
        Operation("translate", "", TranslateRequest, TranslateResponse, "texts", _prepare_translate, _run_translate,
                  lambda model, request, answers: {"results": answers},
                  "n-best translations of each sentence (one batched beam search per batch)."),
    )

    def load(self, spec: ModelSpec, settings: ServeSettings) -> Any:
        from nlprec.tasks.translate import Translator

        return Translator.load(spec.path)

    def warmup(self, model: Any) -> list[tuple[Operation, dict]]:
        return [(self.operations[0], {"texts": ["warm up"], "beam": 2})]

    def provenance(self, model: Any) -> dict:
        config = model.config
        return {key: config.get(key) for key in ("arch", "model_config", "seed", "data_sha256", "pairs",
                                                 "nlprec_version", "train_pairs")}


# --- text classifiers --------------------------------------------------------------------------


class ClassifyRequest(Request):
    texts: list[str] = Field(min_length=1, description="Texts; one prediction per text, in order.")


class Prediction(BaseModel):
    label: str
    probability: float
    probabilities: dict[str, float]


class ClassifyResponse(BaseModel):
    classes: list[str]
    predictions: list[Prediction]


def _prepare_classify(model: Any, request: ClassifyRequest) -> tuple[Hashable, list]:
    """The batch key holds the request's longest encoded text: a CNN's max-pool sees the padding,
    so a text's probabilities depend on how far its batch is padded. Requests merge only with
    others padded to the same length, and each answer is the one it gets alone."""
    for position, text in enumerate(request.texts):
        if not text.strip():
            raise NlprecError(f"texts.{position}: the text is empty; expected words to classify")
    padded = int(model.encoder.encode(list(request.texts)).lengths.max())
    return ("classify", padded), list(request.texts)


def _run_classify(model: Any, key: Hashable, texts: list) -> list:
    proba = model.predict_proba(texts, batch_size=max(1, len(texts)))  # (N, C)
    classes = model.classes
    return [{"label": classes[int(row.argmax())], "probability": float(row.max()),
             "probabilities": {name: float(p) for name, p in zip(classes, row)}} for row in proba]


@adapter
class ClassifierAdapter(Adapter):
    """A folder from `nlprec classify train` (textcnn, birnn): POST /v1/classify/{name}."""

    kind = "classifier"
    prefix = "/v1/classify"
    formats = ("nlprec-classifier-v1",)
    operations = (
        Operation("classify", "", ClassifyRequest, ClassifyResponse, "texts", _prepare_classify, _run_classify,
                  lambda model, request, answers: {"classes": model.classes, "predictions": answers},
                  "The most probable class of each text, with every class's probability."),
    )

    def load(self, spec: ModelSpec, settings: ServeSettings) -> Any:
        from nlprec.tasks.classify import Classifier

        return Classifier.load(spec.path)

    def warmup(self, model: Any) -> list[tuple[Operation, dict]]:
        return [(self.operations[0], {"texts": ["warm up"]})]

    def provenance(self, model: Any) -> dict:
        config = model.config
        return {"classes": model.classes, **{key: config.get(key) for key in (
            "model", "registry_name", "model_config", "seed", "data_sha256", "nlprec_version")}}


# --- BERT fill-mask ----------------------------------------------------------------------------


class FillMaskRequest(Request):
    texts: list[str] = Field(min_length=1, description="Texts with [MASK] where a piece is to be guessed.")
    k: int = Field(5, ge=1, description="Guesses per [MASK].")


class MaskGuess(BaseModel):
    piece: str
    id: int
    probability: float


class Filled(BaseModel):
    text: str
    filled: str
    masks: list[list[MaskGuess]]


class FillMaskResponse(BaseModel):
    results: list[Filled]


def _prepare_fill(model: Any, request: FillMaskRequest) -> tuple[Hashable, list]:
    from nlprec.data.bert_data import MASK_PIECE

    for position, text in enumerate(request.texts):
        try:
            ids = model.encode(text)
        except NlprecError as err:
            raise NlprecError(f"texts.{position}: {err}") from None
        if model.mask_id not in ids:  # the folder's own id: 6 in nlprec's sentencepiece, 103 in BERT's WordPiece
            raise NlprecError(f"texts.{position}: no {MASK_PIECE}; write {MASK_PIECE} where a piece is to be guessed")
    return ("fill", request.k), list(request.texts)


def _run_fill(model: Any, key: Hashable, texts: list) -> list:
    guesses = model.fill(texts, key[1])
    return [{"text": text, "filled": model.filled_text(text, masks),
             "masks": [[{"piece": g.piece, "id": g.token_id, "probability": g.probability} for g in mask]
                       for mask in masks]} for text, masks in zip(texts, guesses)]


@adapter
class FillMaskAdapter(Adapter):
    """A BERT folder (`nlprec bert pretrain` or `nlprec bert import`): POST /v1/fill-mask/{name}, and
    sentence vectors at POST /v1/embeddings (OpenAI's API, nlprec.serve.openai_embeddings)."""

    kind = "bert"
    prefix = "/v1/fill-mask"
    formats = ("nlprec-bert-v1",)
    operations = (
        Operation("fill", "", FillMaskRequest, FillMaskResponse, "texts", _prepare_fill, _run_fill,
                  lambda model, request, answers: {"results": answers},
                  "The k most probable pieces for every [MASK] of each text."),
        Operation("embed", openai_embeddings.ROUTE, openai_embeddings.EmbeddingsRequest,
                  openai_embeddings.EmbeddingsResponse, "input", openai_embeddings.prepare,
                  openai_embeddings.run_batch, None,
                  "Sentence vectors (the model's own pooling), length-sorted under a token budget.", own_route=True),
    )

    def load(self, spec: ModelSpec, settings: ServeSettings) -> Any:
        from nlprec.tasks.bert import PretrainedBert

        return PretrainedBert.load(spec.path)

    def warmup(self, model: Any) -> list[tuple[Operation, dict]]:
        return [(self.operations[0], {"texts": ["a [MASK] b"], "k": 1}),
                (self.operations[1], {"model": "warm-up", "input": ["warm up", "a longer text to warm up with"]})]

    def provenance(self, model: Any) -> dict:
        config = model.config
        keys = ("model_config", "seed", "data_sha256", "heldout", "nlprec_version")
        return {**{key: config.get(key) for key in keys},
                "embedding": {"pooling": model.pooling, "normalize": model.normalize, "dimensions": model.dimensions,
                              "max_tokens": model.max_tokens}}
