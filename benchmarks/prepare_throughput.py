"""Media preprocessing throughput, and what it buys the training pipeline, on the real clips.

    python benchmarks/prepare_throughput.py [--workers 1 2] [--short-side 256] [--repeat 4]

Part 1: ``actionrec data resize`` and ``extract-frames`` of the 7 real clips of ../shared/data
(h264, XviD, mkv, up to 1080p; 1,289 frames) per worker count: videos/s and source frames/s.
Part 2: the training pipeline (TSN segment sampling of 8 frames, multi-scale crop, flip,
normalize, DataLoader) in clips/s on the originals (decoded straight to the short side), on the
resized copies and on the JPEG frames, side by side in this run, after a warm-up epoch.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from data_throughput import SHARED, pipeline_rate

from actionrec.data.datasets import ClipDataset, ListEntry, parse_list
from actionrec.data.media import convert
from actionrec.data.sampling import SegmentSampler
from actionrec.data.transforms import train_transforms
from actionrec.runtime import tune_allocator


def main() -> None:
    tune_allocator()
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    p.add_argument("--short-side", type=int, default=256)
    p.add_argument("--repeat", type=int, default=4, help="passes over the clips per epoch (part 2)")
    p.add_argument("--loader-workers", type=int, default=2)
    args = p.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        src = tmp / "src"  # flat, one name each: tests_data_test.mp4 and .avi would share an output
        src.mkdir()
        clips = sorted(q for q in SHARED.glob("*/*") if q.is_file())
        for i, clip in enumerate(clips):
            (src / f"{i}_{clip.name}").symlink_to(clip)
        (src / "all.txt").write_text("".join(f"{i}_{c.name} 0\n" for i, c in enumerate(clips)))

        print(f"{'mode':<15} {'workers':>7} {'videos/s':>9} {'frames/s':>9}")
        outputs = {}
        for mode in ("resize", "frames"):
            for workers in args.workers:
                out = tmp / f"{mode}{workers}"
                start = time.perf_counter()
                report = convert([str(src / "all.txt")], out, mode, args.short_side,
                                 root=str(src), workers=workers, progress=False)
                seconds = time.perf_counter() - start
                frames = sum(r.frames for r in report.results)
                assert not any(r.error for r in report.results), report.line()
                name = "resize" if mode == "resize" else "extract-frames"
                print(f"{name:<15} {workers:>7} {len(clips) / seconds:>9.2f} {frames / seconds:>9.1f}")
                outputs[mode] = out
        print(f"({len(clips)} clips, {frames} frames, short side {args.short_side}; "
              "frames/s counts source frames)\n")

        sampler, transform = SegmentSampler(8), train_transforms(224, short_side=args.short_side)
        cases = [("originals", "video", src, [ListEntry(f"{i}_{c.name}", 0) for i, c in
                                              enumerate(clips)], args.short_side),
                 ("resized", "video", outputs["resize"],
                  parse_list(outputs["resize"] / "all.txt"), None),
                 ("JPEG frames", "rawframes", outputs["frames"],
                  parse_list(outputs["frames"] / "all.txt", kind="rawframes"), None)]
        print(f"{'training data':<15} {'clips/s':>8} {'vs originals':>13}")
        base = None
        for name, kind, root, entries, decode_short_side in cases:
            ds = ClipDataset(entries * args.repeat, root, sampler, transform, train=True,
                             kind=kind, decode_short_side=decode_short_side)
            rate = pipeline_rate(ds, args.loader_workers, 8)
            base = base or rate
            print(f"{name:<15} {rate:>8.1f} {rate / base:>12.2f}x")
        print(f"(TSN 8-frame segment sampling, 224 crops, {args.loader_workers} loader workers, "
              "batch 8, after a warm-up epoch)")


if __name__ == "__main__":
    main()
