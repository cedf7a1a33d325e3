"""The HTTP layer of ``actionrec serve``: FastAPI on uvicorn.

FastAPI because it is the standard Python stack for a JSON API: the OpenAPI schema
(``/openapi.json``, interactive at ``/docs``, served from this machine) comes from the route
signatures, and it runs on uvicorn, an ASGI server whose event loop takes slow uploads without
holding a thread each. The model runs in a thread pool of ``workers`` threads: the event loop
only moves bytes.

Routes: ``GET /healthz`` (no token: load balancers probe it), ``GET /v1/model``,
``POST /v1/predict`` (the video file as the request body, or as the field ``file`` of a
multipart form), ``GET /`` (the web page, which asks for the token when the API wants one).

Guarantees:

- Errors: every refusal is a 4xx whose JSON body is ``{"detail": one line}`` (a query parameter
  out of its range included: 422 naming it), and every answer is one the schema documents.
- Uploads: at most ``uploads`` request bodies are received at once (more: 503 with Retry-After
  before the body is read). A body that falls behind is cut off with 408: after
  ``upload_timeout_s`` it must have come at ``upload_min_kib_s`` on average, so a slow client
  holds an upload slot for a bounded time and never a computation slot. A body goes to a file of
  its own under the server's temporary folder, counted as it arrives (413 past the limit,
  whatever Content-Length said); a multipart form counts its field ``file`` the same way and its
  other parts against a small allowance. Files on disk: at most ``uploads + workers + queue``
  bodies, each within the limit. No path from a request is opened.
- Admission: at most ``workers + queue`` requests computing or waiting, taken once the body is
  in (a request past its timeout holds its slot until its worker stops, at the next window);
  the others get 503 with Retry-After, before their body is read when the queue is already full.
- Frames larger than ``max_pixels`` are refused from the stream's header (413), before one is
  decoded.
- Host check: given ``hosts``, a request whose Host header (port aside) is not one of them is
  refused with 403, whatever its token: a page of another site that a DNS rebinding points at
  this machine cannot talk to it.
- Shutdown (SIGTERM, Ctrl-C): no new connection is taken; requests still running get
  ``shutdown_s``, then are cancelled, computations stop at their next check, and the server's
  temporary folder, every upload in it, is removed.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import math
import shutil
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from importlib.resources import files

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, MultipartState, parse_options_header
from starlette.datastructures import Headers
from swagger_ui_bundle import swagger_ui_path

from ..validate import Range
from .service import DeadlinePassed, Limits, Refused, Service

log = logging.getLogger(__name__)

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "[::1]"})
FORM_ALLOWANCE = 2**16  # bytes of a multipart form besides its file: boundaries, headers, fields
SECONDS = Range(0, 86400, lo_open=True)  # a window or stride: up to a day


class Error(BaseModel):
    """The body of every refusal."""

    detail: str  # one line


def errors(*statuses: int) -> dict:
    """OpenAPI ``responses`` for these statuses: each an ``Error``."""
    return {s: {"model": Error} for s in statuses}


class Gate:
    """Admission (``workers + queue`` requests at once) and the workers' thread pool."""

    def __init__(self, workers: int, queue: int):
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="actionrec-serve")
        self.workers, self.limit, self.admitted = workers, workers + queue, 0
        self.mean_s = 1.0  # running mean of a computation's seconds, for Retry-After

    def refuse_if_full(self) -> None:
        if self.admitted >= self.limit:
            retry = max(1, math.ceil(self.mean_s * self.limit / self.workers))
            raise HTTPException(503, f"busy: {self.limit} requests in progress; retry in "
                                     f"{retry} s", headers={"Retry-After": str(retry)})

    def admit(self) -> None:
        self.refuse_if_full()
        self.admitted += 1

    def release(self) -> None:
        self.admitted -= 1

    async def run(self, fn, timeout: float, cleanup, shutdown: Shutdown):
        """``fn(deadline)`` on a worker; when it has stopped (or, still queued, is cancelled)
        ``cleanup()`` runs and the slot is released. 504 past ``timeout``, 503 once
        ``shutdown`` is over."""
        loop, start = asyncio.get_running_loop(), time.monotonic()
        future = self.pool.submit(fn, start + timeout)

        def done(_):
            cleanup()
            self.mean_s = 0.8 * self.mean_s + 0.2 * (time.monotonic() - start)
            loop.call_soon_threadsafe(self.release)

        future.add_done_callback(done)
        late = HTTPException(504, f"not done within the server's {timeout:g} s per request "
                                  f"(--timeout)")
        result = asyncio.wrap_future(future)
        over = await shutdown.first(result, timeout)
        if result.done() and not result.cancelled():
            try:
                return result.result()
            except DeadlinePassed:
                raise shutdown.refusal() if over else late from None
        result.cancel()  # still queued: never runs; running: stops at its next check
        raise shutdown.refusal() if over else late


