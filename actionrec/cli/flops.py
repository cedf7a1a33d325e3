"""``actionrec flops NAME``: parameters and MACs per view, beside the paper's figures."""

from __future__ import annotations

import json

from .common import add_json, add_model_input, model_options


def register(sub) -> None:
    p = sub.add_parser("flops", help="parameters and MACs per view of a model")
    p.add_argument("model", metavar="NAME")
    add_model_input(p, "the model's paper input")
    add_json(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from ..analysis.paper import compare_model, format_comparison

    result = compare_model(args.model, backbone=args.backbone, frames=args.frames, size=args.size,
                           classes=args.classes, options=model_options(args))
    if args.json:
        print(json.dumps({**{k: result[k] for k in ("model", "params", "macs", "frames", "size",
                                                     "classes")},
                          "paper": [{"source": r.source, "params_m": r.params_m, "gmacs": r.gmacs}
                                    for r in result["paper"]]}))
    else:
        print(format_comparison(result))
    return 0
