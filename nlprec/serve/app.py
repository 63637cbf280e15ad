"""The FastAPI app of `nlprec serve`: routes per model kind, limits, metrics, reload.

`create_app(settings, models)` builds the app; `load_models(settings)` loads and warms every
model (run before the port opens, and again on reload). Each served model has its own
micro-batcher (nlprec.serve.batcher). Route families come from the kind adapters
(nlprec.serve.adapters): POST {prefix}/{name}{operation path}, e.g. /v1/embeddings/words/similar.

Limits, in the order a request meets them: body size (413), API key (401), the JSON schema
(422), items per request, k and text length (422 naming the field and the limit), unknown
words/users/items (404 with suggestions), the model's queue (429 + Retry-After), the
per-request timeout (504). Every error body is {"error": "<one line>"}. /healthz, /readyz and
/metrics are open and outside the limits.

Reload (SIGHUP, or POST /admin/reload): every model is loaded and warmed again in a thread
while the old ones keep answering; only when all succeed are they swapped in (the old
batchers finish their queues first). A failure keeps every old model and says why. Under
`--workers N` the route asks uvicorn's supervisor for its rolling restart instead (SIGHUP to
the parent): each new worker loads and warms before the old one stops, and a worker that fails
to start leaves the old ones serving.
"""

import asyncio
import hmac
import logging
import os
import signal
import sys
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException

from nlprec import __version__
from nlprec.errors import NlprecError
from nlprec.serve import openai_embeddings
from nlprec.serve.adapters import ADAPTERS, Adapter, Operation, UnknownKey, detect
from nlprec.serve.batcher import Batcher, QueueFull, Retired
from nlprec.serve.page import add_page_routes
from nlprec.serve.settings import SETTINGS_ENV, ModelSpec, ServeSettings

access_log = logging.getLogger("nlprec.serve.access")
log = logging.getLogger("nlprec.serve")
OPEN_PATHS = frozenset({"/healthz", "/readyz", "/metrics", "/docs", "/docs/oauth2-redirect", "/openapi.json", "/"})
OPEN_PREFIXES = ("/static/", "/docs-assets/")  # the page's and the docs' files (a browser sends no key for them)
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


class ApiError(Exception):
    """An answer other than 200, with its one-line message."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.status, self.message, self.headers, self.extra = status, message, headers or {}, extra


# --- models --------------------------------------------------------------------------------------


@dataclass
class ServedModel:
    """A loaded, warmed model with what the routes need."""

    spec: ModelSpec
    adapter: Adapter
    model: Any
    provenance: dict
    loaded_at: str
    batcher: Batcher | None = None


def load_models(settings: ServeSettings) -> dict[str, ServedModel]:
    """Load and warm every model in `settings` (blocking); the first failure raises NlprecError."""
    models = {}
    for spec in settings.models:
        kind = detect(spec.path)
        try:
            model = kind.load(spec, settings)
            _set_threads(settings.threads)
            for operation, body in kind.warmup(model):
                key, items = operation.prepare(model, operation.request(**body))
                operation.run(model, key, items)
        except NlprecError as err:
            raise NlprecError(f"--model {spec.name}={spec.path}: {err}") from None
        except Exception as err:  # noqa: BLE001 - a foreign or corrupt file: one line, not a traceback
            raise NlprecError(f"--model {spec.name}={spec.path}: cannot load it ({type(err).__name__}: "
                              f"{' '.join(str(err).split())[:200]})") from None
        models[spec.name] = ServedModel(spec, kind, model, kind.provenance(model),
                                        datetime.now(timezone.utc).isoformat(timespec="seconds"))
    return models


def _set_threads(threads: int) -> None:
    """torch's CPU threads, once a model has imported torch (vectors alone never import it)."""
    if threads and "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)


# --- metrics -----------------------------------------------------------------------------------


