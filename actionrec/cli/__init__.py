"""The ``actionrec`` command line: one module per command, each with its arguments beside its
handler (``register(subparsers)`` adds the command, ``run(args)`` carries it out by calling into
the library). Flags that several commands take come from ``common``. Handlers parse, delegate and
print; what they compute lives in data/, engine/, analysis/ and demo.py.
"""

from __future__ import annotations

import argparse
import logging
import re
import sys

from ..errors import ActionrecError, Interrupted
from . import (
    analyze,
    bench,
    cam,
    convert,
    data,
    demo,
    diagnose,
    export,
    features,
    flops,
    models,
    predict,
    serve,
    tables,
    test,
    train,
    zoo,
)

OUT_OF_MEMORY = ("can't allocate memory", "out of memory")  # PyTorch's CPU and CUDA allocators
COMMANDS = (data, train, test, predict, models, flops, tables, bench, diagnose, export, features,
            analyze, cam, demo, zoo, convert, serve)


# the flag of each option that library errors name (errors.ActionrecError.worded)
FLAGS = {"device": "--device or runtime.device", "resume": "--resume", "overwrite": "--overwrite",
         "work_dir": "--work-dir",
         "layout": "--from", "classes": "--classes", "labels": "--labels", "partial": "--partial",
         "model": "--model", "backbone": "--backbone", "data_file": "--data DATA_YAML",
         "configs": "--configs", "pairs": "--pairs", "size": "--size", "frames": "--frames",
         "videos": "--videos"}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="actionrec", description="Efficient video action "
                                     "recognition: StNet, STM, GST and MSTI-Net in PyTorch.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    from ..runtime import tune_allocator

    tune_allocator()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    argv = sys.argv[1:] if argv is None else list(argv)
    # the invocation travels in the namespace (Markdown reports name the command that wrote them)
    invocation = argparse.Namespace(command_line=" ".join(["actionrec", *argv]))
    args = build_parser().parse_args(argv, namespace=invocation)
    try:
        return args.func(args)
    except Interrupted as e:  # Ctrl-C: one line saying where the work is
        print(f"actionrec: {e.worded(FLAGS)}", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("actionrec: interrupted", file=sys.stderr)
        return 130
    except (ActionrecError, FileNotFoundError) as e:  # user errors: one line, no traceback
        text = e.worded(FLAGS) if isinstance(e, ActionrecError) else e
        print(f"actionrec: error: {text}", file=sys.stderr)
        return 2
    except (MemoryError, RuntimeError) as e:  # a size from a config, checkpoint or flag
        if not isinstance(e, MemoryError) and not any(s in str(e) for s in OUT_OF_MEMORY):
            raise
        asked = re.search(r"allocate (\d+) bytes", str(e))
        size = f" ({int(asked[1]) / 2**30:.1f} GiB at once)" if asked else ""
        print(f"actionrec: error: out of memory{size}: a size in the config, checkpoint or flags "
              f"too large for this machine?", file=sys.stderr)
        return 2
