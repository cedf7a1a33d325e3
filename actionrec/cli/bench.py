"""``actionrec bench``: inference latency or training steps of models beside TSN-ResNet50, in
one run."""

from __future__ import annotations

import json

from ..errors import CliError
from ..validate import Range
from .common import add_json, add_markdown, add_model_input, model_options, write_markdown

# --backend -> the backends of each model's rows
BACKENDS = {"pytorch": ("pytorch",), "onnxruntime": ("onnxruntime",),
            "onnxruntime-int8": ("onnxruntime-int8",), "both": ("pytorch", "onnxruntime"),
            "all": ("pytorch", "onnxruntime", "onnxruntime-int8")}
COMMON = {"backbone": "resnet50", "frames": 8, "size": 224, "classes": 174}  # the common input


def register(sub) -> None:
    p = sub.add_parser("bench", help="inference latency or training steps of models, beside "
                                     "TSN-ResNet50")
    p.add_argument("models", nargs="*", metavar="NAME", help="default with --all: every model")
    p.add_argument("--all", action="store_true",
                   help="each model at its paper input and at the common input")
    add_model_input(p, "the common input, resnet50 8x224x224, 174 classes")
    p.add_argument("--batch", type=Range(1, 4096, integer=True).flag, default=4)
    p.add_argument("--baseline-frames", type=Range(1, 1024, integer=True).flag, default=8,
                   help="frames of the TSN-ResNet50 baseline row (default 8, the papers' TSN)")
    p.add_argument("--rounds", type=Range(1, 1000, integer=True).flag, default=3,
                   help="measurement rounds, models in turns")
    p.add_argument("--layout", choices=["channels_last", "contiguous"], default="channels_last")
    p.add_argument("--device", default="cpu")
    p.add_argument("--mode", choices=["inference", "train"], default="inference",
                   help="train: forward, backward and SGD step per batch (clips/s)")
    p.add_argument("--precision", choices=["fp32", "bf16"], default="fp32",
                   help="bf16: under torch.autocast (bfloat16)")
    p.add_argument("--backend", choices=list(BACKENDS), default="pytorch",
                   help="onnxruntime: each model exported to ONNX and run by ONNX Runtime; "
                        "onnxruntime-int8: that model quantised to int8; both: PyTorch and "
                        "onnxruntime rows; all: the three (the baseline stays PyTorch's)")
    p.add_argument("--memory", action="store_true",
                   help="also the peak resident memory of each model (one process each; CPU)")
    p.add_argument("--keep-bn", action="store_true",
                   help="time the BNs as layers (default: folded into the convolutions, as "
                        "test, predict and export run the models)")
    add_markdown(p)
    add_json(p)
    p.set_defaults(func=run)


def run(args) -> int:
    import torch

    from ..analysis.benchmark import bench_entries, bench_table, run_benchmark
    from ..report.tables import markdown_table, text_table

    if not args.models and not args.all:
        raise CliError("bench: name models to time, or --all")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise CliError(f"--device {args.device}: no CUDA device on this machine")
    if args.memory and args.device != "cpu":
        raise CliError("--memory measures resident CPU memory: use it with --device cpu")
    common = {k: getattr(args, k) or v for k, v in COMMON.items()}
    entries = bench_entries(args.models, all_inputs=args.all, baseline_frames=args.baseline_frames,
                            options=model_options(args),
                            backends=BACKENDS[args.backend], **common)
    report = run_benchmark(entries, batch=args.batch, device=torch.device(args.device),
                           layout=args.layout, rounds=args.rounds, fold_bn=not args.keep_bn,
                           mode=args.mode, precision=args.precision, memory=args.memory)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        headers, cells, legend = bench_table(report)
        print(text_table(headers, cells) + "\n\n" + legend)
    if args.markdown:
        headers, cells, legend = bench_table(report)
        title = "Training speed" if args.mode == "train" else "Inference speed"
        write_markdown(args, title, f"{markdown_table(headers, cells)}\n\n{legend}")
    return 0
