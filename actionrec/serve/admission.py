"""Who gets in, and until when: ``Uploads`` bounds the bodies received at once, ``Gate`` the
requests computing or waiting (and runs them on the workers' threads), ``Shutdown`` the time
requests still running get once the server is told to stop. A refusal is an HTTPException whose
detail is one line (503 with Retry-After when busy, 504 past a request's timeout)."""

from __future__ import annotations

import asyncio
import math
import time
from concurrent.futures import ThreadPoolExecutor

from fastapi import HTTPException

from .service import DeadlinePassed, Service


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
        try:
            future = self.pool.submit(fn, start + timeout)
        except RuntimeError:  # the pool is shut down: the server is stopping
            cleanup()
            self.release()
            raise shutdown.refusal() from None

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
