"""``actionrec diagnose CONFIG --checkpoint CKPT``: does a model use time?"""

from __future__ import annotations

import json

from ..validate import SEED
from .common import add_checkpoint, add_config, add_json, add_set, read_config


def register(sub) -> None:
    p = sub.add_parser("diagnose", help="does a model use time? accuracy with frames in order, "
                                        "reversed, shuffled, one frame repeated")
    add_config(p)
    add_checkpoint(p)
    add_set(p)
    p.add_argument("--seed", type=SEED.flag, default=0, help="seed of the shuffled orders")
    add_json(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from ..analysis.temporal_order import diagnose, format_diagnosis
    from ..engine.distributed import is_main
    from ..report.tables import text_table

    cfg = read_config(args)
    result = diagnose(cfg, args.checkpoint, seed=args.seed)
    if not is_main():  # under torchrun, rank 0 reports for all
        return 0
    if args.json:
        print(json.dumps({"num_videos": result["num_videos"], "skipped": result["skipped"],
                          "orders": {order: {k: m[k] for k in ("top1", "pair_accuracy") if k in m}
                                     for order, m in result["orders"].items()}}, indent=2))
        return 0
    print(f"{args.checkpoint}: {result['num_videos']} videos, {cfg.test.clips} clip(s) x "
          f"{cfg.test.crops} crop(s); frames of every view in order, reversed, shuffled, and the "
          "middle frame repeated")
    print(text_table(*format_diagnosis(result)))
    print("drop: accuracy lost against frames in order (points). A model that ignores frame order "
          "loses nothing to reversal or shuffling.")
    return 0
