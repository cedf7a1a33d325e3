"""``actionrec features extract``: per-frame features of a dataset (StNet Table 1 heads)."""

from __future__ import annotations

from .common import add_checkpoint, add_config, add_set, read_config


def register(sub) -> None:
    p = sub.add_parser("features", help="per-frame features of a dataset (StNet Table 1 heads)")
    fsub = p.add_subparsers(dest="features_command", required=True, metavar="SUBCOMMAND")
    x = fsub.add_parser("extract", help="dump pooled per-frame features of the config's lists")
    add_config(x)
    add_checkpoint(x)
    x.add_argument("--out", required=True)
    x.add_argument("--splits", nargs="+", default=["train", "val"], choices=["train", "val", "test"])
    add_set(x)
    x.set_defaults(func=run_extract)


def run_extract(args) -> int:
    from ..engine.features import extract_features

    lists = extract_features(read_config(args), args.checkpoint, args.out,
                             splits=tuple(args.splits))
    for split, path in lists.items():
        print(f"{split}: {path} ({len(path.read_text().splitlines())} feature files)")
    print(f"train a head on them with data.kind=features data.root={args.out} "
          "data.train_list=train.txt data.val_list=val.txt (e.g. model.name=txb)")
    return 0
