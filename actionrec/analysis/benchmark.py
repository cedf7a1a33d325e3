"""Timing: repeated, warmed-up wall-clock measurements, and ``actionrec bench``'s table of models
timed in turns beside the TSN-ResNet50 baseline and the machine's matmul rate."""

from __future__ import annotations

import multiprocessing
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
import torch.nn.functional as F

from ..errors import ActionrecError
from ..models.base import to_channels_last
from ..models.fast import accelerate
from ..models.fuse import fold_batchnorms
from ..models.registry import MODELS, build_with_input, get_spec
from ..report.flops import count_macs


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
    """The machine's dense matrix-multiply rate: GFLOP/s of an n x n x n product. On the CPU the
    faster of MKL's (``a @ b``) and oneDNN's (the same product as a 1x1 convolution, what the
    models' convolutions run on): MKL's sgemm takes a slow path on AMD CPUs (an EPYC with
    AVX-512, 2 threads: 160 against oneDNN's 354 GFLOP/s), which would flatter every model."""
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    calls = [lambda: a @ b]
    if torch.device(device).type == "cpu":
        pixels, kernel = as_conv1x1(a, b)
        calls.append(lambda: F.conv2d(pixels, kernel))
    seconds = min(time_call(call, device=device, min_time=2.0 / len(calls)) for call in calls)
    return 2 * n**3 / seconds / 1e9


