"""Timing helpers for benchmarks: repeated, warmed-up wall-clock measurements."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch


def _sync(device: torch.device | str) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def time_call(fn: Callable[[], object], *, device: torch.device | str = "cpu", warmup: int = 2,
              min_reps: int = 3, min_time: float = 2.0) -> float:
    """Median seconds per call of ``fn`` after ``warmup`` calls, over at least ``min_reps`` calls
    and ``min_time`` seconds."""
    for _ in range(warmup):
        fn()
    _sync(device)
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < min_reps or time.perf_counter() - start < min_time:
        t0 = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def matmul_gflops(n: int = 2048, *, device: torch.device | str = "cpu",
                  dtype: torch.dtype = torch.float32) -> float:
    """The machine's dense matrix-multiply rate: GFLOP/s of an n x n x n product."""
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    seconds = time_call(lambda: a @ b, device=device)
    return 2 * n**3 / seconds / 1e9
