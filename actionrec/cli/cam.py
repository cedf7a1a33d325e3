"""``actionrec cam CKPT VIDEO --out OUT.png``: class activation maps (StNet Fig. 4)."""

from __future__ import annotations

from pathlib import Path

from ..errors import CliError
from .common import add_checkpoint, add_device


def register(sub) -> None:
    p = sub.add_parser("cam", help="class activation maps over the sampled frames (StNet Fig. 4)")
    add_checkpoint(p, positional=True)
    p.add_argument("video", metavar="VIDEO")
    p.add_argument("--class", dest="class_name", help="class to explain (default: predicted)")
    p.add_argument("--out", required=True, help="output PNG")
    add_device(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from ..analysis.cam import grad_cam, save_overlay, to_images
    from ..engine.recognizer import load

    recognizer = load(args.checkpoint, device=args.device)
    cfg, names, model = recognizer.config, recognizer.classes, recognizer.model
    clip = recognizer.views(args.video, clips=1, crops=1)[0]
    index = None
    if args.class_name is not None:
        if args.class_name not in names:
            raise CliError(f"--class {args.class_name!r} is not a class of this checkpoint; "
                           f"classes: {', '.join(names[:20])}{' ...' if len(names) > 20 else ''}")
        index = names.index(args.class_name)
    maps, index = grad_cam(model, clip, index)
    path = save_overlay(to_images(clip.cpu(), maps), maps, args.out,
                        f"{Path(args.video).name}: {cfg.model.name}, class '{names[index]}'")
    print(f"wrote {path}: {len(maps)} maps for class '{names[index]}'")
    return 0
