"""POST /v1/embeddings: OpenAI's embeddings API over the served BERT folders.

The request and answer follow OpenAI's API, so its clients (the `openai` package, LangChain's
OpenAIEmbeddings with check_embedding_ctx_length=False, ...) work unchanged:

    {"model": NAME, "input": "text" | ["text", ...], "encoding_format": "float" | "base64",
     "dimensions": D, "user": "...", "truncate": false}
 -> {"object": "list", "data": [{"object": "embedding", "index": i, "embedding": [...] | "base64"}],
     "model": NAME, "usage": {"prompt_tokens": n, "total_tokens": n}}

`model` is a name given with `--model NAME=FOLDER` for a BERT folder; vectors are the model's own
pooling and normalisation (`PretrainedBert.embed`). `dimensions` keeps the first D components (and
L2-normalises them again when the model normalises); above the model's width it is refused.
`base64` is the little-endian float32 bytes of each vector, as OpenAI's client decodes them.
`truncate` (TEI's name; not in OpenAI's API) cuts inputs longer than the model's max_tokens
([CLS] and [SEP] included) instead of refusing them with 422. Token-id arrays (OpenAI's other
input form) are refused with 400: they would be ids of OpenAI's tokenizer, not the model's.
`usage` counts the pieces the model saw, [CLS] and [SEP] included.

Batching: each request is tokenized off the event loop, then its id lists go to the model's
batcher (nlprec.serve.batcher, the one thread that runs that model, shared with fill-mask),
which merges concurrent requests; `run_batch` sorts the merged inputs by length and cuts them
into forward passes of at most `--max-batch-tokens` padded pieces (text-embeddings-inference's
--max-batch-tokens) where padding costs less than another pass (nlprec.data.batching.plan_passes,
also the planner of `nlprec bert embed`), so short inputs are not padded to long ones and the
weights are not read once per input. A pass runs its linear layers over the real tokens only
(`PretrainedBert.embed_ids`), so padding costs attention alone.

Errors on this route are OpenAI's shape, {"error": {"message", "type", "param", "code"}}:
400 a body that breaks the schema (bad JSON, a wrong type, an unknown field, an empty text,
token ids, `dimensions` above the width), 401 no or a wrong API key, 404 an unknown model or one
that is not a BERT, 413 a body over --max-body-bytes, 422 an input over max_tokens without
`truncate`, or more inputs than --max-items, 429 the queue full (Retry-After), 504 the request
timeout. Nothing here computes vectors: that is `PretrainedBert.embed_ids`.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from typing import Any, Callable, Hashable, Literal, Sequence, Union

import numpy as np
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr

from nlprec.data.batching import inference_passes
from nlprec.errors import NlprecError
from nlprec.serve.batcher import QueueFull, Retired

ROUTE = "/v1/embeddings"
KIND = "bert"  # the adapter kind whose models this route serves (nlprec.serve.adapters.FillMaskAdapter)
DEFAULT_BATCH_TOKENS = 1024  # padded pieces per forward pass: the CPU pass size of nlprec.tasks.bert.BATCH_TOKENS
_OFF_LOOP_CHARS = 2048  # requests with more characters than this are tokenized on a thread
_OFF_LOOP_FLOATS = 16384  # answers with more numbers than this are written on a thread

ERROR_TYPES = {400: "invalid_request_error", 401: "invalid_request_error", 404: "invalid_request_error",
               413: "invalid_request_error", 422: "invalid_request_error", 429: "rate_limit_error",
               500: "server_error", 503: "server_error", 504: "timeout_error"}
ERROR_CODES = {401: "invalid_api_key", 413: "request_too_large"}  # for errors raised before the route (app.Guard)


# --- the schema ----------------------------------------------------------------------------------


class EmbeddingsRequest(BaseModel):
    """OpenAI's embeddings request, plus TEI's `truncate`; unknown fields are a 400."""

    model_config = ConfigDict(extra="forbid")

    model: StrictStr = Field(description="A served BERT folder's name (--model NAME=FOLDER).")
    input: Union[StrictStr, list[StrictStr], list[StrictInt], list[list[StrictInt]]] = Field(
        description="A text or a list of texts (token-id arrays are refused: they would be another "
                    "tokenizer's ids).")
    encoding_format: Literal["float", "base64"] = Field(
        "float", description="float: a JSON list; base64: the little-endian float32 bytes, base64-encoded.")
    dimensions: StrictInt | None = Field(
        None, ge=1, description="Keep the first D components (L2-normalised again when the model normalises).")
    user: StrictStr | None = Field(None, description="Accepted and ignored (OpenAI's end-user id).")
    truncate: bool = Field(False, description="Cut inputs longer than the model's max_tokens instead of a 422 "
                                              "(text-embeddings-inference's name; not in OpenAI's API).")


class Embedding(BaseModel):
    object: Literal["embedding"]
    index: int
    embedding: Union[list[float], str]


class Usage(BaseModel):
    prompt_tokens: int
    total_tokens: int


class EmbeddingsResponse(BaseModel):
    object: Literal["list"]
    data: list[Embedding]
    model: str
    usage: Usage


class OpenAIError(Exception):
    """An answer other than 200 on this route, written in OpenAI's error shape."""

    def __init__(self, status: int, message: str, param: str | None = None, code: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.param, self.code, self.headers = status, message, param, code, headers or {}


def error_response(status: int, message: str, param: str | None = None, code: str | None = None,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    """{"error": {"message", "type", "param", "code"}} with `status` (OpenAI's error shape)."""
    kind = ERROR_TYPES.get(status, "invalid_request_error" if status < 500 else "server_error")
    code = code if code is not None else ERROR_CODES.get(status)
    return JSONResponse({"error": {"message": message, "type": kind, "param": param, "code": code}},
                        status_code=status, headers=headers)


# --- the model side: the batched function the model's thread runs --------------------------------


def tokenize(model: Any, texts: Sequence[str], truncate: bool) -> list[list[int]]:
    """Piece ids of each text ([CLS] ... [SEP]); over max_tokens without `truncate`: NlprecError."""
    return model.tokenize(list(texts), truncate=truncate)


def prepare(model: Any, request: EmbeddingsRequest) -> tuple[Hashable, list]:
    """The batch key and items (id lists) of a request, with the default token budget (warm-up)."""
    return ("embed", DEFAULT_BATCH_TOKENS), tokenize(model, texts_of(request), request.truncate)


def run_batch(model: Any, key: Hashable, items: list) -> list[np.ndarray]:
    """Vectors of the id lists of many requests: sorted by length, cut into forward passes by
    `inference_passes` (at most key[1] padded pieces each), answered in the order given."""
    vectors = np.empty((len(items), model.dimensions), dtype=np.float32)  # (N, d)
    for rows in inference_passes([len(ids) for ids in items], int(key[1])):
        vectors[rows] = model.embed_ids([items[row] for row in rows])  # (len(rows), d)
    return list(vectors)


def answer_bytes(name: str, vectors: np.ndarray, encoding_format: str, dimensions: int | None, normalize: bool,
                 tokens: int) -> bytes:
    """OpenAI's answer as JSON bytes: `vectors` (N, d) cut to `dimensions` (normalised again when
    the model normalises), each as a float list or base64 of little-endian float32."""
    if dimensions is not None and dimensions < vectors.shape[1]:
        vectors = vectors[:, :dimensions]  # (N, D)
        if normalize:
            norms = np.linalg.norm(vectors, axis=1, keepdims=True)  # (N, 1)
            vectors = vectors / np.maximum(norms, np.float32(1e-12))  # (N, D)
    vectors = np.ascontiguousarray(vectors, dtype="<f4")  # (N, D)
    if encoding_format == "base64":
        encoded: list[Any] = [base64.b64encode(row.tobytes()).decode("ascii") for row in vectors]
    else:
        encoded = vectors.tolist()
    data = [{"object": "embedding", "index": index, "embedding": row} for index, row in enumerate(encoded)]
    body = {"object": "list", "data": data, "model": name, "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}
    return json.dumps(body, separators=(",", ":")).encode()


def texts_of(request: EmbeddingsRequest) -> list[str]:
    """The request's texts; token ids, an empty list or an empty text are a 400 naming the input."""
    given = request.input
    if isinstance(given, str):
        given = [given]
    if not given:
        raise OpenAIError(400, "input: the list is empty; expected a text or a list of texts", "input")
    if not all(isinstance(text, str) for text in given):
        raise OpenAIError(400, "input: token-id arrays are not accepted (they would be ids of another tokenizer); "
                               "send the texts (LangChain: OpenAIEmbeddings(check_embedding_ctx_length=False))",
                          "input", "token_ids_not_supported")
    for position, text in enumerate(given):
        if not text:
            raise OpenAIError(400, f"input.{position}: the text is empty; expected a non-empty string",
                              f"input.{position}")
    return list(given)


# --- the route -----------------------------------------------------------------------------------


class OpenAIRoute(APIRoute):
    """A route whose every error (the schema's included) is written in OpenAI's shape."""

    def get_route_handler(self) -> Callable:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except OpenAIError as err:
                return error_response(err.status, err.message, err.param, err.code, err.headers)
            except RequestValidationError as err:
                message, param = describe_validation(err.errors())
                return error_response(400, message, param)

        return handle


def describe_validation(errors: Sequence[dict]) -> tuple[str, str | None]:
    """The first schema error as one line and its field: ("dimensions: Input should be ...", "dimensions")."""
    error = errors[0] if errors else {}
    if error.get("type") == "json_invalid":
        reason = (error.get("ctx") or {}).get("error", "")
        return f"the body is not valid JSON{f' ({reason})' if reason else ''}; expected a JSON object", None
    location = [str(part) for part in error.get("loc", ()) if part != "body"]
    # A union's branches ("input.str", "input.list[str].0") add their type names: keep the field path.
    where = ".".join(part for part in location if not any(ch in part for ch in "[]") and part not in
                     ("str", "int", "bool", "function-after", "list"))
    field = where.split(".")[0] if where else None
    message = f"{where or 'body'}: {error.get('msg', 'invalid')}"
    if error.get("type") == "extra_forbidden":
        message = f"{where}: unrecognized request argument (expected model, input, encoding_format, dimensions, " \
                  "user, truncate)"
    return message, field


def add_route(app: FastAPI, state: Any) -> None:
    """Mount POST /v1/embeddings on `app`, answering from `state.models` (nlprec.serve.app.ServerState)."""

    async def create_embeddings(body: EmbeddingsRequest) -> Response:
        started = time.perf_counter()
        settings = state.settings
        texts = texts_of(body)
        if len(texts) > settings.max_items:
            raise OpenAIError(422, f"input: {len(texts):,} texts, over the limit of {settings.max_items:,} per "
                                   "request; split the request", "input", "too_many_inputs")
        while True:  # once more if a reload replaced the model while this request waited
            served = served_bert(state, body.model)
            model = served.model
            if body.dimensions is not None and body.dimensions > model.dimensions:
                raise OpenAIError(400, f"dimensions: {body.dimensions} is more than model {body.model!r}'s width "
                                       f"{model.dimensions}; expected 1..{model.dimensions}", "dimensions")
            ids = await off_loop(sum(map(len, texts)) > _OFF_LOOP_CHARS, tokenize_request, model, texts, body.truncate)
            deadline = asyncio.get_running_loop().time() + settings.timeout_s - (time.perf_counter() - started)
            try:
                vectors = await served.batcher.submit(("embed", settings.max_batch_tokens), ids, deadline)
            except Retired:
                continue
            except QueueFull as err:
                raise OpenAIError(429, str(err), None, "rate_limit_exceeded",
                                  {"Retry-After": str(err.retry_after)}) from None
            except TimeoutError:
                raise OpenAIError(504, f"no answer from model {body.model!r} within the {settings.timeout_s:g} s "
                                       "request timeout", None, "timeout") from None
            break
        tokens = sum(map(len, ids))
        content = await off_loop(len(vectors) * model.dimensions > _OFF_LOOP_FLOATS, answer_bytes, body.model,
                                 np.stack(vectors), body.encoding_format, body.dimensions, model.normalize, tokens)
        return Response(content, media_type="application/json")

    app.router.add_api_route(
        ROUTE, create_embeddings, methods=["POST"], response_model=EmbeddingsResponse, tags=["bert"],
        route_class_override=OpenAIRoute, name="openai_embeddings",
        summary="OpenAI's embeddings API: sentence vectors from a served BERT folder (its own pooling).",
        responses={code: {"description": text} for code, text in (
            (400, "bad request (OpenAI's error shape)"), (401, "missing or wrong API key"),
            (404, "unknown model, or not a BERT"), (413, "body too large"),
            (422, "an input over the model's max_tokens (send truncate: true), or too many inputs"),
            (429, "queue full (Retry-After)"), (504, "timeout"))})


async def off_loop(heavy: bool, function: Callable, *args: Any) -> Any:
    """`function(*args)`, on a thread when `heavy` (the event loop stays free), else in place."""
    return await asyncio.to_thread(function, *args) if heavy else function(*args)


def tokenize_request(model: Any, texts: list[str], truncate: bool) -> list[list[int]]:
    """`tokenize`, with an input over max_tokens as a 422 naming it and how to cut it."""
    try:
        return tokenize(model, texts, truncate)
    except NlprecError as err:
        raise OpenAIError(422, f"{err} (send \"truncate\": true to cut it to {model.max_tokens} tokens)", "input",
                          "input_too_long") from None


def served_bert(state: Any, name: str) -> Any:
    """The served BERT named `name`; 404 in OpenAI's shape for any other name."""
    served = state.models.get(name)
    if served is not None and served.adapter.kind == KIND:
        return served
    berts = sorted(n for n, s in state.models.items() if s.adapter.kind == KIND)
    offer = f"; served BERT models: {', '.join(berts)}" if berts else "; no BERT folder is served (--model NAME=FOLDER)"
    what = f"model {name!r} is a {served.adapter.kind} model, not a BERT" if served is not None else \
        f"the model {name!r} does not exist"
    raise OpenAIError(404, what + offer, "model", "model_not_found")