class Shutdown:
    """The server's end: ``begin()`` when it stops taking connections; ``seconds`` later it is
    ``over``: bodies still arriving and requests still waiting are answered 503, computations
    stop at their next check."""

    def __init__(self, service: Service, seconds: float):
        self.service, self.seconds, self.over = service, seconds, asyncio.Event()

    def begin(self) -> None:
        asyncio.get_running_loop().call_later(self.seconds, self.end)

    def end(self) -> None:
        self.service.stop()
        self.over.set()

    async def first(self, awaitable, timeout: float) -> bool:
        """Waits for ``awaitable`` (not cancelled), at most ``timeout`` s; whether the shutdown
        was over first."""
        over = asyncio.ensure_future(self.over.wait())
        try:
            await asyncio.wait({awaitable, over}, timeout=timeout,
                               return_when=asyncio.FIRST_COMPLETED)
        finally:
            over.cancel()
        return self.over.is_set()

    @staticmethod
    def refusal() -> HTTPException:
        return HTTPException(503, "the server is shutting down", headers={"Connection": "close"})


class Uploads:
    """At most ``limit`` request bodies being received at once."""

    def __init__(self, limit: int, retry_s: float):
        self.limit, self.active, self.retry_s = limit, 0, retry_s

    def begin(self) -> None:
        if self.active >= self.limit:
            retry = max(1, math.ceil(self.retry_s))
            raise HTTPException(503, f"busy: {self.limit} uploads in progress; retry in {retry} s",
                                headers={"Retry-After": str(retry)})
        self.active += 1

    def end(self) -> None:
        self.active -= 1


class HostCheck:
    """ASGI middleware: 403 unless the Host header, port aside, is one of ``names``."""

    def __init__(self, app, names: frozenset[str]):
        self.app, self.names = app, names

    async def __call__(self, scope, receive, send):
        if scope["type"] in ("http", "websocket"):
            given = Headers(scope=scope).get("host", "")
            if host_name(given) not in self.names:
                answer = JSONResponse({"detail": f"Host {given!r} is not one this server answers "
                                                 f"to ({', '.join(sorted(self.names))}; "
                                                 f"--allow-host adds one)"}, status_code=403)
                return await answer(scope, receive, send)
        await self.app(scope, receive, send)


def host_name(host: str) -> str:
    """A Host header without its port, lower case: ``[::1]:80`` -> ``[::1]``."""
    host = host.strip().lower()
    name, colon, port = host.rpartition(":")
    return name if colon and port.isdigit() and len(port) <= 5 else host


def create_app(service: Service, *, token: str | None = None,
               hosts: frozenset[str] | None = None) -> FastAPI:
    """The app; ``hosts``: the Host names it answers to (None: any). Its temporary folder is
    ``app.state.scratch``, removed when the app shuts down."""
    limits = service.limits
    gate = Gate(limits.workers, limits.queue)
    uploads = Uploads(limits.uploads, limits.upload_timeout_s)
    shutdown = Shutdown(service, limits.shutdown_s)
    scratch = tempfile.mkdtemp(prefix="actionrec_serve_")

    @asynccontextmanager
    async def lifespan(_):
        try:
            yield
        finally:
            shutdown.end()
            await asyncio.to_thread(gate.pool.shutdown, wait=True, cancel_futures=True)
            shutil.rmtree(scratch, ignore_errors=True)

    app = FastAPI(title="actionrec", version="1", docs_url=None, redoc_url=None,
                  summary=f"Video action recognition: {service.info['model']} "
                          f"({len(service.names)} classes)", lifespan=lifespan,
                  responses=errors(403) if hosts is not None else None)
    app.state.scratch, app.state.shutdown = scratch, shutdown
    if hosts is not None:
        app.add_middleware(HostCheck, names=hosts)
    add_offline_docs(app)
    add_error_handlers(app)
    authorised = bearer_check(token)
    page = files("actionrec.serve").joinpath("page.html").read_text()

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def index() -> str:
        return page

    @app.get("/healthz")
    def healthz() -> dict:
        """Up; requests admitted now (computing or waiting) and how many may be; bodies being
        received and how many may be."""
        return {"status": "ok", "model": service.info["model"], "in_progress": gate.admitted,
                "capacity": gate.limit, "uploading": uploads.active,
                "upload_capacity": uploads.limit}

    @app.get("/v1/model", dependencies=[Depends(authorised)], responses=errors(401))
    def model() -> dict:
        """Name, classes, input, parameters and MACs per view."""
        return service.info

    add_predict(app, service, gate, uploads, shutdown, authorised, scratch)
    return app


