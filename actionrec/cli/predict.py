"""``actionrec predict VIDEO ... --checkpoint CKPT``: top-k classes of video files; with
``--window/--stride`` (or ``--timeline-dir``, ``--out-video``) a timeline of a long video; with
``--stream SOURCE`` a rolling prediction over a live source."""

from __future__ import annotations

import json
import sys

from ..engine.stream import IDLE_SECONDS, RECONNECT
from ..engine.windows import SMOOTH_WINDOWS, TOPK, WINDOW_SECONDS
from .common import add_checkpoint, add_device, add_json


def register(sub) -> None:
    p = sub.add_parser("predict", help="top-k classes of video files, or a long video's timeline")
    p.add_argument("videos", nargs="*", metavar="VIDEO")
    add_checkpoint(p)
    p.add_argument("--topk", type=TOPK.flag, default=5, metavar="K",
                   help="classes listed per prediction (default 5; at most the model's classes)")
    p.add_argument("--backend", choices=["pytorch", "onnxruntime"], default="pytorch",
                   help="onnxruntime: the model exported to ONNX and run by ONNX Runtime (CPU)")
    t = p.add_argument_group("long videos: the model's window slid over the whole video")
    t.add_argument("--window", type=WINDOW_SECONDS.flag, metavar="SECONDS",
                   help="window length (default: a dense clip's span, else 0.5 s per segment)")
    t.add_argument("--stride", type=WINDOW_SECONDS.flag, metavar="SECONDS",
                   help="default: half the window")
    t.add_argument("--smooth", type=SMOOTH_WINDOWS.flag, default=1, metavar="K",
                   help="average each window's scores with its neighbours over K windows")
    t.add_argument("--timeline-dir", default="timelines",
                   help="where <video>.timeline.json and .csv go (default: timelines/)")
    t.add_argument("--out-video", metavar="OUT.mp4",
                   help="the video with each frame's label and score drawn on it")
    s = p.add_argument_group("live input: a rolling prediction every stride (JSON lines with --json)")
    s.add_argument("--stream", metavar="SOURCE",
                   help="- (stdin: MPEG-TS, MKV, NUT), an rtsp:// or http:// URL, /dev/videoN, or a "
                        "file being written; ends at the end of the stream or on Ctrl-C")
    s.add_argument("--reconnect", type=RECONNECT.flag, default=3, metavar="N",
                   help="times in a row a dropped network source is reopened (default 3)")
    s.add_argument("--idle-timeout", type=IDLE_SECONDS.flag, default=10.0, metavar="SECONDS",
                   help="silence after which a network source has dropped and a followed file "
                        "has ended (default 10)")
    add_device(p)
    add_json(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from ..errors import CliError

    if bool(args.videos) == bool(args.stream):
        raise CliError("give VIDEO files or --stream SOURCE (one of the two)")
    if args.stream:
        return run_stream(args)
    if args.window is not None or args.stride is not None or args.out_video or args.smooth > 1:
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
    from ..engine.inference import predict_timelines
    from ..engine.timeline_report import seconds
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
            print(f"  {row_line(row)}")
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


def row_line(row: dict) -> str:
    from ..engine.timeline_report import seconds

    what = (f"{row['top'][0]['prob']:7.2%}  {row['top'][0]['class']}" if row["top"]
            else f"no prediction: {row['missing']}")
    return f"{seconds(row['start'])}-{seconds(row['end'])}  {what}"


def run_stream(args) -> int:
    """One line (or JSON line) per window as it is scored; Ctrl-C or the end of the stream stop
    it with a summary on stderr and exit status 0."""
    from ..engine.recognizer import load
    from ..engine.stream import causal_smooth
    from ..engine.timeline_report import window_row
    from ..errors import CliError

    if args.backend != "pytorch" or args.out_video:
        raise CliError("--stream runs the PyTorch model and writes no --out-video")
    recognizer = load(args.checkpoint, device=args.device)
    names = recognizer.classes
    windows = recognizer.stream(args.stream, window=args.window, stride=args.stride,
                                reconnect=args.reconnect, idle_timeout=args.idle_timeout,
                                log=lambda line: print(line, file=sys.stderr, flush=True))
    count, why = 0, "end of stream"
    try:
        for w in causal_smooth(windows, args.smooth):
            row = window_row(w, names, args.topk)
            print(json.dumps(row) if args.json else row_line(row), flush=True)
            count += 1
    except KeyboardInterrupt:
        why = "stopped (Ctrl-C)"
    finally:
        windows.close()
    print(f"{args.stream}: {why} after {count} windows", file=sys.stderr, flush=True)
    return 0
