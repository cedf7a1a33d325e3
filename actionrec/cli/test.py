"""``actionrec test CONFIG --checkpoint CKPT``: the config's test protocol on its test list."""

from __future__ import annotations

import json

from .common import add_checkpoint, add_config, add_device, add_json, add_set, read_config


def register(sub) -> None:
    p = sub.add_parser("test", help="evaluate a checkpoint with the config's test protocol")
    add_config(p)
    add_checkpoint(p)
    add_set(p, "override config keys, e.g. test.clips=10 test.crops=3")
    p.add_argument("--out", help="report folder (default: next to the checkpoint)")
    add_device(p, default=None)
    add_json(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from ..engine.distributed import is_main
    from ..engine.evaluate import format_metrics
    from ..engine.inference import evaluate_checkpoint

    cfg = read_config(args)
    metrics, paths = evaluate_checkpoint(cfg, args.checkpoint, out_dir=args.out)
    if not is_main():  # under torchrun, rank 0 reports for all
        return 0
    if args.json:
        print(json.dumps({k: v for k, v in metrics.items() if k != "confusion"}, indent=2))
        return 0
    print(format_metrics(metrics))
    print(f"views: {cfg.test.clips} clips x {cfg.test.crops} crops; skipped: "
          f"{len(metrics['skipped'])}")
    print("reports: " + ", ".join(str(p) for p in paths.values()))
    return 0
