"""Each model's time split into its convolutions (timed back to back, without the rest of the
pass) and the work between them.

    python benchmarks/conv_alone.py [--models stm msti ...] [--mode inference|train] [--rounds 3]

For every named model at its paper input (default: all of them) and the TSN-ResNet50 baseline,
set up as ``actionrec bench`` runs them (batch 1, channels-last, BNs folded for inference), it
prints:

- the latency (``paired_turns``: in turns beside the baseline) as a ratio to TSN's;
- its convolutions alone: one pass is recorded at the dispatcher (``aten.convolution``,
  ``aten.mkldnn_convolution`` and, with ``--mode train``, ``aten.convolution_backward``), and its
  convolution calls are replayed back to back on random tensors of the same shapes and strides,
  timed beside TSN's the same way;
- their ratio to TSN's: compared with the MAC ratio, how fast the kernels run the model's
  convolutions against TSN's;
- the rest, latency minus the convolutions alone: the operators between the convolutions, what
  the convolutions cost more in place than alone, and Python's share of each operator call;
- the forward convolutions' MACs, and the operators the pass (or training step: backward and
  optimizer included) dispatches (every aten call; views included).

FLOPs are MACs per view. docs/benchmarks.md has the figures measured with it.
"""

from __future__ import annotations

import argparse
import functools
from collections import Counter
from collections.abc import Callable

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from actionrec.analysis.benchmark import (
    BASELINE,
    bench_entries,
    paired_turns,
    prepare,
    step_call,
)
from actionrec.models.registry import MODELS
from actionrec.report.flops import count_macs
from actionrec.runtime import tune_allocator

aten = torch.ops.aten
CONVOLUTIONS = {aten.convolution.default, aten.mkldnn_convolution.default,
                aten.convolution_backward.default}


class Recorder(TorchDispatchMode):
    """Counts every operator dispatched and keeps each distinct convolution call (operator,
    argument shapes, strides and values) with how often it came."""

    def __init__(self):
        super().__init__()
        self.operators = 0
        self.convolutions: Counter = Counter()
        self.calls: dict = {}

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.operators += 1
        if func in CONVOLUTIONS:
            key = (func, *(_signature(a) for a in args))
            self.convolutions[key] += 1
            self.calls.setdefault(key, (func, args))
        return func(*args, **(kwargs or {}))


def _signature(arg):
    if isinstance(arg, torch.Tensor):
        return "tensor", tuple(arg.shape), arg.stride(), arg.dtype
    return repr(arg)


def _like(arg):
    """A random tensor with ``arg``'s shape, strides and dtype (other arguments as they are)."""
    if not isinstance(arg, torch.Tensor):
        return arg
    size = 1 + sum((n - 1) * step for n, step in zip(arg.shape, arg.stride(), strict=True))
    return torch.randn(size, dtype=arg.dtype).as_strided(arg.shape, arg.stride())


def convolutions_alone(recorder: Recorder) -> tuple[Callable[[], None], float]:
    """A call that runs the recorded convolutions back to back, each as often as the pass made
    it, on random tensors of the same shapes and strides; and their MACs (forward calls)."""
    replays, macs = [], 0
    for key, count in recorder.convolutions.items():
        func, args = recorder.calls[key]
        replay = functools.partial(func, *(_like(a) for a in args))
        replays += [replay] * count
        if func is not aten.convolution_backward.default:
            macs += count * replay().numel() * replay.args[1][0].numel()

    def run() -> None:
        for replay in replays:
            replay()

    return run, macs


def record(call: Callable[[], None]) -> Recorder:
    """The operators of one more ``call`` (after the bench's turns: warm)."""
    with Recorder() as recorder:
        call()
    return recorder


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", nargs="+", default=sorted(MODELS))
    p.add_argument("--mode", choices=("inference", "train"), default="inference")
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    tune_allocator()
    entries = [e for e in bench_entries(args.models, all_inputs=True, backbone="resnet50",
                                        frames=8, size=224, classes=400, baseline_frames=8)
               if e.paper or e.row == BASELINE]
    macs, calls = {}, {}
    for entry in entries:
        with torch.device("meta"):
            macs[entry.row] = count_macs(*entry.build())
        model, example = entry.build(generator=torch.Generator().manual_seed(0))
        model = prepare(model, torch.device("cpu"), layout="channels_last",
                        fold_bn=args.mode == "inference")
        calls[entry.row] = step_call(model, example, mode=args.mode, precision="fp32")
    latency = paired_turns(calls, BASELINE, device="cpu", rounds=args.rounds, min_time=1.0)
    recorders = {name: record(call) for name, call in calls.items()}
    alone = {name: convolutions_alone(r) for name, r in recorders.items()}
    convs = paired_turns({name: run for name, (run, _) in alone.items()}, BASELINE,
                         device="cpu", rounds=args.rounds, min_time=1.0)
    unit = "training step" if args.mode == "train" else "forward pass"
    print(f"{args.mode}, batch 1, {torch.get_num_threads()} threads, channels-last; ms per {unit};"
          f" FLOPs are MACs per view; ratios to {BASELINE}, timed beside it ({args.rounds} rounds)")
    print(f"{'model':<16} {'MACs x':>7} {'latency x':>10} {'convs alone x':>14} {'latency ms':>11} "
          f"{'convs alone ms':>15} {'rest ms':>8} {'conv GMACs':>11} {'operators':>10}")
    for name in calls:
        t, c = latency[name], convs[name]
        print(f"{name:<16} {macs[name] / macs[BASELINE]:7.3f} {t.ratio:10.3f} {c.ratio:14.3f} "
              f"{t.seconds * 1e3:11.1f} {c.seconds * 1e3:15.1f} {(t.seconds - c.seconds) * 1e3:8.1f}"
              f" {alone[name][1] / 1e9:11.2f} {recorders[name].operators:10d}")


if __name__ == "__main__":
    main()
