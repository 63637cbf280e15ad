"""`nlprec serve`: answer HTTP requests with trained models (nlprec.serve; needs the `serve` extra).

Every model is loaded, checked and warmed before the port opens, so a bad --model stops
start-up with one error line and exit status 2.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer


def serve(
    model: Annotated[list[str], typer.Option(
        "--model", "-m", help="NAME=PATH (repeatable): a vectors file (.npz, .bin, .vec, .txt) or a model folder "
                              "(nlprec rec train, nlprec translate train); its kind is read from what it holds.",
        show_default=False)],
    host: Annotated[str, typer.Option(help="Address to listen on (0.0.0.0: every interface).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="TCP port.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="uvicorn worker processes (memory-mapped vectors are "
                                                     "shared between them).")] = 1,
    max_batch: Annotated[int, typer.Option(min=1, help="Most items merged into one model call.")] = 64,
    max_batch_tokens: Annotated[int, typer.Option(min=1, help="/v1/embeddings: most padded pieces per BERT "
                                                                 "forward pass (inputs sorted by length).")] = 1024,
    max_wait_ms: Annotated[float, typer.Option(min=0, help="Longest wait for a batch to fill.")] = 2.0,
    max_queue: Annotated[int, typer.Option(min=1, help="Requests waiting per model before 429.")] = 256,
    timeout: Annotated[float, typer.Option(min=0.001, help="Seconds per request before 504.")] = 30.0,
    max_body_bytes: Annotated[int, typer.Option(min=1, help="Largest request body before 413.")] = 1 << 20,
    max_items: Annotated[int, typer.Option(min=1, help="Most words/users/pairs/texts per request.")] = 256,
    max_text_chars: Annotated[int, typer.Option(min=1, help="Longest text to translate.")] = 4000,
    max_k: Annotated[int, typer.Option(min=1, help="Largest k (neighbours, items).")] = 1000,
    index: Annotated[Optional[list[str]], typer.Option(
        help="NAME=KIND (repeatable): search embeddings NAME with a FAISS flat (exact, default), ivf or hnsw "
             "index, built once per host into the cache folder.", show_default=False)] = None,
    cache_dir: Annotated[Optional[Path], typer.Option(
        help="Folder for the FAISS indexes of served vectors (default $NLPREC_CACHE/serve).")] = None,
    api_key_file: Annotated[Optional[Path], typer.Option(
        help="File whose first line is the bearer API key (else $NLPREC_API_KEY; neither: no key).")] = None,
    cors_origin: Annotated[Optional[list[str]], typer.Option(
        help="Origin allowed by CORS (repeatable); none: CORS off.", show_default=False)] = None,
    threads: Annotated[int, typer.Option(min=0, help="torch CPU threads per worker (0: torch's default).")] = 0,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
    root_path: Annotated[str, typer.Option(
        help="The path prefix a reverse proxy serves this app under and strips, e.g. /nlp: the page and /docs "
             "build their URLs from it.")] = "",
) -> None:
    """Serve models over HTTP: /v1/embeddings/NAME/similar|analogy, /v1/rec/NAME/recommend|score,
    /v1/translate/NAME, /v1/fill-mask/NAME, POST /v1/embeddings (OpenAI's API, BERT folders), /v1/models,
    /healthz, /readyz, /metrics, /docs; a page for people at /. SIGHUP reloads."""
    import importlib.util
    import logging
    import multiprocessing
    import os
    from concurrent.futures import ProcessPoolExecutor

    from nlprec.serve.settings import ServeSettings, parse_indexes, parse_model, read_api_key

    from nlprec.errors import NlprecError

    indexes = parse_indexes(index or [])
    specs = tuple(parse_model(text, indexes) for text in model)
    unknown = sorted(set(indexes) - {spec.name for spec in specs})
    if unknown:
        raise NlprecError(f"--index {unknown[0]}=...: no --model named {unknown[0]!r}")
    if root_path and (not root_path.startswith("/") or root_path.endswith("/")):
        raise NlprecError(f"--root-path {root_path!r}: expected a path like /nlp (a leading '/', none at the end)")
    settings = ServeSettings(models=specs, max_batch=max_batch, max_batch_tokens=max_batch_tokens,
                             max_wait_ms=max_wait_ms, max_queue=max_queue,
                             timeout_s=timeout, max_body_bytes=max_body_bytes, max_items=max_items,
                             max_text_chars=max_text_chars, max_k=max_k, api_key=read_api_key(
                                 str(api_key_file) if api_key_file else None),
                             cors_origins=tuple(cors_origin or ()), cache_dir=str(cache_dir) if cache_dir else None,
                             threads=threads)
    missing = [name for name in ("fastapi", "uvicorn", "prometheus_client") if importlib.util.find_spec(name) is None]
    if missing:
        raise NlprecError(f"nlprec serve needs the serve extra ({missing[0]} is missing): pip install 'nlprec[serve]'")
    import uvicorn
    logging.basicConfig(level=getattr(logging, log_level.upper(), logging.INFO), format="%(message)s")
    logging.getLogger("faiss.loader").setLevel(logging.WARNING)  # which SIMD build it found, at INFO
    if workers == 1:
        from nlprec.serve.app import create_app, load_models

        models = load_models(settings)  # every model checked before the port opens
        config = uvicorn.Config(create_app(settings, models), host=host, port=port, access_log=False,
                                log_level=log_level, timeout_graceful_shutdown=10, root_path=root_path)
        uvicorn.Server(config).run()
        return
    from nlprec.serve.settings import SETTINGS_ENV

    # Checked in a child process that exits: the supervisor never holds a model nor imports the app.
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        problem = pool.submit(_check_models, settings.to_json()).result()
    if problem:
        raise NlprecError(problem)
    os.environ[SETTINGS_ENV] = settings.to_json()
    uvicorn.run("nlprec.serve.app:app_from_env", factory=True, host=host, port=port, workers=workers,
                access_log=False, log_level=log_level, timeout_worker_healthcheck=600, root_path=root_path,
                timeout_graceful_shutdown=10)


def _check_models(settings_json: str) -> str | None:
    """Load and warm every model once, in the child process `serve` starts before `--workers N`
    (so the supervisor stays small): the one-line error of the first that fails, or None."""
    from nlprec.errors import NlprecError
    from nlprec.serve.app import load_models
    from nlprec.serve.settings import ServeSettings

    try:
        load_models(ServeSettings.from_json(settings_json))
    except NlprecError as err:
        return str(err)
    return None