class Metrics:
    """The Prometheus series of one app (its own registry, so apps in one process never clash)."""

    def __init__(self) -> None:
        self.registry = registry = CollectorRegistry()
        self.requests = Counter("nlprec_requests", "HTTP requests answered", ["route", "model", "status"],
                                registry=registry)
        self.latency = Histogram("nlprec_request_seconds", "Time from request to answer", ["route", "model"],
                                 buckets=_LATENCY_BUCKETS, registry=registry)
        self.errors = Counter("nlprec_errors", "Error answers by status", ["status"], registry=registry)
        self.batch_size = Histogram("nlprec_batch_size", "Items per batched model call", ["model"],
                                    buckets=_BATCH_BUCKETS, registry=registry)
        self.batch_seconds = Histogram("nlprec_batch_seconds", "Duration of a batched model call", ["model"],
                                       buckets=_LATENCY_BUCKETS, registry=registry)
        self.queue_depth = Gauge("nlprec_queue_depth", "Requests waiting for a model call", ["model"],
                                 registry=registry)
        self.reloads = Counter("nlprec_reloads", "Model reloads by result", ["result"], registry=registry)
        self.ready = Gauge("nlprec_ready", "1 when every model is loaded and warmed", registry=registry)


# --- state -------------------------------------------------------------------------------------


@dataclass
class ServerState:
    settings: ServeSettings
    metrics: Metrics
    models: dict[str, ServedModel] = field(default_factory=dict)
    ready: bool = False
    last_reload: dict | None = None
    reload_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def install(self, models: dict[str, ServedModel]) -> dict[str, ServedModel]:
        """Give each model a started batcher and make them the served set; returns the old set."""
        settings = self.settings
        for name, served in models.items():
            operations = {op.name: op for op in served.adapter.operations}

            def run(key: Any, items: list, served: ServedModel = served, operations: dict = operations) -> list:
                return operations[key[0]].run(served.model, key, items)

            def on_batch(count: int, seconds: float, name: str = name) -> None:
                self.metrics.batch_size.labels(name).observe(count)
                self.metrics.batch_seconds.labels(name).observe(seconds)

            served.batcher = Batcher(name, run, settings.max_batch, settings.max_wait_ms, settings.max_queue, on_batch)
            served.batcher.start()
            self.metrics.queue_depth.labels(name).set_function(lambda b=served.batcher: len(b))
        old, self.models = self.models, models
        return old

    async def reload(self) -> dict:
        """Load and warm all models again; swap them in only if every one succeeded."""
        async with self.reload_lock:
            started = time.perf_counter()
            try:
                fresh = await asyncio.to_thread(load_models, self.settings)
            except Exception as err:  # noqa: BLE001 - any failure keeps the old models
                message = " ".join(str(err).split()) or type(err).__name__
                self.last_reload = {"ok": False, "error": message, "at": _now()}
                self.metrics.reloads.labels("failed").inc()
                log.error("reload failed, still serving the old models: %s", message)
                raise ApiError(500, f"reload failed, still serving the old models: {message}") from None
            old = self.install(fresh)
            for served in old.values():
                await served.batcher.close()
            self.last_reload = {"ok": True, "at": _now(), "seconds": round(time.perf_counter() - started, 3),
                                "models": sorted(fresh)}
            self.metrics.reloads.labels("ok").inc()
            log.info("reloaded %d models in %.2f s", len(fresh), time.perf_counter() - started)
            return self.last_reload


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


# --- the guard: body size, API key, access log, request metrics -------------------------------


