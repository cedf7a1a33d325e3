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
  decoded; frames that grow part-way are bounded by the decoder itself, at twice that (``data.video
  .open_video``) and make the upload unreadable (422).
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
import math
import shutil
import tempfile
from contextlib import asynccontextmanager
from importlib.resources import files

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import HTMLResponse

from ..engine.windows import SMOOTH_WINDOWS, TOPK, WINDOW_SECONDS
from .admission import Gate, Shutdown, Uploads
from .bodies import FormBody, RawBody, receive
from .hosts import HostCheck
from .openapi import add_error_handlers, add_offline_docs, errors
from .service import Service


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
    (the module's docstring) begins. Its temporary folder is removed however the server ends
    (the app's shutdown removes it too, when uvicorn gets that far)."""
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
    try:
        Server(config).run(sockets=[sock])
    finally:
        shutil.rmtree(app.state.scratch, ignore_errors=True)


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
    async def predict(request: Request, topk: int = Query(5, **TOPK.query()),
                      timeline: bool = False, cam: bool = False,
                      window: float | None = Query(None, **WINDOW_SECONDS.query()),
                      stride: float | None = Query(None, **WINDOW_SECONDS.query()),
                      smooth: int = Query(1, **SMOOTH_WINDOWS.query())) -> dict:
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
        try:
            folder = tempfile.mkdtemp(prefix="actionrec_upload_", dir=scratch)
        except OSError as e:
            raise HTTPException(503, f"cannot store an upload now: {e.strerror}",
                                headers={"Retry-After": "60"}) from None
        path = f"{folder}/upload"
        submitted = False
        try:
            uploads.begin()
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