def run_server(app: FastAPI, sock) -> None:
    """``app`` on uvicorn, listening on ``sock``, until SIGTERM or Ctrl-C; then its shutdown
    (the module's docstring) begins."""
    import uvicorn

    shutdown: Shutdown = app.state.shutdown

    class Server(uvicorn.Server):
        async def shutdown(self, sockets=None):
            shutdown.begin()
            await super().shutdown(sockets)

    # uvicorn cancels what still runs a little after our answers: only a request stuck in code
    # that never yields
    config = uvicorn.Config(app, log_level="warning",
                            timeout_graceful_shutdown=math.ceil(shutdown.seconds) + 5)
    Server(config).run(sockets=[sock])


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
        return JSONResponse({"detail": f"internal error: {type(e).__name__}: {e}"},
                            status_code=500)


def _one_error(error: dict) -> str:
    """``query parameter 'window': Input should be ... (got 'inf')``."""
    where, *name = error.get("loc", ())
    given = f" (got {error['input']!r})" if isinstance(error.get("input"), str) else ""
    return f"{where} parameter {'.'.join(map(str, name))!r}: {error.get('msg')}{given}"


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


def add_predict(app: FastAPI, service: Service, gate: Gate, uploads: Uploads,
                shutdown: Shutdown, authorised, scratch: str) -> None:
    limits = service.limits
    binary = {"type": "string", "format": "binary"}

    @app.post("/v1/predict", dependencies=[Depends(authorised)],
              responses=errors(400, 401, 408, 413, 415, 422, 503, 504),
              openapi_extra={"requestBody": {"required": True, "content": {
                  "application/octet-stream": {"schema": binary},
                  "multipart/form-data": {"schema": {"type": "object", "required": ["file"],
                                                     "properties": {"file": binary}}}}}})
    async def predict(request: Request, topk: int = Query(5, **Range(1, 100, integer=True).query()),
                      timeline: bool = False, cam: bool = False,
                      window: float | None = Query(None, **SECONDS.query()),
                      stride: float | None = Query(None, **SECONDS.query()),
                      smooth: int = Query(1, **Range(1, 100, integer=True).query())) -> dict:
        """The video file as the body (``curl --data-binary @clip.mp4``) or as the field ``file``
        of a multipart form (``curl -F file=@clip.mp4``). ``topk``: the test protocol's top-k;
        ``timeline=true``: the long-video timeline (``window``, ``stride`` in seconds,
        ``smooth`` windows); ``cam=true``: class activation maps on the sampled frames."""
        content_type = request.headers.get("content-type", "")
        form = content_type.lower().startswith("multipart/")
        if form and not content_type.lower().startswith("multipart/form-data"):
            raise HTTPException(415, "send the video file as the request body (curl "
                                     "--data-binary @clip.mp4) or as the field 'file' of a "
                                     "multipart/form-data form (curl -F file=@clip.mp4)")
        gate.refuse_if_full()
        uploads.begin()
        folder = tempfile.mkdtemp(prefix="actionrec_upload_", dir=scratch)
        path = f"{folder}/upload"
        submitted = False
        try:
            try:
                with open(path, "wb") as f:
                    sink = FormBody(content_type, f, limits) if form else RawBody(f, limits)
                    await receive(request, sink, limits, shutdown)
            finally:
                uploads.end()
            gate.admit()
            submitted = True  # from here the worker's end removes the file and frees the slot
            return await gate.run(
                lambda deadline: service.predict(path, topk=topk, cam=cam, timeline=timeline,
                                                 window=window, stride=stride,
                                                 smoothing=smooth, deadline=deadline),
                limits.timeout_s, lambda: shutil.rmtree(folder, ignore_errors=True), shutdown)
        finally:
            if not submitted:
                shutil.rmtree(folder, ignore_errors=True)