class Guard:
    """Pure ASGI middleware around every HTTP request: 413 on an oversized body, 401 without
    the API key (health, metrics and docs open), every body read as JSON whatever its declared
    type, then one access-log line and the request metrics."""

    def __init__(self, app: Any, state: ServerState) -> None:
        self.app, self.state = app, state
        key = state.settings.api_key
        self.expected = f"Bearer {key}".encode() if key else None

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = {"code": 500, "bytes": 0}

        async def send_counted(message: dict) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            elif message["type"] == "http.response.body":
                status["bytes"] += len(message.get("body", b""))
            await send(message)

        try:
            receive = await self._admit(scope, receive)
            await self.app(scope, receive, send_counted)
        except ApiError as err:
            await _send_error(send_counted, err, _route_path(scope) == openai_embeddings.ROUTE)
        finally:
            self._record(scope, status, time.perf_counter() - started)

    async def _admit(self, scope: dict, receive: Any) -> Any:
        """Check the key and read the body within the limit; returns a receive that replays it."""
        path = _route_path(scope)
        if path in OPEN_PATHS or path.startswith(OPEN_PREFIXES) or scope["method"] == "OPTIONS":
            return receive
        if self.expected is not None:
            given = dict(scope["headers"]).get(b"authorization", b"")
            if not hmac.compare_digest(given, self.expected):
                raise ApiError(401, "missing or wrong API key: send 'Authorization: Bearer <key>'",
                               {"WWW-Authenticate": "Bearer"})
        limit = self.state.settings.max_body_bytes
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise ApiError(413, f"request body of {int(declared):,} bytes is over the limit of {limit:,} bytes")
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > limit:
                raise ApiError(413, f"request body is over the limit of {limit:,} bytes")
            if not message.get("more_body", False):
                break
        body, replayed = b"".join(chunks), False
        # Every body is JSON: `curl -d '{...}'` sends it as a form, which FastAPI would not read.
        scope["headers"] = [(k, v) for k, v in scope["headers"] if k != b"content-type"] + [
            (b"content-type", b"application/json")]

        async def replay() -> dict:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return replay

    def _record(self, scope: dict, status: dict, seconds: float) -> None:
        route = scope.get("route")
        template = getattr(route, "path", None) or "unmatched"
        model = scope.get("path_params", {}).get("name", "") if route is not None else ""
        model = model if not model or model in self.state.models else "unknown"  # bounded label values
        code = status["code"]
        metrics = self.state.metrics
        if template not in ("/metrics", "/healthz", "/readyz"):
            metrics.requests.labels(template, model, str(code)).inc()
            metrics.latency.labels(template, model).observe(seconds)
        if code >= 400:
            metrics.errors.labels(str(code)).inc()
        client = scope.get("client") or ("-", 0)
        access_log.info('%s "%s %s" %d %dB %.1fms', client[0], scope["method"], scope["path"], code,
                        status["bytes"], seconds * 1000)


def _route_path(scope: dict) -> str:
    """The path without the root path (--root-path) that uvicorn puts in front of it."""
    path, root = scope["path"], scope.get("root_path", "")
    return (path[len(root):] or "/") if root and path.startswith(root) else path


async def _send_error(send: Any, err: ApiError, openai_shape: bool = False) -> None:
    """The error answer; on POST /v1/embeddings in OpenAI's shape, as the rest of that route."""
    response = (openai_embeddings.error_response(err.status, err.message, headers=err.headers) if openai_shape
                else _error_response(err))
    await send({"type": "http.response.start", "status": response.status_code, "headers": response.raw_headers})
    await send({"type": "http.response.body", "body": response.body})


def _error_response(err: ApiError) -> JSONResponse:
    return JSONResponse({"error": err.message, **err.extra}, status_code=err.status, headers=err.headers)


# --- the app -----------------------------------------------------------------------------------