def as_conv1x1(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(pixels, kernel)`` whose ``F.conv2d`` is ``a @ b`` (``(m, k) x (k, n)``, m a multiple of
    32) as channels-last pixels: pixel ``(h, w)`` is row ``32 h + w`` of ``a``."""
    m, k = a.shape
    return a.view(1, m // 32, 32, k).permute(0, 3, 1, 2), b.t().contiguous()[:, :, None, None]


def cpu_name() -> str:
    """The CPU's model name (``/proc/cpuinfo``), or ``cpu`` where the system does not say."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "cpu"


def step_call(model: torch.nn.Module, x: torch.Tensor, *, mode: str,
              precision: str) -> Callable[[], None]:
    """One timed unit of work: a forward pass without gradients (``inference``, eval mode), or a
    training step (``train``: forward, cross-entropy on fixed labels, backward, SGD step with
    momentum); under bf16 autocast with ``precision`` bf16."""
    autocast = torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=precision == "bf16")
    if mode == "inference":
        model.eval()

        def infer():
            with torch.no_grad(), autocast:
                model(x)

        return infer
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9)
    with torch.no_grad():
        classes = model(x).shape[1]
    labels = torch.arange(x.shape[0], device=x.device) % classes

    def train_step():
        with autocast:
            loss = torch.nn.functional.cross_entropy(model(x), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return train_step


ONNX_TOLERANCE = 1e-3  # ONNX Runtime's logits against PyTorch's, relative to the largest
# the same for int8, a check that the quantised graph computes the model at all: measured 0.015-
# 0.023 on 8x224 ResNet-50 models, up to 0.26 on randomly initialised 2x32 ResNet-18 ones (their
# logits are small), and 0.93-1.0 for a graph calibrated on clips 1000x too small
INT8_TOLERANCE = 0.5


def onnx_call(model: torch.nn.Module, x: torch.Tensor, path: Path, *,
              int8: bool = False) -> Callable[[], None]:
    """An inference pass of ``model`` exported to ONNX (at ``path``) and run by ONNX Runtime
    (``int8``: quantised, calibrated on 4 clips drawn like ``x``: latency only, its accuracy is
    ``actionrec export --int8``'s); an export that does not compute the model's logits is an
    error, not a row."""
    from ..export import OnnxModel, export_onnx, onnx_relative_diff, quantize_int8

    model = model.eval()
    path = export_onnx(model, x, path)
    if int8:
        generator = torch.Generator().manual_seed(1)
        clips = [torch.randn(x.shape, generator=generator) for _ in range(4)]
        path = quantize_int8(path, path.with_suffix(".int8.onnx"), clips)
    runner = OnnxModel(path)
    diff, tolerance = onnx_relative_diff(runner, model, x), INT8_TOLERANCE if int8 else ONNX_TOLERANCE
    if diff > tolerance:
        raise ActionrecError(f"ONNX Runtime's {'int8 ' if int8 else ''}logits differ from "
                             f"PyTorch's by {diff:.2g} of the largest (tolerance {tolerance})")
    return lambda: runner(x)


@dataclass(frozen=True)
class Timing:
    """``benchmark_models``' figures for one model."""

    seconds: float  # median seconds per call
    ratio: float  # median over rounds of seconds / the baseline's timed beside it
    baseline_s: float  # median of those baseline figures (the mean of the two beside it)


def benchmark_models(models: dict[str, torch.nn.Module], example: dict[str, torch.Tensor], *,
                     baseline: str, device: torch.device | str = "cpu", rounds: int = 3,
                     min_time: float = 1.0, mode: str = "inference", precision: str = "fp32",
                     onnx: dict[str, str] | None = None) -> dict[str, Timing]:
    """``Timing`` of a ``step_call`` of each model on its example input (``onnx_call`` for the
    names in ``onnx``, which maps them to their backend), beside ``baseline`` (a name in
    ``models``).

    The models are measured in turns, ``rounds`` times, with the baseline timed before the first
    and after every one: a model's ratio in a round is to the mean of the two baseline timings
    beside it, so that a shared machine's drift over a round (minutes with ``--all``) stays out
    of the ratios. TSN against C2D, the same network (batch 1, 2 cores): the ratios of
    neighbouring timings spread with SD 0.031, of timings eight turns apart with SD 0.057.
    """
    with tempfile.TemporaryDirectory(prefix="actionrec_bench_") as folder:
        onnx = onnx or {}
        calls = {name: onnx_call(model, example[name], Path(folder) / f"model_{i}.onnx",
                                 int8=onnx[name] == "onnxruntime-int8")
                 if name in onnx else step_call(model, example[name], mode=mode,
                                                precision=precision)
                 for i, (name, model) in enumerate(models.items())}
        return paired_turns(calls, baseline, device=device, rounds=rounds, min_time=min_time)


def paired_turns(calls: dict[str, Callable[[], None]], baseline: str, *, device, rounds: int,
                 min_time: float) -> dict[str, Timing]:
    """``Timing`` of each call in ``rounds`` turns, the ``baseline`` call timed before the first
    and after every other (``benchmark_models``' pairing, for any calls)."""
    def timed(name: str) -> float:
        return time_call(calls[name], device=device, min_time=min_time)

    others = [name for name in calls if name != baseline]
    samples: dict[str, list[float]] = {name: [] for name in calls}
    beside: dict[str, list[float]] = {name: [] for name in others}
    for _ in range(rounds):
        before = timed(baseline)
        samples[baseline].append(before)
        for name in others:
            seconds, after = timed(name), timed(baseline)
            samples[name].append(seconds)
            samples[baseline].append(after)
            beside[name].append((before + after) / 2)
            before = after

    def timing(name: str) -> Timing:
        if name == baseline:
            base = statistics.median(samples[name])
            return Timing(base, 1.0, base)
        ratios = [s / b for s, b in zip(samples[name], beside[name], strict=True)]
        return Timing(statistics.median(samples[name]), statistics.median(ratios),
                      statistics.median(beside[name]))

    return {name: timing(name) for name in calls}  # in the calls' order (rows follow entries)


def prepare(model: torch.nn.Module, device: torch.device, *, layout: str,
            fold_bn: bool) -> torch.nn.Module:
    """``model`` on ``device`` in ``layout``, its BNs folded (inference) if ``fold_bn``, in its
    fast forms (``models/fast.py``)."""
    model = model.to(device)
    if layout == "channels_last":
        to_channels_last(model)
    if fold_bn:
        fold_batchnorms(model)
    return accelerate(model)


def _peak_rss_mib(entry: BenchEntry, batch: int, mode: str, precision: str, layout: str,
                  fold_bn: bool, threads: int) -> float:
    """In a fresh interpreter: the resident memory that building ``entry`` and running two
    ``step_call``s adds to the process at its peak (weights, activations, workspaces), MiB."""
    torch.set_num_threads(threads)
    before = _status_kib("VmRSS")
    model, x = entry.build(batch=batch, generator=torch.Generator().manual_seed(0))
    call = step_call(prepare(model, torch.device("cpu"), layout=layout, fold_bn=fold_bn), x,
                     mode=mode, precision=precision)
    call()
    call()
    return (_status_kib("VmHWM") - before) / 1024


def _status_kib(field: str) -> int:
    """A memory field of /proc/self/status (VmHWM, the peak: per address space, so unlike
    ``ru_maxrss`` not inherited from the process that forked this one)."""
    with open("/proc/self/status") as f:
        line = next(line for line in f if line.startswith(field + ":"))
    return int(line.split()[1])


def peak_memory(entries: list[BenchEntry], *, batch: int, mode: str, precision: str,
                layout: str, fold_bn: bool) -> list[float]:
    """``_peak_rss_mib`` of each entry, each measured in its own spawned process (the peak of a
    process only grows, so one process per model is the only clean measure). CPU, Linux."""
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(1, maxtasksperchild=1) as pool:
        return [pool.apply(_peak_rss_mib, (e, batch, mode, precision, layout, fold_bn,
                                           torch.get_num_threads())) for e in entries]


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
    backend: str = "pytorch"  # pytorch | onnxruntime | onnxruntime-int8 (the exported model)

    def build(self, *, batch: int = 1, generator: torch.Generator | None = None):
        """The model (weights from seed 0, whatever the caller's random state: a row is the
        same model every run) and an example input drawn with ``generator``."""
        with torch.random.fork_rng():
            torch.manual_seed(0)
            return build_with_input(self.model, classes=self.classes, frames=self.frames,
                                    size=self.size, backbone=self.backbone,
                                    options=self.options, batch=batch, generator=generator)

    def label(self, example: torch.Tensor) -> str:
        shape = "x".join(map(str, example.shape[1:]))
        return self.paper or f"{self.backbone or 'features'} {shape}"


def bench_entries(models: list[str], *, all_inputs: bool, backbone: str, frames: int, size: int,
                  classes: int, baseline_frames: int, options: dict | None = None,
                  backends: tuple[str, ...] = ("pytorch",)) -> list[BenchEntry]:
    """The named models (with ``all_inputs`` and none named: every registered model) at the
    common input ``backbone, frames, size`` with ``options``; with ``all_inputs`` each also at its
    paper input (heads on features: the paper input only); each on every one of ``backends``.
    Last the TSN-ResNet50 baseline (PyTorch) at ``baseline_frames x size``; a PyTorch entry that
    is the baseline again is left out."""
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
        return e.model, e.frames, e.size, e.backbone, e.options, e.backend

    entries = [e if backend == "pytorch" else replace(e, row=f"{e.row} [{backend}]",
                                                       backend=backend)
               for e in entries for backend in backends]
    return [e for e in entries if same(e) != same(baseline)] + [baseline]


def run_benchmark(entries: list[BenchEntry], *, batch: int, device: torch.device, layout: str,
                  rounds: int, fold_bn: bool = True, mode: str = "inference",
                  precision: str = "fp32", memory: bool = False) -> dict:
    """Seconds per inference pass or training step of every entry (models in turns, each beside
    the baseline, the last entry: ``benchmark_models``; for inference BNs folded into the
    convolutions unless not ``fold_bn``), MACs counted on the meta device, ratios to the
    baseline, and the machine's fp32 matmul rate measured in the same run: ``{"machine":
    {...}, "rows": [...]}``. With ``memory`` (CPU) each row also has its peak resident memory
    (``peak_memory``)."""
    fold_bn = fold_bn and mode == "inference"
    if mode == "train" and any(e.backend != "pytorch" for e in entries):
        raise ActionrecError("ONNX Runtime rows are inference only; training is timed in "
                             "PyTorch alone")
    models, examples, macs, onnx = {}, {}, {}, {}
    for entry in entries:
        with torch.device("meta"):  # shapes only: counting allocates nothing
            meta_model, meta_example = entry.build()
            key = (entry.row, entry.label(meta_example))
            macs[key] = count_macs(meta_model, meta_example)
        model, example = entry.build(batch=batch, generator=torch.Generator().manual_seed(0))
        models[key] = prepare(model, device, layout=layout, fold_bn=fold_bn)
        examples[key] = example.to(device)
        if entry.backend != "pytorch":
            onnx[key] = entry.backend
    base = list(models)[-1]  # bench_entries puts the baseline last
    timings = benchmark_models(models, examples, baseline=base, device=device, rounds=rounds,
                               mode=mode, precision=precision, onnx=onnx)
    passes = 3 if mode == "train" else 1  # a training step: forward + backward (about 2x)
    matmul = matmul_gflops(device=device)
    rows = [{"model": name, "input": shape, "latency_s": t.seconds,
             "videos_per_s": batch / t.seconds, "macs": macs[name, shape],
             "gflops_per_s": passes * 2 * macs[name, shape] * batch / t.seconds / 1e9,
             "ratio_to_tsn_r50": t.ratio, "baseline_s": t.baseline_s,
             "macs_ratio_to_tsn_r50": macs[name, shape] / macs[base]}
            for (name, shape), t in timings.items()]
    if memory:  # PyTorch rows (ONNX Runtime's memory is its own allocator's)
        measured = [i for i, e in enumerate(entries) if e.backend == "pytorch"]
        peaks = peak_memory([entries[i] for i in measured], batch=batch, mode=mode,
                            precision=precision, layout=layout, fold_bn=fold_bn)
        for i, peak in zip(measured, peaks, strict=True):
            rows[i]["peak_mib"] = peak
    machine = {"device": str(device), "threads": torch.get_num_threads(), "batch": batch,
               "layout": layout, "bn": "folded" if fold_bn else "layers", "mode": mode,
               "precision": precision, "matmul_gflops": matmul,
               "name": torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name()}
    return {"machine": machine, "rows": rows}


def bench_table(report: dict) -> tuple[list[str], list[list[str]], str]:
    """``run_benchmark``'s report as (headers, cells, legend) for a text or Markdown table."""
    m = report["machine"]
    headers = ["model", "input", "latency s", "clips/s" if m["mode"] == "train" else "videos/s",
               "GMACs", "GFLOP/s", "% matmul",
               "x TSN-R50", "MACs x TSN"]
    cells = [[r["model"], r["input"], f"{r['latency_s']:.4f}", f"{r['videos_per_s']:.2f}",
              f"{r['macs'] / 1e9:.2f}", f"{r['gflops_per_s']:.1f}",
              f"{100 * r['gflops_per_s'] / m['matmul_gflops']:.0f}",
              f"{r['ratio_to_tsn_r50']:.3f}", f"{r['macs_ratio_to_tsn_r50']:.3f}"]
             for r in report["rows"]]
    if any("peak_mib" in r for r in report["rows"]):
        headers.append("peak MiB")
        for row, r in zip(cells, report["rows"], strict=True):
            row.append(f"{r['peak_mib']:.0f}" if "peak_mib" in r else "-")
    train = m["mode"] == "train"
    legend = (f"{'training steps (forward, backward, SGD)' if train else 'inference'}, "
              f"{m['precision']}, batch {m['batch']}, {m['layout']}"
              f"{'' if train else ', BN ' + m['bn']}, device {m['name']} ({m['device']}), "
              f"{m['threads']} threads; fp32 matmul (2048^3"
              f"{', the faster of MKL and oneDNN' if m['device'] == 'cpu' else ''}) in this run: "
              f"{m['matmul_gflops']:.1f} GFLOP/s. GMACs: multiply-accumulates per view (the papers' "
              "FLOPs) of a forward pass; GFLOP/s = "
              f"{'3 x ' if train else ''}2 x MACs x batch / latency"
              f"{' (backward taken as 2 forward passes)' if train else ''}; "
              "x TSN-R50 = latency / the (PyTorch) baseline's, timed before and after it in "
              "each round (the median over rounds)."
              + (" [onnxruntime]: the exported ONNX model in ONNX Runtime (CPU, all graph "
                 "optimisations), its logits checked against PyTorch's." if any(
                  "[onnxruntime]" in r["model"] for r in report["rows"]) else "")
              + (" [onnxruntime-int8]: the same, statically quantised by ONNX Runtime's tools "
                 "(int8 weights per channel, uint8 activations calibrated on 4 random clips); "
                 "its accuracy: `actionrec export --int8`." if any(
                  "[onnxruntime-int8]" in r["model"] for r in report["rows"]) else "")
              + (" peak MiB: resident memory the model adds at its peak (weights, activations, "
                 "workspaces), each model in a fresh process." if any("peak_mib" in r for r in
                                                                      report["rows"]) else ""))
    return headers, cells, legend
