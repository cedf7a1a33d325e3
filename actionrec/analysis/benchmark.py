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


def benchmark_models(models: dict[str, torch.nn.Module], example: dict[str, torch.Tensor], *,
                     device: torch.device | str = "cpu", rounds: int = 3,
                     min_time: float = 1.0) -> dict[str, float]:
    """Median seconds per forward pass (inference, no grad) of each model on its example input.

    The models are measured in turns, ``rounds`` times, so that slow drifts of the machine (heat,
    other load) hit them all alike and the ratios between them stay fair.
    """
    calls = {}
    for name, model in models.items():
        model.eval()
        x = example[name]

        def call(model=model, x=x):
            with torch.no_grad():
                model(x)

        calls[name] = call
    samples: dict[str, list[float]] = {name: [] for name in models}
    for _ in range(rounds):
        for name, call in calls.items():
            samples[name].append(time_call(call, device=device, min_time=min_time))
    return {name: statistics.median(s) for name, s in samples.items()}
