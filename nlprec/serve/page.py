"""The browser side of `nlprec serve`: the model page at `/` and the API docs, all from package files.

- `/`: one HTML page (nlprec/serve/static/: HTML, CSS and a small script, no build step) that
  lists the served models with their provenance and has a form per kind. Every form calls the
  same JSON routes that clients call and shows their `{"error": ...}` line as it is.
- `/docs` (Swagger UI): its JavaScript and CSS come from the `fastapi-offline` package's files
  (the `serve` extra), served under /docs-assets, never from a CDN, so the docs render on a
  machine without internet access. ReDoc is off: its page loads its logo from cdn.redoc.ly.

Behind a path prefix (`nlprec serve --root-path /nlp`, the proxy strips it) every URL is built
from the request's root path: the page carries it as its `<base href>` and uses relative URLs.
"""

from __future__ import annotations

import html
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

STATIC = Path(__file__).parent / "static"
PAGE_ASSETS = "/static"
DOCS_ASSETS = "/docs-assets"
# The page may load only what the server itself serves; the JSON answers are fetched from it too.
PAGE_POLICY = ("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
               "connect-src 'self'; base-uri 'self'; form-action 'none'; frame-ancestors 'self'")


def docs_assets() -> Path:
    """The folder of Swagger UI's files, from the fastapi-offline package."""
    try:
        import fastapi_offline
    except ImportError:
        from nlprec.errors import NlprecError

        raise NlprecError("nlprec serve's /docs needs fastapi-offline (the serve extra): "
                          "pip install 'nlprec[serve]'") from None
    return Path(fastapi_offline.__file__).parent / "static"


def add_page_routes(app: FastAPI) -> None:
    """GET / (the model page), /static/*, /docs, /docs/oauth2-redirect and /docs-assets/*.
    `app` must be built with docs_url=None and redoc_url=None."""
    app.mount(PAGE_ASSETS, StaticFiles(directory=STATIC), name="page-assets")
    app.mount(DOCS_ASSETS, StaticFiles(directory=docs_assets()), name="docs-assets")
    template = (STATIC / "index.html").read_text(encoding="utf-8")

    @app.get("/", include_in_schema=False)
    async def page(request: Request) -> HTMLResponse:
        base = html.escape(f"{_root(request)}/", quote=True)
        return HTMLResponse(template.replace("__BASE_HREF__", base),
                            headers={"Content-Security-Policy": PAGE_POLICY, "Cache-Control": "no-cache"})

    @app.get("/docs", include_in_schema=False)
    async def swagger(request: Request) -> HTMLResponse:
        root = _root(request)
        return get_swagger_ui_html(openapi_url=f"{root}{app.openapi_url}", title=f"{app.title} - API docs",
                                   oauth2_redirect_url=f"{root}/docs/oauth2-redirect",
                                   swagger_js_url=f"{root}{DOCS_ASSETS}/swagger-ui-bundle.js",
                                   swagger_css_url=f"{root}{DOCS_ASSETS}/swagger-ui.css",
                                   swagger_favicon_url=f"{root}{DOCS_ASSETS}/favicon.png",
                                   swagger_ui_parameters={"validatorUrl": None})  # no badge from swagger.io

    @app.get("/docs/oauth2-redirect", include_in_schema=False)
    async def swagger_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()


def _root(request: Request) -> str:
    return str(request.scope.get("root_path") or "").rstrip("/")