def too_big(limits: Limits) -> HTTPException:
    return HTTPException(413, f"upload over the server's {limits.max_upload_mb:g} MiB "
                              f"(--max-upload-mb)", headers={"Connection": "close"})


class RawBody:
    """The request body is the file: written as it comes, 413 past the limit."""

    allowance = 0

    def __init__(self, f, limits: Limits):
        self.f, self.limits, self.size = f, limits, 0
        self.max_bytes = int(limits.max_upload_mb * 2**20)

    def write(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.max_bytes:
            raise too_big(self.limits)
        self.f.write(chunk)

    def finish(self) -> None:
        if self.size == 0:
            raise HTTPException(400, "empty upload: the request body must be a video file")


class FormBody:
    """A multipart/form-data body: its field ``file`` written as it comes (413 past the limit),
    its other parts dropped; 400 for a form that is not valid, has no ``file`` or two."""

    allowance = FORM_ALLOWANCE

    def __init__(self, content_type: str, f, limits: Limits):
        boundary = parse_options_header(content_type)[1].get(b"boundary")
        if not boundary:
            raise HTTPException(400, "a multipart form without a boundary in its Content-Type")
        self.file = RawBody(f, limits)
        self.files, self.in_file, self.field, self.value = 0, False, b"", b""
        self.disposition = b""
        self.parser = MultipartParser(boundary, {
            "on_part_begin": self._part_begin,
            "on_header_field": lambda data, start, end: self._add("field", data[start:end]),
            "on_header_value": lambda data, start, end: self._add("value", data[start:end]),
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._data})

    def _part_begin(self) -> None:
        self.in_file, self.disposition = False, b""

    def _add(self, attribute: str, data: bytes) -> None:
        setattr(self, attribute, getattr(self, attribute) + data)

    def _header_end(self) -> None:
        if self.field.lower() == b"content-disposition":
            self.disposition = self.value
        self.field = self.value = b""

    def _headers_finished(self) -> None:
        name = parse_options_header(self.disposition)[1].get(b"name")
        self.in_file = name == b"file"
        if self.in_file:
            self.files += 1
            if self.files > 1:
                raise HTTPException(400, "a multipart form with two fields named 'file'; send "
                                         "one video")

    def _data(self, data: bytes, start: int, end: int) -> None:
        if self.in_file:
            self.file.write(data[start:end])

    def write(self, chunk: bytes) -> None:
        try:
            self.parser.write(chunk)
        except FormParserError as e:
            raise HTTPException(400, f"not a valid multipart form: {e}") from None

    def finish(self) -> None:
        if self.parser.state != MultipartState.END:
            raise HTTPException(400, "a multipart form cut short: its closing boundary is "
                                     "missing")
        if not self.files:
            raise HTTPException(400, "a multipart form without a field named 'file' holding "
                                     "the video")
        self.file.finish()


async def receive(request: Request, sink: RawBody | FormBody, limits: Limits,
                  shutdown: Shutdown) -> None:
    """The request body into ``sink``: 413 past the limit (declared or counted), 400 when cut
    short, 408 when it falls behind (after ``upload_timeout_s`` s it must have come at
    ``upload_min_kib_s`` KiB/s on average), 503 once ``shutdown`` is over."""
    max_body = int(limits.max_upload_mb * 2**20) + sink.allowance
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_body:
        raise too_big(limits)
    rate, start, size = limits.upload_min_kib_s * 1024, time.monotonic(), 0
    while True:
        left = start + limits.upload_timeout_s + size / rate - time.monotonic()
        arrived = asyncio.ensure_future(request.receive())
        if await shutdown.first(arrived, max(left, 0)):
            arrived.cancel()
            raise shutdown.refusal()
        if not arrived.done():
            arrived.cancel()
            raise HTTPException(
                408, f"upload too slow: {size} bytes in {time.monotonic() - start:.0f} s; this "
                     f"server waits {limits.upload_timeout_s:g} s, then wants "
                     f"{limits.upload_min_kib_s:g} KiB/s on average (--upload-timeout, "
                     f"--upload-min-rate)", headers={"Connection": "close"})
        message = arrived.result()
        if message["type"] == "http.disconnect":
            raise HTTPException(400, "upload cut short: the client went away")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > max_body:
            raise too_big(limits)
        sink.write(chunk)
        if not message.get("more_body", False):
            break
    sink.finish()