def create_app(settings: ServeSettings, models: dict[str, ServedModel] | None = None) -> FastAPI:
    """The app serving `settings.models`; `models` preloaded by `load_models`, else loaded at start-up."""
    state = ServerState(settings, Metrics())

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        loaded = models if models is not None else await asyncio.to_thread(load_models, settings)
        state.install(loaded)
        state.ready = True
        state.metrics.ready.set(1)
        loop = asyncio.get_running_loop()
        try:
            loop.add_signal_handler(signal.SIGHUP, lambda: loop.create_task(_reload_logged(state)))
        except (ValueError, RuntimeError, NotImplementedError):  # not the main thread, or no SIGHUP
            pass
        yield
        state.ready = False
        state.metrics.ready.set(0)
        for served in state.models.values():
            await served.batcher.close()

    app = FastAPI(title="nlprec serve", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="Word vectors, recommenders and translators behind one HTTP API; errors are "
                              '{"error": "..."}; send `Authorization: Bearer <key>` when the server has a key.')
    app.state.nlprec = state
    _add_error_handlers(app)
    _add_service_routes(app, state)
    add_page_routes(app)  # / and /docs from package files (nlprec.serve.page)
    for kind in ADAPTERS:
        for operation in kind.operations:
            if not operation.own_route:
                _add_operation(app, state, kind, operation)
    openai_embeddings.add_route(app, state)  # POST /v1/embeddings: OpenAI's API over the BERT folders
    app.add_middleware(Guard, state=state)
    if settings.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=list(settings.cors_origins), allow_methods=["GET", "POST"],
                           allow_headers=["Authorization", "Content-Type"])
    return app


def app_from_env() -> FastAPI:
    """uvicorn's factory for `--workers N`: the settings come as JSON in $NLPREC_SERVE_SETTINGS."""
    return create_app(ServeSettings.from_json(os.environ[SETTINGS_ENV]))


async def _reload_logged(state: ServerState) -> None:
    try:
        await state.reload()
    except ApiError:
        pass  # logged, and kept in state.last_reload


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(request: Request, err: ApiError) -> JSONResponse:
        return _error_response(err)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, err: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"error": str(err.detail)}, status_code=err.status_code, headers=err.headers)

    @app.exception_handler(RequestValidationError)
    async def schema_error(request: Request, err: RequestValidationError) -> JSONResponse:
        return JSONResponse({"error": _describe_validation(err.errors())}, status_code=422)

    @app.exception_handler(Exception)
    async def internal_error(request: Request, err: Exception) -> JSONResponse:
        log.exception("internal error on %s", request.url.path)
        return JSONResponse({"error": f"internal error ({type(err).__name__}); see the server log"}, status_code=500)


def _describe_validation(errors: list[dict]) -> str:
    """Up to three schema errors on one line: 'words.0: Input should be a valid string'."""
    parts = []
    for error in errors[:3]:
        where = ".".join(str(part) for part in error.get("loc", ()) if part != "body") or "body"
        parts.append(f"{where}: {error.get('msg', 'invalid')}")
    more = f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
    return "; ".join(parts) + more


