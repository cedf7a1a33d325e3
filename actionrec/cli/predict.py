"""``actionrec predict VIDEO ... --checkpoint CKPT``: top-k classes of video files; with
``--window/--stride`` (or ``--timeline-dir``, ``--out-video``) a timeline of a long video."""

from __future__ import annotations

import json
import sys

from .common import add_checkpoint, add_device, add_json


def register(sub) -> None:
    p = sub.add_parser("predict", help="top-k classes of video files, or a long video's timeline")
    p.add_argument("videos", nargs="+", metavar="VIDEO")
    add_checkpoint(p)
    p.add_argument("--topk", type=int, default=5)
    p.add_argument("--backend", choices=["pytorch", "onnxruntime"], default="pytorch",
                   help="onnxruntime: the model exported to ONNX and run by ONNX Runtime (CPU)")
    t = p.add_argument_group("long videos: the model's window slid over the whole video")
    t.add_argument("--window", type=float, metavar="SECONDS",
                   help="window length (default: a dense clip's span, else 0.5 s per segment)")
    t.add_argument("--stride", type=float, metavar="SECONDS", help="default: half the window")
    t.add_argument("--smooth", type=int, default=1, metavar="K",
                   help="average each window's scores with its neighbours over K windows")
    t.add_argument("--timeline-dir", default="timelines",
                   help="where <video>.timeline.json and .csv go (default: timelines/)")
    t.add_argument("--out-video", metavar="OUT.mp4",
                   help="the video with each frame's label and score drawn on it")
    add_device(p)
    add_json(p)
    p.set_defaults(func=run)


def run(args) -> int:
    if args.window or args.stride or args.out_video or args.smooth > 1:
        return run_timeline(args)
    from ..engine.inference import predict_videos

    results = predict_videos(args.checkpoint, args.videos, topk=args.topk, device=args.device,
                             backend=args.backend)
    if args.json:
        print(json.dumps([{"path": r.path, "error": r.error,
                           "top": [{"class": c, "prob": p} for c, p in r.top or []]}
                          for r in results], indent=2))
    for r in results:
        if r.error:
            print(f"ERROR {r.error}", file=sys.stderr)
        elif not args.json:
            print(r.path)
            for name, prob in r.top:
                print(f"  {prob:7.2%}  {name}")
    return 1 if any(r.error for r in results) else 0


def run_timeline(args) -> int:
    from ..engine.timeline import predict_timelines, seconds
    from ..errors import CliError

    if args.backend != "pytorch":
        raise CliError("--window/--stride run the PyTorch model (--backend pytorch)")
    failed, reports = False, []
    for video, report, error in predict_timelines(
            args.checkpoint, args.videos, out_dir=args.timeline_dir, window=args.window,
            stride=args.stride, smoothing=args.smooth, topk=args.topk, device=args.device,
            out_video=args.out_video, progress=not args.json):
        if error:
            failed = True
            print(f"ERROR {error}", file=sys.stderr)
            continue
        reports.append(report)
        if args.json:
            continue
        print(f"{video}: {len(report['windows'])} windows of {report['window_s']:.2f} s every "
              f"{report['stride_s']:.2f} s")
        for gap in report["gaps"]:
            print(f"  corrupt stretch {seconds(gap['start'])}-{seconds(gap['end'])}: "
                  f"{gap['reason']}")
        for row in report["windows"][:50]:
            what = (f"{row['top'][0]['prob']:7.2%}  {row['top'][0]['class']}" if row["top"]
                    else f"no prediction: {row['missing']}")
            print(f"  {seconds(row['start'])}-{seconds(row['end'])}  {what}")
        if len(report["windows"]) > 50:
            print(f"  ... {len(report['windows']) - 50} more windows in the timeline files")
        print("  whole video: " + ", ".join(f"{t['class']} {t['prob']:.2%}"
                                            for t in report["video_top"]))
        print("  written: " + ", ".join(report["files"])
              + (f", {args.out_video} ({report['out_video_frames']} frames)"
                 if args.out_video else ""))
    if args.json:
        print(json.dumps(reports, indent=2))
    return 1 if failed else 0
