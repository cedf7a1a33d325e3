"""``actionrec models``: the registered models, their inputs and options."""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("models", help="list the registered models, their inputs and options")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..models.registry import describe_models

    print(describe_models())
    return 0
