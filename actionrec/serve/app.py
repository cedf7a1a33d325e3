"""The HTTP layer of ``actionrec serve``: FastAPI on uvicorn.

FastAPI because it is the standard Python stack for a JSON API: the OpenAPI schema
(``/openapi.json``, interactive at ``/docs``, served from this machine) comes from the route
signatures, requests are validated with a one-line 422, and it runs on uvicorn, an ASGI server
whose event loop takes slow uploads without holding a thread each. The model runs in a thread
pool of ``workers`` threads: the event loop only moves bytes.

Routes: ``GET /healthz`` (no token: load balancers probe it), ``GET /v1/model``,
``POST /v1/predict`` (the request body is the video file), ``GET /`` (the web page, which asks
for the token when the API wants one).

Guarantees: at most ``workers + queue`` requests are admitted at once, counted from the first
byte of the upload to the end of its computation (a request past its timeout still holds its
slot until its worker stops, at the next window); the others get 503 with Retry-After before
their body is read. The body goes to a temporary file, counted as it arrives (413 past the
limit, whatever Content-Length said), and is removed whatever happens; no path from a request is
opened.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import math
import os
import shutil
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from importlib.resources import files

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.requests import ClientDisconnect
from swagger_ui_bundle import swagger_ui_path

from .service import DeadlinePassed, Refused, Service

log = logging.getLogger(__name__)


class Gate:
    """Admission (``workers + queue`` requests at once) and the workers' thread pool."""

    def __init__(self, workers: int, queue: int):
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="actionrec-serve")
        self.workers, self.limit, self.admitted = workers, workers + queue, 0
        self.mean_s = 1.0  # running mean of a computation's seconds, for Retry-After

    def admit(self) -> None:
        if self.admitted >= self.limit:
            retry = max(1, math.ceil(self.mean_s * self.limit / self.workers))
            raise HTTPException(503, f"busy: {self.limit} requests in progress; retry in "
                                     f"{retry} s", headers={"Retry-After": str(retry)})
        self.admitted += 1

    def release(self) -> None:
        self.admitted -= 1

    async def run(self, fn, timeout: float, cleanup):
        """``fn(deadline)`` on a worker; when it has stopped (or, still queued, is cancelled)
        ``cleanup()`` runs and the slot is released."""
        loop, start = asyncio.get_running_loop(), time.monotonic()
        future = self.pool.submit(fn, start + timeout)

        def done(_):
            cleanup()
            self.mean_s = 0.8 * self.mean_s + 0.2 * (time.monotonic() - start)
            loop.call_soon_threadsafe(self.release)

        future.add_done_callback(done)
        late = HTTPException(504, f"not done within the server's {timeout:g} s per request "
                                  f"(--timeout)")
        try:
            return await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(future)), timeout)
        except TimeoutError:
            future.cancel()  # still queued: never runs; running: stops at its next check
            raise late from None
        except DeadlinePassed:
            raise late from None


def create_app(service: Service, *, token: str | None = None) -> FastAPI:
    app = FastAPI(title="actionrec", version="1", docs_url=None, redoc_url=None,
                  summary=f"Video action recognition: {service.info['model']} "
                          f"({len(service.names)} classes)")
    add_offline_docs(app)
    add_error_handlers(app)
    gate = Gate(service.limits.workers, service.limits.queue)
    authorised = bearer_check(token)
    page = files("actionrec.serve").joinpath("page.html").read_text()

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def index() -> str:
        return page

    @app.get("/healthz")
    def healthz() -> dict:
        """Up; requests admitted now (computing, waiting or uploading) and how many may be."""
        return {"status": "ok", "model": service.info["model"], "in_progress": gate.admitted,
                "capacity": gate.limit}

    @app.get("/v1/model", dependencies=[Depends(authorised)])
    def model() -> dict:
        """Name, classes, input, parameters and MACs per view."""
        return service.info

    add_predict(app, service, gate, authorised)
    return app


