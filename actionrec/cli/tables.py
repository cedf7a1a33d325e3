"""``actionrec tables``: every params/FLOPs row of the papers beside our counts."""

from __future__ import annotations

import json

from ..errors import CliError
from .common import add_json, add_markdown, write_markdown


def register(sub) -> None:
    p = sub.add_parser("tables", help="every params/FLOPs row of the papers beside our counts")
    p.add_argument("--source", help="only rows whose source starts with this, e.g. 'GST Table 2'")
    add_markdown(p)
    add_json(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from ..analysis.paper import PAPER_ROWS, compare, render, rows_from

    rows = rows_from(args.source) if args.source else PAPER_ROWS
    if not rows:
        sources = sorted({r.source for r in PAPER_ROWS})
        raise CliError(f"no paper rows from {args.source!r}; sources: {', '.join(sources)}")
    results = compare(rows)
    if args.json:
        print(json.dumps([{"source": r["row"].source, "label": r["row"].label,
                           "input": r["row"].describe_input(), "paper_params_m": r["row"].params_m,
                           "params_m": r["params_m"], "paper_gmacs": r["row"].gmacs,
                           "gmacs": r["gmacs"], "reading": r["row"].reading,
                           "unbuilt": r["row"].unbuilt} for r in results], indent=2))
    else:
        print(render(results))
    if args.markdown:
        write_markdown(args, "Parameters and MACs: the papers' tables beside actionrec's models",
                       render(results, markdown=True))
    return 0
