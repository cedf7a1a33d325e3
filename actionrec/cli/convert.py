"""``actionrec convert SRC --from LAYOUT --model NAME --out OUT.safetensors``: a checkpoint of
another code base (the GST or TSM authors', torchvision's) as an actionrec checkpoint."""

from __future__ import annotations

from ..config import COUNT
from .common import add_set


def register(sub) -> None:
    from ..models.layouts import LAYOUTS  # a plain dict: no torch import at parse time

    p = sub.add_parser("convert", help="convert a published checkpoint (GST, TSM, torchvision "
                                       "layouts) to an actionrec checkpoint")
    p.add_argument("source", metavar="SRC", help=".pth/.pth.tar (read with weights_only=True) "
                                                 "or .safetensors")
    p.add_argument("--from", dest="layout", default="auto", choices=["auto", *LAYOUTS],
                   help="the source's layout (default: detected from its keys)")
    p.add_argument("--model", help="our model to convert to (default: the --config's)")
    p.add_argument("--backbone", help="ResNet trunk, e.g. resnet50")
    p.add_argument("--frames", type=COUNT.flag, help="model.num_frames")
    p.add_argument("--config", help="a config whose model (and data, test) the checkpoint gets")
    add_set(p, "override config keys, e.g. model.options.alpha=0.25")
    p.add_argument("--classes", type=COUNT.flag,
                   help="classes (default: --labels' count, else the source's classifier)")
    p.add_argument("--labels", help="label map: one class name per line (default: numbered)")
    p.add_argument("--out", required=True, help="output .safetensors")
    p.add_argument("--partial", action="store_true",
                   help="write even if tensors besides the classifier do not carry over")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..config import read_config
    from ..engine.convert import convert_checkpoint
    from ..errors import CliError

    flags = [f"model.{key}={value}" for key, value in
             (("name", args.model), ("backbone", args.backbone), ("num_frames", args.frames))
             if value is not None]
    if not args.config and not args.model:
        raise CliError("convert: give --model NAME (with --backbone, --frames) or --config")
    cfg = read_config(args.config, [*flags, *args.set])
    conversion = convert_checkpoint(args.source, args.out, cfg, layout=args.layout,
                                    labels=args.labels, classes=args.classes,
                                    partial=args.partial)
    print(conversion.summary())
    gaps = conversion.gaps()
    print(f"written: {args.out} ({cfg.model.name} {cfg.model.backbone}, {cfg.model.num_frames} "
          f"frames)" + (f"; PARTIAL: {len(gaps)} differences from the source" if gaps else ""))
    return 0
