"""What `nlprec serve` was asked to serve and under which limits, as one frozen value.

The settings travel to uvicorn's worker processes as JSON in an environment variable
(`NLPREC_SERVE_SETTINGS`), so every worker builds the same app.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from nlprec.errors import NlprecError, require

SETTINGS_ENV = "NLPREC_SERVE_SETTINGS"
API_KEY_ENV = "NLPREC_API_KEY"
INDEX_KINDS = ("flat", "ivf", "hnsw")


@dataclass(frozen=True)
class ModelSpec:
    """One served model."""

    name: str  # the name in the routes, e.g. /v1/embeddings/{name}/similar; letters, digits, - _ .
    path: str  # the vectors file or model folder
    index: str = "flat"  # embeddings only: KIND[:option=value,...], KIND flat (exact), ivf or hnsw (see IndexConfig)


@dataclass(frozen=True)
class ServeSettings:
    """Models and limits of one server (every worker has the same)."""

    models: tuple[ModelSpec, ...] = ()  # what to serve, at least one
    max_batch: int = 64  # most items (words, users, pairs, texts) merged into one model call, >= 1
    max_batch_tokens: int = 1024  # /v1/embeddings: most padded pieces per BERT forward pass, >= 1
    max_wait_ms: float = 2.0  # longest wait for a batch to fill once a request is queued, >= 0
    max_queue: int = 256  # most requests waiting per model before 429, >= 1
    timeout_s: float = 30.0  # per-request limit from arrival to answer before 504, > 0
    max_body_bytes: int = 1 << 20  # largest request body before 413, >= 1
    max_items: int = 256  # most items in one request's list before 422, >= 1
    max_text_chars: int = 4000  # longest text (translate) before 422, >= 1
    max_k: int = 1000  # largest k (neighbours, items) before 422, >= 1
    api_key: str | None = field(default=None, repr=False)  # bearer key for every route but health/metrics
    cors_origins: tuple[str, ...] = ()  # origins allowed by CORS; empty: CORS off
    cache_dir: str | None = None  # where FAISS indexes of served vectors are kept (None: $NLPREC_CACHE/serve)
    threads: int = 0  # torch CPU threads per worker, >= 0; 0: torch's default

    def __post_init__(self) -> None:
        require([
            (len(self.models) >= 1, "nothing to serve: give at least one --model NAME=PATH"),
            (self.max_batch >= 1, f"--max-batch must be >= 1, got {self.max_batch}"),
            (self.max_batch_tokens >= 1, f"--max-batch-tokens must be >= 1, got {self.max_batch_tokens}"),
            (self.max_wait_ms >= 0, f"--max-wait-ms must be >= 0, got {self.max_wait_ms}"),
            (self.max_queue >= 1, f"--max-queue must be >= 1, got {self.max_queue}"),
            (self.timeout_s > 0, f"--timeout must be > 0 seconds, got {self.timeout_s}"),
            (self.max_body_bytes >= 1, f"--max-body-bytes must be >= 1, got {self.max_body_bytes}"),
            (self.max_items >= 1, f"--max-items must be >= 1, got {self.max_items}"),
            (self.max_text_chars >= 1, f"--max-text-chars must be >= 1, got {self.max_text_chars}"),
            (self.max_k >= 1, f"--max-k must be >= 1, got {self.max_k}"),
            (self.threads >= 0, f"--threads must be >= 0, got {self.threads}"),
        ])
        names = [spec.name for spec in self.models]
        twice = sorted({name for name in names if names.count(name) > 1})
        require([(not twice, f"--model name {twice[0]!r} is given twice: names must be unique" if twice else "")])

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "ServeSettings":
        values = json.loads(text)
        values["models"] = tuple(ModelSpec(**spec) for spec in values["models"])
        values["cors_origins"] = tuple(values["cors_origins"])
        return cls(**values)

    def index_cache(self) -> Path:
        if self.cache_dir:
            return Path(self.cache_dir)
        root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "nlprec"
        return Path(os.environ.get("NLPREC_CACHE") or root) / "serve"


def parse_model(text: str, indexes: dict[str, str] | None = None) -> ModelSpec:
    """`NAME=PATH` (from --model) as a `ModelSpec`; `indexes` maps names to --index kinds."""
    name, sep, path = text.partition("=")
    name = name.strip()
    if not sep or not name or not path:
        raise NlprecError(f"--model {text!r}: expected NAME=PATH, e.g. words=vectors.npz")
    if not all(ch.isalnum() or ch in "-_." for ch in name):
        raise NlprecError(f"--model name {name!r}: use letters, digits, '-', '_' or '.' (it goes into URLs)")
    index = (indexes or {}).get(name, "flat")
    return ModelSpec(name, path, index)


def parse_indexes(items: list[str]) -> dict[str, str]:
    """`NAME=KIND[:option=value,...]` pairs (from --index) as a dict of name -> index text, each checked."""
    out = {}
    for text in items:
        name, sep, index = text.partition("=")
        if not sep:
            raise NlprecError(f"--index {text!r}: expected NAME=KIND with KIND one of {', '.join(INDEX_KINDS)}")
        index_options(index)
        out[name.strip()] = index
    return out


def index_options(text: str) -> tuple[str, dict[str, int]]:
    """"hnsw:hnsw_m=16,ef_construction=40" as ("hnsw", {"hnsw_m": 16, "ef_construction": 40}), checked
    against `nlprec.index.IndexConfig` (kind flat, ivf or hnsw; integer options it has)."""
    from nlprec.index import IndexConfig

    kind, _, rest = text.partition(":")
    if kind not in INDEX_KINDS:
        raise NlprecError(f"--index ...={text}: expected KIND one of {', '.join(INDEX_KINDS)}, optionally "
                          "followed by :option=value,... (e.g. hnsw:ef_construction=40)")
    options: dict[str, int] = {}
    for part in filter(None, rest.split(",")):
        key, eq, value = part.partition("=")
        if not eq or not value.strip().lstrip("-").isdigit():
            raise NlprecError(f"--index ...={text}: {part!r} is not option=integer")
        options[key.strip()] = int(value)
    try:
        IndexConfig(kind=kind, **options)
    except TypeError:
        names = [n for n in IndexConfig.__dataclass_fields__ if n not in ("kind", "metric")]
        raise NlprecError(f"--index ...={text}: unknown option; options: {', '.join(names)}") from None
    return kind, options


def read_api_key(path: str | None) -> str | None:
    """The API key from --api-key-file (first line), else $NLPREC_API_KEY, else None."""
    if path:
        try:
            key = Path(path).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as err:
            raise NlprecError(f"--api-key-file {path}: cannot read it ({err.__class__.__name__})") from None
        if not key:
            raise NlprecError(f"--api-key-file {path}: the file is empty; expected the key on its first line")
        return key.splitlines()[0]
    return os.environ.get(API_KEY_ENV) or None
