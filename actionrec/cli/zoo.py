"""``actionrec zoo``: every recipe of configs/, what it reproduces and what a run costs."""

from __future__ import annotations

from .common import add_markdown, write_markdown


def register(sub) -> None:
    p = sub.add_parser("zoo", help="every recipe: paper row, top-1 target, params, GMACs, commands")
    p.add_argument("--configs", default="configs", help="recipe folder (default: configs)")
    add_markdown(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from ..analysis.zoo import render, zoo_rows

    rows = zoo_rows(args.configs)
    print(render(rows))
    if args.markdown:
        write_markdown(args, "Model zoo: the recipes of configs/", render(rows, markdown=True))
    return 0
