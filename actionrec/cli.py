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


# -- engine ----------------------------------------------------------------------------------------
def _config(args):
    from .config import load_config

    cfg = load_config(args.config, args.set or [])
    if getattr(args, "work_dir", None):
        cfg.work_dir = args.work_dir
    return cfg


def cmd_train(args) -> int:
    from .engine.train import train

    cfg = _config(args)
    result = train(cfg, resume=args.resume)
    print(f"best {'val top-1' if cfg.data.val_list else 'train acc'}: {100 * result['best']:.2f} % "
          f"(epoch {result['best_epoch']}); checkpoints in {result['work_dir']}")
    return 0


def cmd_test(args) -> int:
    from .engine.evaluate import format_metrics
    from .engine.inference import evaluate_checkpoint

    cfg = _config(args)
    metrics, paths = evaluate_checkpoint(cfg, args.checkpoint, out_dir=args.out)
    if args.json:
        print(json.dumps({k: v for k, v in metrics.items() if k != "confusion"}, indent=2))
    else:
        print(format_metrics(metrics))
        print(f"views: {cfg.test.clips} clips x {cfg.test.crops} crops; skipped: "
              f"{len(metrics['skipped'])}")
        print("reports: " + ", ".join(str(p) for p in paths.values()))
    return 0


def cmd_predict(args) -> int:
    from .engine.inference import predict_videos

    results = predict_videos(args.checkpoint, args.videos, topk=args.topk)
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


def cmd_models(args) -> int:
    from .models.registry import describe_models

    print(describe_models())
    return 0


# -- demo ------------------------------------------------------------------------------------------
DEMO_CONFIG = Path(__file__).resolve().parent.parent / "configs" / "demo" / "tsn_r18_synth.yaml"


def cmd_demo(args) -> int:
    from .config import load_config
    from .data.synthetic import SynthSpec, generate
    from .engine.evaluate import format_metrics
    from .engine.inference import evaluate_checkpoint
    from .engine.train import train

    work = Path(args.work_dir)
    synth = work / "synth"
    summary = generate(synth, SynthSpec(seed=args.seed))
    print_synth_summary(synth, summary)
    cfg = load_config(DEMO_CONFIG, [f"data.root={synth}", f"work_dir={work / 'tsn_r18'}",
                                    f"train.seed={args.seed}", *(args.set or [])])
    print(f"\ntraining {cfg.model.name}-{cfg.model.backbone} ({cfg.model.num_frames} frames, "
          f"{cfg.data.size}x{cfg.data.size}) for {cfg.train.epochs} epochs ...", flush=True)
    result = train(cfg)
    metrics, paths = evaluate_checkpoint(cfg, result["work_dir"] / "best.safetensors")
    print("\nvalidation set, best checkpoint (1 clip x 1 crop):")
    print(format_metrics(metrics))
    print("\nTSN averages per-frame scores, so it can tell the pairs apart but not the two "
          "directions within a pair:\nits reversal-pair accuracy stays near chance (50 %).")
    print(f"\ncheckpoint: {result['work_dir'] / 'best.safetensors'}")
    print(f"logs:       {result['work_dir'] / 'log.jsonl'}, TensorBoard: {result['work_dir'] / 'tb'}")
    print(f"plots:      {paths['confusion_png']}")
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
    synth.add_argument("--videos", type=int, default=600, help="total number of videos")
    synth.add_argument("--frames", type=int, default=32)
    synth.add_argument("--size", type=int, default=64)
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--workers", type=int, default=None, help="encoding processes")
    synth.set_defaults(func=cmd_data_synth)

    tr = sub.add_parser("train", help="train a model from a YAML config")
    tr.add_argument("config", metavar="CONFIG")
    tr.add_argument("--set", nargs="+", metavar="KEY=VALUE", help="override config keys")
    tr.add_argument("--work-dir", help="output folder (default: the config's work_dir)")
    tr.add_argument("--resume", action="store_true", help="continue from the last checkpoint")
    tr.set_defaults(func=cmd_train)

    te = sub.add_parser("test", help="evaluate a checkpoint with the config's test protocol")
    te.add_argument("config", metavar="CONFIG")
    te.add_argument("--checkpoint", required=True)
    te.add_argument("--set", nargs="+", metavar="KEY=VALUE", help="e.g. test.clips=10 test.crops=3")
    te.add_argument("--out", help="report folder (default: next to the checkpoint)")
    te.add_argument("--json", action="store_true")
    te.set_defaults(func=cmd_test)

    pr = sub.add_parser("predict", help="top-k classes of video files")
    pr.add_argument("videos", nargs="+", metavar="VIDEO")
    pr.add_argument("--checkpoint", required=True, help="an actionrec .safetensors checkpoint")
    pr.add_argument("--topk", type=int, default=5)
    pr.add_argument("--json", action="store_true")
    pr.set_defaults(func=cmd_predict)

    models = sub.add_parser("models", help="list the registered models and their options")
    models.set_defaults(func=cmd_models)

    demo = sub.add_parser("demo", help="the main job on the embedded synthetic dataset")
    demo.add_argument("--work-dir", default="work_dirs/demo")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--set", nargs="+", metavar="KEY=VALUE", help="override demo config keys")
    demo.set_defaults(func=cmd_demo)
    return p


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ActionrecError, FileNotFoundError) as e:  # user errors: one line, no traceback
        print(f"actionrec: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