def _add_service_routes(app: FastAPI, state: ServerState) -> None:
    @app.get("/healthz", summary="Liveness: the process answers.")
    async def healthz() -> dict:
        return {"status": "ok"}

    @app.get("/readyz", summary="Readiness: every model loaded and warmed (503 before).")
    async def readyz() -> JSONResponse:
        if not state.ready:
            return JSONResponse({"error": "not ready: models are loading or the server is stopping"},
                                status_code=503)
        return JSONResponse({"status": "ready", "models": sorted(state.models)})

    @app.get("/metrics", summary="Prometheus metrics.")
    async def metrics() -> Response:
        return Response(generate_latest(state.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/v1/models", summary="The served models: name, kind, routes, provenance.")
    async def list_models() -> dict:
        return {"models": [_describe_model(served) for served in state.models.values()],
                "last_reload": state.last_reload}

    @app.post("/admin/reload", summary="Reload every model without downtime (behind the API key).")
    async def reload() -> JSONResponse:
        if os.environ.get(SETTINGS_ENV) and os.getppid() > 1 and _is_uvicorn_worker():
            os.kill(os.getppid(), signal.SIGHUP)
            return JSONResponse({"status": "rolling restart of the workers started; watch /v1/models"},
                                status_code=202)
        return JSONResponse({"status": "reloaded", **(await state.reload())})


def _is_uvicorn_worker() -> bool:
    import multiprocessing

    return multiprocessing.parent_process() is not None


def _describe_model(served: ServedModel) -> dict:
    kind = served.adapter
    routes = _model_routes(kind, served.spec.name)
    return {"name": served.spec.name, "kind": kind.kind, "path": served.spec.path, "routes": routes,
            "loaded_at": served.loaded_at, "provenance": served.provenance}


def _add_operation(app: FastAPI, state: ServerState, kind: Adapter, operation: Operation) -> None:
    """POST {prefix}/{name}{path}: limits, prepare (thread), batcher, answer."""
    request_model = operation.request

    async def endpoint(name: str, body: request_model) -> JSONResponse:  # type: ignore[valid-type]
        started = time.perf_counter()
        _check_limits(state.settings, operation, body)
        while True:  # once more if a reload replaced the model while this request was prepared
            served = state.models.get(name)
            if served is None or served.adapter is not kind:
                raise ApiError(404, _unknown_model(state, name, kind))
            try:
                answers = await _answer(state, served, operation, body, started)
            except Retired:
                continue
            return JSONResponse(operation.respond(served.model, body, answers))

    endpoint.__name__ = f"{kind.kind}_{operation.name}"
    app.add_api_route(f"{kind.prefix}/{{name}}{operation.path}", endpoint, methods=["POST"],
                      response_model=operation.response, summary=operation.summary, tags=[kind.kind],
                      responses={404: {"description": "unknown model, word, user or item"},
                                 413: {"description": "body too large"}, 422: {"description": "bad request"},
                                 429: {"description": "queue full (Retry-After)"}, 504: {"description": "timeout"}})


async def _answer(state: ServerState, served: ServedModel, operation: Operation, body: Any, started: float) -> list:
    """Check the request (lookups, on the loop; a slow error message, e.g. spelling suggestions,
    on a thread), then wait for its batch within the request timeout."""
    try:
        key, items = operation.prepare(served.model, body)
    except UnknownKey as err:
        raise ApiError(404, await asyncio.to_thread(err.describe)) from None
    except NlprecError as err:
        raise ApiError(422, str(err)) from None
    loop = asyncio.get_running_loop()
    deadline = loop.time() + state.settings.timeout_s - (time.perf_counter() - started)
    try:
        return await served.batcher.submit(key, items, deadline)
    except QueueFull as err:
        raise ApiError(429, str(err), {"Retry-After": str(err.retry_after)}) from None
    except TimeoutError:
        raise ApiError(504, f"no answer from model {served.spec.name!r} within the {state.settings.timeout_s:g} s "
                            "request timeout") from None
    except NlprecError as err:
        raise ApiError(422, str(err)) from None


def _model_routes(kind: Adapter, name: str) -> list[str]:
    """The paths that answer with model `name` (a route of its own names the model in the body)."""
    return [op.path if op.own_route else f"{kind.prefix}/{name}{op.path}" for op in kind.operations]


def _unknown_model(state: ServerState, name: str, kind: Adapter) -> str:
    served = state.models.get(name)
    if served is not None:
        return f"model {name!r} is a {served.adapter.kind} model, not {kind.kind}; its routes: " + ", ".join(
            _model_routes(served.adapter, name))
    same = sorted(n for n, s in state.models.items() if s.adapter is kind)
    return f"no {kind.kind} model named {name!r}" + (f"; served: {', '.join(same)}" if same else "")


def _check_limits(settings: ServeSettings, operation: Operation, body: Any) -> None:
    """Items per request, k, and text lengths, each 422 naming the field and the limit."""
    if operation.items_field:
        items = getattr(body, operation.items_field)
        if len(items) > settings.max_items:
            raise ApiError(422, f"{operation.items_field}: {len(items):,} items, over the limit of "
                                f"{settings.max_items:,} per request; split the request")
        for position, item in enumerate(items):
            if isinstance(item, str) and len(item) > settings.max_text_chars:
                raise ApiError(422, f"{operation.items_field}.{position}: {len(item):,} characters, over the limit "
                                    f"of {settings.max_text_chars:,}")
    k = getattr(body, "k", None)
    if k is not None and k > settings.max_k:
        raise ApiError(422, f"k: {k:,} is over the limit of {settings.max_k:,}")
