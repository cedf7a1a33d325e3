"""Jobs in worker processes, where a worker's death is one line.

``in_pool`` runs a function over jobs in spawned processes and yields ``(index, result)`` as each
finishes. A worker killed by a signal (the kernel's OOM killer sends SIGKILL) breaks the pool,
also while another worker is starting: that is ``WorkerDied``, and the surviving workers are
ended, since Python 3.11's pool can wait for them forever (they wait for work that never comes).
Workers are spawned, not forked: a fork of a process whose threads (PyTorch's, FFmpeg's) hold
locks can hang.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool

from ..errors import ActionrecError


class WorkerDied(ActionrecError):
    """A worker process ended without its result: killed, or out of memory."""


def in_pool(fn: Callable, jobs: Sequence, workers: int) -> Iterator[tuple[int, object]]:
    """``(index, fn(jobs[index]))`` in the order they finish, ``workers`` at a time; the first
    error stops the jobs not yet started."""
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
    try:
        try:
            futures = {pool.submit(fn, job): i for i, job in enumerate(jobs)}
        except OSError as e:  # the pool broke while it was starting a worker
            raise BrokenProcessPool(e) from None
        for future in as_completed(futures):
            yield futures[future], future.result()
    except BrokenProcessPool as e:
        for process in list((pool._processes or {}).values()):
            process.kill()
        raise WorkerDied(f"a worker process died or could not start ({e}): killed by a signal, "
                         "or by the system when out of memory? Run again, with fewer workers "
                         "if memory is short") from None
    finally:
        pool.shutdown(cancel_futures=True)