def add_offline_docs(app: FastAPI) -> None:
    """``/docs`` from swagger-ui-bundle's files, not a CDN: they work offline. Its Swagger UI
    (4.15) reads OpenAPI 3.0, and this schema needs nothing of 3.1."""
    app.openapi_version = "3.0.3"
    app.mount("/static/swagger", StaticFiles(directory=swagger_ui_path), name="swagger")

    @app.get("/docs", include_in_schema=False)
    def docs():
        return get_swagger_ui_html(openapi_url="/openapi.json", title="actionrec API",
                                   swagger_js_url="/static/swagger/swagger-ui-bundle.js",
                                   swagger_css_url="/static/swagger/swagger-ui.css",
                                   swagger_favicon_url="/static/swagger/favicon-32x32.png")


def add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(Refused)
    async def refused(request: Request, e: Refused):
        return JSONResponse({"detail": e.reason}, status_code=e.status)

    @app.exception_handler(Exception)
    async def failed(request: Request, e: Exception):  # a bug or a diverged model: 500, one line
        log.exception("%s %s failed", request.method, request.url.path)
        return JSONResponse({"detail": f"internal error: {type(e).__name__}: {e}"},
                            status_code=500)


def bearer_check(token: str | None):
    """The dependency every ``/v1`` route takes: 401 unless ``Authorization: Bearer TOKEN``."""
    def authorised(request: Request) -> None:
        if token is None:
            return
        given = request.headers.get("authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            raise HTTPException(401, "a bearer token is required (Authorization: Bearer ...)",
                                headers={"WWW-Authenticate": "Bearer"})
    return authorised


def add_predict(app: FastAPI, service: Service, gate: Gate, authorised) -> None:
    limits = service.limits
    max_bytes = int(limits.max_upload_mb * 2**20)

    @app.post("/v1/predict", dependencies=[Depends(authorised)],
              openapi_extra={"requestBody": {"required": True, "content": {
                  "application/octet-stream": {"schema": {"type": "string",
                                                          "format": "binary"}}}}})
    async def predict(request: Request, topk: int = Query(5, ge=1, le=100),
                      timeline: bool = False, cam: bool = False,
                      window: float | None = Query(None, gt=0),
                      stride: float | None = Query(None, gt=0),
                      smooth: int = Query(1, ge=1, le=100)) -> dict:
        """The body is the video file (``curl --data-binary @clip.mp4``). ``top``: the test
        protocol's top-k; ``timeline=true``: the long-video timeline; ``cam=true``: class
        activation maps on the sampled frames."""
        if request.headers.get("content-type", "").startswith("multipart/"):
            raise HTTPException(415, "send the video file itself as the request body "
                                     "(curl --data-binary @clip.mp4), not a multipart form")
        gate.admit()
        folder = tempfile.mkdtemp(prefix="actionrec_upload_")
        path = os.path.join(folder, "upload")
        submitted = False
        try:
            await receive(request, path, max_bytes, limits.max_upload_mb)
            submitted = True  # from here the worker's end removes the file and frees the slot
            return await gate.run(
                lambda deadline: service.predict(path, topk=topk, cam=cam, timeline=timeline,
                                                 window=window, stride=stride,
                                                 smoothing=smooth, deadline=deadline),
                limits.timeout_s, lambda: shutil.rmtree(folder, ignore_errors=True))
        finally:
            if not submitted:
                shutil.rmtree(folder, ignore_errors=True)
                gate.release()


async def receive(request: Request, path: str, max_bytes: int, max_mb: float) -> None:
    """The body into ``path``: 413 past ``max_bytes`` (declared or counted), 400 when empty or
    cut short."""
    too_big = HTTPException(413, f"upload over the server's {max_mb:g} MiB (--max-upload-mb)")
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise too_big
    size = 0
    with open(path, "wb") as f:
        try:
            async for chunk in request.stream():
                size += len(chunk)
                if size > max_bytes:
                    raise too_big
                f.write(chunk)
        except ClientDisconnect:
            raise HTTPException(400, "upload cut short: the client went away") from None
    if size == 0:
        raise HTTPException(400, "empty upload: the request body must be a video file")
