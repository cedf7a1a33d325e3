"""glibc's default allocator against ``tune_allocator`` (actionrec/runtime.py), side by side.

    python benchmarks/allocator.py [--rounds 3]

Each setting runs in its own process (the allocator is process-wide), in turns: an out-of-place
add of two 51 MB tensors, of two 1.2 GB tensors (a result above the 1 GiB that glibc trims back
to the system by default) and a TSN-ResNet50 forward pass at 8x224x224, median seconds of each.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

CHILD = """
import json, torch
from actionrec.analysis.benchmark import time_call
from actionrec.models.registry import build_with_input
from actionrec.runtime import tune_allocator
tuned = tune_allocator()
torch.set_grad_enabled(False)
a, b = torch.randn(2, 12_750_000), torch.randn(2, 12_750_000)  # 51 MB each
big_a, big_b = torch.randn(300_000_000), torch.randn(300_000_000)  # 1.2 GB each
model, clip = build_with_input("tsn", classes=174, frames=8, generator=torch.Generator())
model.eval()
print(json.dumps({"tuned": tuned, "add": time_call(lambda: a + b),
                  "big_add": time_call(lambda: big_a + big_b),
                  "tsn": time_call(lambda: model(clip), min_time=3.0)}))
"""


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    runs: dict[str, list[dict]] = {"default": [], "tuned": []}
    for _ in range(args.rounds):
        for setting in runs:
            env = {**os.environ, "ACTIONREC_MALLOC": "default" if setting == "default" else ""}
            out = subprocess.run([sys.executable, "-c", CHILD], env=env, check=True,
                                 capture_output=True, text=True).stdout
            runs[setting].append(json.loads(out.splitlines()[-1]))
    print(f"{'allocator':<28} {'51 MB add ms':>13} {'1.2 GB add ms':>14} {'TSN-R50 8x224 s':>16}")
    for setting, results in runs.items():
        applied = all(r["tuned"] for r in results)
        label = "glibc default" if setting == "default" else \
            "tune_allocator" + ("" if applied else " (not applied: not glibc)")
        add = statistics.median(r["add"] for r in results)
        big = statistics.median(r["big_add"] for r in results)
        tsn = statistics.median(r["tsn"] for r in results)
        print(f"{label:<28} {1e3 * add:>13.1f} {1e3 * big:>14.1f} {tsn:>16.3f}")
    print(f"median of {args.rounds} rounds, each setting in its own process, in turns; "
          f"{os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
