"""``actionrec demo`` at a larger scale, for the record: every recipe of actionrec/configs/demo/ on the
generated time-reversal-pair dataset, side by side.

    python benchmarks/synthetic_accuracy.py [--models tsn stm] [--videos 800] [--epochs 12]

The demo trains on 400 videos of 32x32 for the recipes' epochs; this generates 64x64 videos
(default 800) and trains on 56x56 crops with batch 16. Prints validation top-1, reversal-pair
accuracy (a video scored above its time-reversed twin class; 50 % for any model that ignores
frame order) and pair-identity accuracy (the arg-max falls in the right pair), and writes the bar
chart beside the runs.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from actionrec.data.synthetic import SynthSpec, generate
from actionrec.demo import RECIPES, format_rows, plot_accuracies, train_recipes
from actionrec.runtime import tune_allocator

SCALE = ["data.size=56", "data.short_side=64", "train.batch_size=16"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", nargs="+", choices=sorted(RECIPES), default=sorted(RECIPES))
    p.add_argument("--videos", type=int, default=800)
    p.add_argument("--epochs", type=int, help="override the recipes' epochs")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--work-dir", default="work_dirs/synthetic_accuracy")
    args = p.parse_args()
    tune_allocator()
    work = Path(args.work_dir)
    generate(work / "synth", SynthSpec(videos=args.videos, size=64, seed=args.seed))
    overrides = [*SCALE, f"train.seed={args.seed}",
                 *([f"train.epochs={args.epochs}"] if args.epochs else [])]
    rows = train_recipes(args.models, work / "synth", work, overrides,
                         report=lambda text: print(text, flush=True))
    print(f"\n{format_rows(rows)}\n\nplot: {plot_accuracies(rows, work / 'accuracy.png')}")


if __name__ == "__main__":
    main()
