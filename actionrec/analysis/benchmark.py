"""Timing: repeated, warmed-up wall-clock measurements, and ``actionrec bench``'s table of models
timed in turns beside the TSN-ResNet50 baseline and the machine's matmul rate."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from ..models.base import to_channels_last
from ..models.fuse import fold_batchnorms
from ..models.registry import MODELS, build_with_input, get_spec
from .flops import count_macs


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


BASELINE = "tsn (baseline)"


@dataclass(frozen=True)
class BenchEntry:
    """One row of ``actionrec bench``: a registered model at one input."""

    row: str  # the table's model column: the registry name, or BASELINE
    model: str  # registry name
    frames: int
    size: int
    classes: int
    backbone: str | None
    options: dict = field(default_factory=dict)
    paper: str = ""  # "paper <input> (<table>)" for a paper input, else "" (the input's shape)

    def build(self, *, batch: int = 1, generator: torch.Generator | None = None):
        return build_with_input(self.model, classes=self.classes, frames=self.frames,
                                size=self.size, backbone=self.backbone, options=self.options,
                                batch=batch, generator=generator)

    def label(self, example: torch.Tensor) -> str:
        shape = "x".join(map(str, example.shape[1:]))
        return self.paper or f"{self.backbone or 'features'} {shape}"


def bench_entries(models: list[str], *, all_inputs: bool, backbone: str, frames: int, size: int,
                  classes: int, baseline_frames: int, options: dict | None = None
                  ) -> list[BenchEntry]:
    """The named models (with ``all_inputs`` and none named: every registered model) at the
    common input ``backbone, frames, size`` with ``options``; with ``all_inputs`` each also at its
    paper input
    (heads on features: the paper input only). Last the TSN-ResNet50 baseline at
    ``baseline_frames x size``; an entry that is the baseline again is left out."""
    baseline = BenchEntry(BASELINE, "tsn", baseline_frames, size, classes, "resnet50")
    entries = []
    for name in models or sorted(MODELS):
        spec = get_spec(name)
        if all_inputs:
            p = spec.paper
            entries.append(BenchEntry(name, name, p.frames, p.size, p.classes, p.backbone,
                                      p.options, f"paper {spec.describe_paper_input()} "
                                                 f"({p.source})"))
        if spec.input != "features" or not all_inputs:
            entries.append(BenchEntry(name, name, frames, size, classes, backbone,
                                      dict(options or {})))

    def same(e: BenchEntry) -> tuple:
        return e.model, e.frames, e.size, e.backbone, e.options

    return [e for e in entries if same(e) != same(baseline)] + [baseline]


def run_benchmark(entries: list[BenchEntry], *, batch: int, device: torch.device, layout: str,
                  rounds: int, fold_bn: bool = True) -> dict:
    """Latency of every entry (models in turns, ``benchmark_models``; BNs folded into the
    convolutions unless not ``fold_bn``), MACs counted on the meta device, ratios to the baseline
    (the last entry), and the machine's fp32 matmul rate measured in the same run:
    ``{"machine": {...}, "rows": [...]}``."""
    models, examples, macs = {}, {}, {}
    for entry in entries:
        with torch.device("meta"):  # shapes only: counting allocates nothing
            meta_model, meta_example = entry.build()
            key = (entry.row, entry.label(meta_example))
            macs[key] = count_macs(meta_model, meta_example)
        model, example = entry.build(batch=batch, generator=torch.Generator().manual_seed(0))
        model = model.to(device)
        if layout == "channels_last":
            to_channels_last(model)
        if fold_bn:
            fold_batchnorms(model)
        models[key], examples[key] = model, example.to(device)
    seconds = benchmark_models(models, examples, device=device, rounds=rounds)
    matmul = matmul_gflops(device=device)
    base = list(models)[-1]  # bench_entries puts the baseline last
    rows = [{"model": name, "input": shape, "latency_s": s, "videos_per_s": batch / s,
             "macs": macs[name, shape], "gflops_per_s": 2 * macs[name, shape] * batch / s / 1e9,
             "ratio_to_tsn_r50": s / seconds[base],
             "macs_ratio_to_tsn_r50": macs[name, shape] / macs[base]}
            for (name, shape), s in seconds.items()]
    machine = {"device": str(device), "threads": torch.get_num_threads(), "batch": batch,
               "layout": layout, "bn": "folded" if fold_bn else "layers", "matmul_gflops": matmul,
               "name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"}
    return {"machine": machine, "rows": rows}


def bench_table(report: dict) -> tuple[list[str], list[list[str]], str]:
    """``run_benchmark``'s report as (headers, cells, legend) for a text or Markdown table."""
    m = report["machine"]
    headers = ["model", "input", "latency s", "videos/s", "GMACs", "GFLOP/s", "% matmul",
               "x TSN-R50", "MACs x TSN"]
    cells = [[r["model"], r["input"], f"{r['latency_s']:.4f}", f"{r['videos_per_s']:.2f}",
              f"{r['macs'] / 1e9:.2f}", f"{r['gflops_per_s']:.1f}",
              f"{100 * r['gflops_per_s'] / m['matmul_gflops']:.0f}",
              f"{r['ratio_to_tsn_r50']:.3f}", f"{r['macs_ratio_to_tsn_r50']:.3f}"]
             for r in report["rows"]]
    legend = (f"inference, batch {m['batch']}, {m['layout']}, BN {m['bn']}, device {m['name']} "
              f"({m['device']}), "
              f"{m['threads']} threads; fp32 matmul (2048^3) in this run: "
              f"{m['matmul_gflops']:.1f} GFLOP/s. GMACs: multiply-accumulates per view (the papers' "
              "FLOPs); GFLOP/s = 2 x MACs x batch / latency; x TSN-R50 = latency / the baseline's.")
    return headers, cells, legend
