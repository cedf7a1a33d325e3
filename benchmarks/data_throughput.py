"""Data pipeline throughput: decode + sample + transform, beside raw PyAV decoding of the same frames.

    python benchmarks/data_throughput.py [--workers 0 2] [--repeat 6]

For each case it prints the full pipeline's clips/s and clips/s per worker (DataLoader with
persistent workers; sampling, crop, flip, normalize) and, like for like, the clips/s at which PyAV
alone decodes the same sampled frames at the same decode size in one process (no transform, no
loader), both after a warm-up pass, in this run, and their ratio. The cases: the synthetic demo
set, and the real clips at the papers' training inputs: TSN's 8 segments at 224 (STM, GST, TSM)
and StNet's 25 snippets of 5 frames at 256 (Sec. 4.1).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from actionrec.data.datasets import ClipDataset, ListEntry, make_loader, parse_list
from actionrec.data.sampling import SegmentSampler, SnippetSampler
from actionrec.data.synthetic import SynthSpec, generate
from actionrec.data.transforms import train_transforms
from actionrec.data.video import VideoReader
from actionrec.runtime import tune_allocator

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "videos"


def raw_decode_rate(paths: list[str], sampler: SegmentSampler, short_side: int | None) -> float:
    """Clips/s of decoding, in one process, the frames ``sampler`` picks from each file at the
    pipeline's decode size: a warm-up pass (file cache, frame counts), then a timed one."""

    def one_pass(epoch: int) -> None:
        for i, path in enumerate(paths):
            with VideoReader(path, threads=1) as reader:  # as ClipDataset decodes
                idx = sampler(reader.num_frames, train=True, rng=np.random.default_rng([epoch, i]))
                reader.read(idx.reshape(-1), short_side=short_side)

    one_pass(0)
    start = time.perf_counter()
    one_pass(1)
    return len(paths) / (time.perf_counter() - start)


def pipeline_rate(dataset: ClipDataset, workers: int, batch_size: int) -> float:
    loader = make_loader(dataset, batch_size=batch_size, shuffle=True, num_workers=workers)
    loader.sampler.set_epoch(0)
    for _ in loader:  # warm-up epoch: worker start-up, frame counts cached
        pass
    loader.sampler.set_epoch(1)
    clips = 0
    start = time.perf_counter()
    for batch in loader:
        clips += len(batch["clip"])
    return clips / (time.perf_counter() - start)


def main() -> None:
    tune_allocator()
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    p.add_argument("--repeat", type=int, default=6, help="passes over the 7 real clips per epoch")
    p.add_argument("--batch", type=int, default=8)
    args = p.parse_args()
    torch.set_num_threads(1)

    with tempfile.TemporaryDirectory() as tmp:
        synth = Path(tmp) / "synth"
        spec = SynthSpec()
        generate(synth, spec)
        synth_entries = parse_list(synth / "train.txt")
        real = sorted(str(p.relative_to(SHARED)) for p in SHARED.glob("*/*") if p.is_file())
        real_entries = [ListEntry(path, 0) for path in real] * args.repeat
        cases = [
            (f"synthetic {spec.size}x{spec.size}x{spec.frames}f, 8x56", synth, synth_entries,
             SegmentSampler(8), train_transforms(56, short_side=64), None),
            ("real clips, 8x224 (TSN segments)", SHARED, real_entries, SegmentSampler(8),
             train_transforms(224, short_side=256), 256),
            ("real clips, 25x5x256 (StNet)", SHARED, real_entries, SnippetSampler(25, 5),
             train_transforms(256, short_side=292, crop="random"), 292),
        ]
        print(f"{'case':<36} {'workers':>7} {'pipeline clips/s':>17} {'per worker':>10} "
              f"{'raw decode clips/s':>19} {'ratio':>6}")
        for name, root, entries, sampler, transform, short_side in cases:
            raw = raw_decode_rate([str(Path(root) / e.path) for e in entries], sampler, short_side)
            for workers in args.workers:
                ds = ClipDataset(entries, root, sampler, transform, train=True,
                                 decode_short_side=short_side)
                rate = pipeline_rate(ds, workers, args.batch)
                print(f"{name:<36} {workers:>7} {rate:>17.1f} {rate / max(workers, 1):>10.1f} "
                      f"{raw:>19.1f} {rate / raw:>6.2f}")
        print("both: the sampled frames decoded at the same short side, after a warm-up pass. "
              "pipeline: + crop, flip, normalize, DataLoader (0 workers: in the main process, "
              "counted as one); raw: PyAV alone, one process. ratio = pipeline / raw.")


if __name__ == "__main__":
    main()
