"""The ``actionrec`` command line."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from tqdm import tqdm

from .errors import ActionrecError


class CliError(ActionrecError):
    """A command-line usage error."""


# -- data ------------------------------------------------------------------------------------------
def cmd_data_info(args) -> int:
    from .data.video import probe
    from .errors import VideoError

    rows, failed = [], 0
    for path in args.paths:
        try:
            rows.append(probe(path, template=args.template) if Path(path).is_dir() else probe(path))
        except VideoError as e:
            print(f"ERROR {e}", file=sys.stderr)
            failed += 1
    if args.json:
        print(json.dumps([r.as_dict() for r in rows], indent=2))
    else:
        print(f"{'frames':>7} {'fps':>7} {'width':>6} {'height':>6} {'codec':<8} path")
        for r in rows:
            print(f"{r.num_frames:>7} {r.fps:>7.2f} {r.width:>6} {r.height:>6} {r.codec:<8} {r.path}")
    return 1 if failed else 0


def check_entry(path: str, kind: str, num_frames: int | None, template: str) -> None:
    """Decode every frame of one list entry; raises VideoError with the reason if it is bad."""
    from .data.video import FrameFolderReader, VideoReader
    from .errors import VideoError

    if kind == "rawframes":
        with FrameFolderReader(path, template=template, num_frames=num_frames) as r:
            for i in range(r.num_frames):
                r.read([i])
        return
    with VideoReader(path) as r:
        reported = r.reported_frames
        decoded = r.count_decoded()
        if reported is not None and decoded < reported:
            raise VideoError(f"{path}: container reports {reported} frames but only {decoded} "
                             "decode (truncated or damaged file)")


def cmd_data_check(args) -> int:
    import os

    from .data.datasets import parse_list
    from .errors import VideoError

    if not os.path.isdir(args.root):
        raise CliError(f"{args.root}: data root not found")
    entries = parse_list(args.list, kind=args.kind)
    bad = 0
    for entry in tqdm(entries, desc="checking", unit="file", disable=not sys.stderr.isatty()):
        path = os.path.join(args.root, entry.path)
        try:
            check_entry(path, args.kind, entry.num_frames, args.template)
        except VideoError as e:
            bad += 1
            reason = str(e).removeprefix(f"{path}: ")
            print(f"BAD {path}: {reason}", flush=True)
    print(f"checked {len(entries)} entries of {args.list}: {len(entries) - bad} ok, {bad} bad")
    return 1 if bad else 0


def cmd_data_synth(args) -> int:
    from .data.synthetic import SynthSpec, generate

    spec = SynthSpec(videos=args.videos, frames=args.frames, size=args.size, seed=args.seed)
    summary = generate(args.out, spec, workers=args.workers)
    print_synth_summary(args.out, summary)
    return 0


def print_synth_summary(out, summary: dict) -> None:
    print(f"synthetic reversal-pair dataset in {out}: {summary['videos']} h264 videos "
          f"({summary['train']} train / {summary['val']} val), {summary['frames']} frames of "
          f"{summary['size']}x{summary['size']}, seed {summary['seed']}")
    print(f"  {len(summary['classes'])} classes in {len(summary['reversal_pairs'])} time-reversal "
          "pairs: " + ", ".join(f"{summary['classes'][a]}/{summary['classes'][b]}"
                                for a, b in summary["reversal_pairs"]))
    print(f"  lists: {out}/train.txt, {out}/val.txt; label map: {out}/labels.txt")


# -- demo ------------------------------------------------------------------------------------------
def cmd_demo(args) -> int:
    from .data.synthetic import SynthSpec, generate

    out = Path(args.work_dir) / "synth"
    summary = generate(out, SynthSpec(seed=args.seed))
    print_synth_summary(out, summary)
    return 0


# -- parser ----------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="actionrec", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    data = sub.add_parser("data", help="inspect, check and generate datasets")
    dsub = data.add_subparsers(dest="data_command", required=True, metavar="SUBCOMMAND")
    info = dsub.add_parser("info", help="frames, fps, size and codec of videos or frame folders")
    info.add_argument("paths", nargs="+", metavar="PATH")
    info.add_argument("--template", default="img_{:05d}.jpg", help="file names in frame folders")
    info.add_argument("--json", action="store_true")
    info.set_defaults(func=cmd_data_info)

    check = dsub.add_parser("check", help="decode every entry of a list file, report the bad ones")
    check.add_argument("list", metavar="LIST")
    check.add_argument("--root", required=True, help="folder the list's paths are relative to")
    check.add_argument("--kind", choices=["video", "rawframes"], default="video")
    check.add_argument("--template", default="img_{:05d}.jpg", help="file names in frame folders")
    check.set_defaults(func=cmd_data_check)

    synth = dsub.add_parser("synth", help="generate the synthetic time-reversal-pair dataset")
    synth.add_argument("out", metavar="OUT")
    synth.add_argument("--videos", type=int, default=400, help="total number of videos")
    synth.add_argument("--frames", type=int, default=32)
    synth.add_argument("--size", type=int, default=64)
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--workers", type=int, default=None, help="encoding processes")
    synth.set_defaults(func=cmd_data_synth)

    demo = sub.add_parser("demo", help="the main job on the embedded synthetic dataset")
    demo.add_argument("--work-dir", default="work_dirs/demo")
    demo.add_argument("--seed", type=int, default=0)
    demo.set_defaults(func=cmd_demo)
    return p


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ActionrecError, FileNotFoundError) as e:
        print(f"actionrec: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
