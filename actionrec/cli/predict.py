"""``actionrec predict VIDEO ... --checkpoint CKPT``: top-k classes of video files."""

from __future__ import annotations

import json
import sys

from .common import add_checkpoint, add_device, add_json


def register(sub) -> None:
    p = sub.add_parser("predict", help="top-k classes of video files")
    p.add_argument("videos", nargs="+", metavar="VIDEO")
    add_checkpoint(p)
    p.add_argument("--topk", type=int, default=5)
    p.add_argument("--backend", choices=["pytorch", "onnxruntime"], default="pytorch",
                   help="onnxruntime: the model exported to ONNX and run by ONNX Runtime (CPU)")
    add_device(p)
    add_json(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from ..engine.inference import predict_videos

    results = predict_videos(args.checkpoint, args.videos, topk=args.topk, device=args.device,
                             backend=args.backend)
    if args.json:
        print(json.dumps([{"path": r.path, "error": r.error,
                           "top": [{"class": c, "prob": p} for c, p in r.top or []]}
                          for r in results], indent=2))
    for r in results:
        if r.error:
            print(f"ERROR {r.error}", file=sys.stderr)
        elif not args.json:
            print(r.path)
            for name, prob in r.top:
                print(f"  {prob:7.2%}  {name}")
    return 1 if any(r.error for r in results) else 0
