"""``actionrec demo`` (``make demo``): TSN and the four models trained in turn and compared."""

from __future__ import annotations

from pathlib import Path

from ..validate import SEED, Range
from .common import add_set


def register(sub) -> None:
    from ..demo import DEMO_MODELS, DEMO_VIDEOS, RECIPES

    p = sub.add_parser("demo", help="TSN and the four models trained in turn on the generated "
                                    "reversal pairs, compared (make demo)")
    p.add_argument("--work-dir", default="work_dirs/demo")
    p.add_argument("--seed", type=SEED.flag, default=0)
    p.add_argument("--models", nargs="+", default=list(DEMO_MODELS), choices=sorted(RECIPES),
                   help="recipes of actionrec/configs/demo/ to train, in turn (default: "
                        "%(default)s)")
    p.add_argument("--videos", type=Range(1, 100_000, integer=True).flag, default=DEMO_VIDEOS,
                   help="videos in the generated dataset (default: %(default)s)")
    p.add_argument("--epochs", type=Range(1, 10_000, integer=True).flag,
                   help="override every recipe's epochs")
    add_set(p, "override recipe keys")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..demo import run_demo

    run_demo(Path(args.work_dir), models=args.models, videos=args.videos, seed=args.seed,
             epochs=args.epochs, overrides=args.set, report=lambda text: print(text, flush=True))
    return 0
