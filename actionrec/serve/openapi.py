"""The API's description: OpenAPI 3.0 (``/openapi.json``), its offline Swagger UI (``/docs``),
and the one shape of every refusal, ``{"detail": one line}`` (``Error``), a request that fails
validation (422) and a bug (500) included."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel
from swagger_ui_bundle import swagger_ui_path

from .service import Refused

log = logging.getLogger(__name__)


class Error(BaseModel):
    """The body of every refusal."""

    detail: str  # one line


def errors(*statuses: int) -> dict:
    """OpenAPI ``responses`` for these statuses: each an ``Error``."""
    return {s: {"model": Error} for s in statuses}


def add_offline_docs(app: FastAPI) -> None:
    """``/docs`` from swagger-ui-bundle's files, not a CDN: they work offline. Its Swagger UI
    (4.15) reads OpenAPI 3.0, and this schema needs nothing of 3.1: pydantic's JSON Schema is
    written the 3.0 way (``openapi_30``)."""
    app.openapi_version = "3.0.3"
    generate = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is None:
            app.openapi_schema = openapi_30(generate())
        return app.openapi_schema

    app.openapi = openapi
    app.mount("/static/swagger", StaticFiles(directory=swagger_ui_path), name="swagger")

    @app.get("/docs", include_in_schema=False)
    def docs():
        return get_swagger_ui_html(openapi_url="/openapi.json", title="actionrec API",
                                   swagger_js_url="/static/swagger/swagger-ui-bundle.js",
                                   swagger_css_url="/static/swagger/swagger-ui.css",
                                   swagger_favicon_url="/static/swagger/favicon-32x32.png")


def openapi_30(node):
    """``node`` with JSON Schema's 3.1 forms rewritten as OpenAPI 3.0 has them: a numeric
    ``exclusiveMinimum``/``exclusiveMaximum`` as a bound and a flag, ``anyOf [X, null]`` as
    ``X`` with ``nullable``."""
    if isinstance(node, list):
        return [openapi_30(n) for n in node]
    if not isinstance(node, dict):
        return node
    node = {k: openapi_30(v) for k, v in node.items()}
    for exclusive, bound in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if not isinstance(node.get(exclusive, True), bool):
            node[bound], node[exclusive] = node[exclusive], True
    options = node.get("anyOf")
    if isinstance(options, list) and {"type": "null"} in options:
        rest = [o for o in options if o != {"type": "null"}]
        del node["anyOf"]
        node.update(rest[0] if len(rest) == 1 else {"anyOf": rest})
        node["nullable"] = True
    return node


def add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(Refused)
    async def refused(request: Request, e: Refused):
        return JSONResponse({"detail": e.reason}, status_code=e.status)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, e: RequestValidationError):
        return JSONResponse({"detail": "; ".join(map(_one_error, e.errors()))}, status_code=422)

    @app.exception_handler(Exception)
    async def failed(request: Request, e: Exception):  # a bug or a diverged model: 500, one line
        log.exception("%s %s failed", request.method, request.url.path)
        return JSONResponse({"detail": f"internal error ({type(e).__name__}); the server's log "
                                       f"has its details"}, status_code=500)


def _one_error(error: dict) -> str:
    """``query parameter 'window': Input should be ... (got 'inf')``."""
    where, *name = error.get("loc", ())
    given = f" (got {error['input']!r})" if isinstance(error.get("input"), str) else ""
    return f"{where} parameter {'.'.join(map(str, name))!r}: {error.get('msg')}{given}"
