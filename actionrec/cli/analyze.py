"""``actionrec analyze gst-channels | frame-predictions``: the papers' analyses of a model."""

from __future__ import annotations

from pathlib import Path

from ..errors import CliError
from ..validate import Range
from .common import add_checkpoint


def register(sub) -> None:
    p = sub.add_parser("analyze", help="the papers' analyses of a trained model")
    asub = p.add_subparsers(dest="analysis", required=True, metavar="ANALYSIS")
    gc = asub.add_parser("gst-channels", help="BN scales of spatial vs temporal channels "
                                              "per GST block (GST Fig. 4)")
    add_checkpoint(gc, positional=True)
    gc.add_argument("--out", default="gst_channels", help="output folder")
    gc.set_defaults(func=run_gst_channels)
    fp = asub.add_parser("frame-predictions", help="top classes per frame of one video "
                                                   "(GST Fig. 5)")
    add_checkpoint(fp, positional=True)
    fp.add_argument("video", metavar="VIDEO")
    fp.add_argument("--out", help="output PNG (a CSV is written beside it)")
    fp.add_argument("--top", type=Range(1, 1000, integer=True).flag, default=5)
    fp.set_defaults(func=run_frame_predictions)


def run_gst_channels(args) -> int:
    from ..analysis.gst_channels import write_channel_report
    from ..engine.recognizer import load

    model = load(args.checkpoint, device="cpu", fold_bn=False).model  # BN scales
    try:
        paths = write_channel_report(model, args.out)
    except ValueError as e:
        raise CliError(f"{args.checkpoint}: {e}") from None
    print(f"wrote {paths['png']} and {paths['csv']}")
    return 0


def run_frame_predictions(args) -> int:
    from ..analysis.frame_predictions import frame_probabilities, write_frame_predictions
    from ..engine.recognizer import load

    recognizer = load(args.checkpoint)
    cfg, names = recognizer.config, recognizer.classes
    try:
        probs = frame_probabilities(recognizer.model, recognizer.views(args.video, clips=1, crops=1)[0])
    except ValueError as e:
        raise CliError(f"{args.checkpoint}: {e}") from None
    out = Path(args.out or Path(args.checkpoint).parent / f"frames_{Path(args.video).stem}.png")
    paths = write_frame_predictions(probs, names, out, top=args.top,
                                    title=f"{Path(args.video).name}: {cfg.model.name}")
    print(f"wrote {paths['png']} and {paths['csv']}")
    return 0
