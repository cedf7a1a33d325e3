"""``actionrec export CKPT --out OUT.onnx [--int8 CONFIG]``: ONNX export, checked with ONNX
Runtime; with ``--int8`` the statically quantised model, written only where accuracy holds."""

from __future__ import annotations

import torch

from ..validate import Range
from .common import add_checkpoint, add_set


def register(sub) -> None:
    p = sub.add_parser("export", help="export a checkpoint to ONNX, checked with ONNX Runtime")
    add_checkpoint(p, positional=True)
    p.add_argument("--out", required=True, help="output .onnx file")
    p.add_argument("--batch", type=Range(1, 4096, integer=True).flag, default=2,
                   help="batch of the example input")
    p.add_argument("--tolerance", type=Range(0, 1, lo_open=True).flag, default=1e-4,
                   help="largest ONNX Runtime vs PyTorch difference allowed, relative to the "
                        "largest logit (default 1e-4)")
    p.add_argument("--int8", metavar="CONFIG",
                   help="write the int8 model instead (ONNX Runtime static quantisation), "
                        "calibrated on clips of CONFIG's val list and written only if its top-1 "
                        "on CONFIG's test list is within --max-drop points of the fp32 model's")
    add_set(p, "override keys of the --int8 config")
    p.add_argument("--calibration", type=Range(1, 100_000, integer=True).flag, default=32,
                   help="validation clips that set the int8 activation ranges (default 32)")
    p.add_argument("--max-drop", type=Range(-100, 100).flag, default=1.0,
                   help="top-1 points int8 may lose against fp32 (default 1)")
    p.set_defaults(func=run)


def run(args) -> int:
    if args.int8:
        return run_int8(args)
    from ..engine.build import config_example
    from ..engine.recognizer import load
    from ..export import export_onnx, onnx_relative_diff

    recognizer = load(args.checkpoint, device="cpu")
    cfg, names, model = recognizer.config, recognizer.classes, recognizer.model
    example = config_example(cfg, batch=args.batch, generator=torch.Generator().manual_seed(0))
    out = export_onnx(model, example, args.out)
    diff = onnx_relative_diff(out, model, example)
    shape = ", ".join(map(str, example.shape[1:]))
    print(f"wrote {out}: input (N, {shape}) normalised, output logits (N, {len(names)}); "
          f"ONNX Runtime vs PyTorch max abs diff {diff:.2e} of the largest logit")
    return 0 if diff <= args.tolerance else 1


def run_int8(args) -> int:
    from ..config import read_config
    from ..engine.quantize import quantize_checkpoint

    cfg = read_config(args.int8, args.set)
    report = quantize_checkpoint(cfg, args.checkpoint, args.out, calibration=args.calibration,
                                 max_drop=args.max_drop)
    fp32, int8 = report["fp32"], report["int8"]
    for name, m in (("fp32", fp32), ("int8", int8)):
        pair = f", reversal-pair {100 * m['pair_accuracy']:.2f} %" if "pair_accuracy" in m else ""
        print(f"{name} (ONNX Runtime): top-1 {100 * m['top1']:.2f} %, top-5 "
              f"{100 * m['top5']:.2f} %{pair} on {m['num_videos']} videos")
    print(f"wrote {args.out}: int8 (calibrated on {report['calibration_clips']} val clips), "
          f"top-1 drop {100 * (fp32['top1'] - int8['top1']):.2f} points (at most "
          f"{args.max_drop:g}); int8 vs fp32 logits differ by up to {report['max_logit_diff']:.3g}")
    return 0
