"""``actionrec data info | check | synth | prepare | resize | extract-frames``: inspect, check,
generate, convert and preprocess datasets."""

from __future__ import annotations

import json
import os
import sys

from tqdm import tqdm

from ..config import DataConfig
from ..errors import CliError, VideoError
from ..validate import SEED, InvalidInput, Range, inside
from .common import add_json

TEMPLATE = DataConfig().frame_template
COUNT = Range(1, 10**7, integer=True)  # videos
WORKERS = Range(1, 1024, integer=True)


def frame_template(text: str) -> str:
    """``argparse`` ``type=`` of a frame file name template: the config's rule for
    ``data.frame_template``."""
    import argparse

    from ..config import check_frame_template

    try:
        return check_frame_template(text, "value")
    except InvalidInput as e:
        raise argparse.ArgumentTypeError(str(e).removeprefix("value: ")) from None


def register(sub) -> None:
    data = sub.add_parser("data", help="inspect, check and generate datasets")
    dsub = data.add_subparsers(dest="data_command", required=True, metavar="SUBCOMMAND")

    info = dsub.add_parser("info", help="frames, fps, size and codec of videos or frame folders")
    info.add_argument("paths", nargs="+", metavar="PATH")
    info.add_argument("--template", type=frame_template, default=TEMPLATE,
                      help="file names in frame folders")
    add_json(info)
    info.set_defaults(func=run_info)

    check = dsub.add_parser("check", help="decode every entry of a list file, report the bad ones")
    check.add_argument("list", metavar="LIST")
    check.add_argument("--root", required=True, help="folder the list's paths are relative to")
    check.add_argument("--kind", choices=["video", "rawframes"], default="video")
    check.add_argument("--template", type=frame_template, default=TEMPLATE,
                      help="file names in frame folders")
    check.set_defaults(func=run_check)

    synth = dsub.add_parser("synth", help="generate the synthetic time-reversal-pair dataset")
    synth.add_argument("out", metavar="OUT")
    synth.add_argument("--videos", type=COUNT.flag, default=600, help="total number of videos")
    synth.add_argument("--frames", type=Range(2, 10**5, integer=True).flag, default=32)
    synth.add_argument("--size", type=Range(16, 4096, integer=True).flag, default=64)
    synth.add_argument("--seed", type=SEED.flag, default=0)
    synth.add_argument("--pairs", type=Range(0, 4, integer=True).flag, nargs="+",
                       default=list(range(5)),
                       help="reversal pairs to include: 0 move, 1 rotate, 2 grow, 3 appear, "
                            "4 approach")
    synth.add_argument("--workers", type=WORKERS.flag, default=None, help="encoding processes")
    synth.add_argument("--overwrite", action="store_true",
                       help="replace a dataset generated in OUT before")
    synth.set_defaults(func=run_synth)

    from ..data.media import SHORT_SIDE
    from ..data.prepare import DATASETS

    prep = dsub.add_parser("prepare", help="lists, labels and data.yaml from a benchmark's "
                                           "official annotation files")
    prep.add_argument("dataset", metavar="DATASET", help=", ".join(DATASETS))
    prep.add_argument("--annotations", required=True, metavar="DIR",
                      help="folder of the official annotation files (or of their unpacked archive)")
    prep.add_argument("--media", required=True, metavar="DIR",
                      help="folder the videos or frame folders were unpacked into (the data root)")
    prep.add_argument("--out", metavar="DIR", help="where to write (default: data/DATASET)")
    prep.add_argument("--split", type=Range(1, 3, integer=True).flag, default=1,
                      help="official split (UCF101, HMDB51: 1-3)")
    prep.set_defaults(func=run_prepare)

    for name, mode, what in (("resize", "resize", "re-encode videos (H.264 MP4) to a short side"),
                             ("extract-frames", "frames", "extract JPEG frames at a short side")):
        cmd = dsub.add_parser(name, help=what)
        cmd.add_argument("inputs", nargs="+", metavar="LIST_OR_DIR",
                         help="video lists, folders of videos, or a prepared data.yaml")
        cmd.add_argument("--root", help="folder the lists' paths are relative to")
        cmd.add_argument("--out", required=True, metavar="DIR")
        cmd.add_argument("--short-side", type=SHORT_SIDE.flag, default=256)
        cmd.add_argument("--workers", type=WORKERS.flag, default=os.cpu_count() or 1,
                         help="parallel processes (default: one per CPU)")
        cmd.set_defaults(func=run_media, mode=mode)


def run_info(args) -> int:
    from ..data.video import probe

    rows, failed = [], 0
    for path in args.paths:
        try:
            rows.append(probe(path, template=args.template) if os.path.isdir(path) else probe(path))
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


def run_check(args) -> int:
    from ..data.datasets import parse_list
    from ..data.video import verify

    if not os.path.isdir(args.root):
        raise CliError(f"{args.root}: data root not found")
    entries = parse_list(args.list, kind=args.kind)
    bad = 0
    for entry in tqdm(entries, desc="checking", unit="file", disable=not sys.stderr.isatty()):
        path = os.path.join(args.root, entry.path)
        try:
            inside(args.root, entry.path, path, resolve=False)
            verify(path, args.kind, num_frames=entry.num_frames, template=args.template)
        except (VideoError, InvalidInput) as e:
            bad += 1
            print(f"BAD {path}: {str(e).removeprefix(f'{path}: ')}", flush=True)
    print(f"checked {len(entries)} entries of {args.list}: {len(entries) - bad} ok, {bad} bad")
    return 1 if bad else 0


def run_synth(args) -> int:
    from ..data.synthetic import SynthSpec, format_summary, generate

    spec = SynthSpec(videos=args.videos, frames=args.frames, size=args.size, seed=args.seed,
                     pairs=tuple(args.pairs))
    print(format_summary(args.out, generate(args.out, spec, workers=args.workers,
                                            overwrite=args.overwrite)))
    return 0


def run_prepare(args) -> int:
    from ..data.prepare import prepare

    out = args.out or os.path.join("data", args.dataset)
    for summary in prepare(args.dataset, args.annotations, args.media, out, split=args.split):
        print(summary.line())
        for example in summary.examples:
            print(f"  {example}")
    print(f"written to {out}/: the lists, labels.txt, missing.txt, problems.txt and data.yaml")
    return 0


def run_media(args) -> int:
    from ..data.media import convert

    report = convert(args.inputs, args.out, args.mode, args.short_side, root=args.root,
                     workers=args.workers, progress=sys.stderr.isatty())
    for r in report.results:
        if r.error:
            print(f"CORRUPT {r.error}", flush=True)
    print(report.line())
    for path in report.lists + ([report.data_file] if report.data_file else []):
        print(f"written: {path}")
    return 0
