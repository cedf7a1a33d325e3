"""Flags that several commands take, each defined once, and the steps their handlers share."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..config import COUNT, Config


def add_config(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", metavar="CONFIG", help="YAML config (configs/)")
    parser.add_argument("--data", metavar="DATA_YAML",
                        help="a prepared dataset's data.yaml (`actionrec data prepare`): replaces "
                             "the config's dataset (root, lists, label map, kind)")


def add_set(parser: argparse.ArgumentParser, help: str = "override config keys") -> None:
    """``--set KEY=VALUE ...``, repeatable: every occurrence adds to the list."""
    parser.add_argument("--set", action="extend", nargs="+", default=[], metavar="KEY=VALUE",
                        help=f"{help} (repeatable)")


def add_checkpoint(parser: argparse.ArgumentParser, *, positional: bool = False) -> None:
    what = "an actionrec .safetensors checkpoint"
    if positional:
        parser.add_argument("checkpoint", metavar="CHECKPOINT", help=what)
    else:
        parser.add_argument("--checkpoint", required=True, help=what)


def add_device(parser: argparse.ArgumentParser, default: str | None = "auto") -> None:
    """``--device``: where the model runs; a checkpoint's stored ``runtime.device`` never decides."""
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default=default,
                        help="auto: CUDA where there is one" + ("" if default else
                                                             " (default: the config's runtime.device)"))


def add_json(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")


def add_markdown(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--markdown", metavar="FILE", help="also write the table as Markdown")


def add_model_input(parser: argparse.ArgumentParser, default: str) -> None:
    """``--backbone --frames --size --classes --opt``: a model and the input to count or time it
    at; ``default`` says where unset values come from."""
    parser.add_argument("--backbone", help=f"ResNet trunk (default: {default})")
    parser.add_argument("--frames", type=COUNT.flag, help=f"frames, segments or vectors ({default})")
    parser.add_argument("--size", type=COUNT.flag, help=f"crop side ({default})")
    parser.add_argument("--classes", type=COUNT.flag, help=f"classes ({default})")
    parser.add_argument("--opt", action="extend", nargs="+", default=[], metavar="KEY=VALUE",
                        help="model options, see `actionrec models` (repeatable)")


def model_options(args: argparse.Namespace) -> dict:
    from ..config import parse_overrides

    return parse_overrides(args.opt)


def read_config(args: argparse.Namespace) -> Config:
    """The config of ``args.config`` with ``--set`` and, where the command has it, ``--work-dir``."""
    from ..config import read_config as load

    overrides = list(args.set)
    if getattr(args, "device", None):
        overrides.append(f"runtime.device={args.device}")
    cfg = load(args.config, overrides, data_file=getattr(args, "data", None))
    if getattr(args, "work_dir", None):
        cfg.work_dir = args.work_dir
    return cfg


def write_markdown(args: argparse.Namespace, title: str, body: str) -> None:
    """``--markdown FILE``: the table under a title and the command line that wrote it, written
    atomically; a file that cannot be written is one line naming it."""
    from ..errors import CliError
    from ..files import atomic_write, make_folder

    path = Path(args.markdown)
    text = f"# {title}\n\nWritten by `{args.command_line}`.\n\n{body}\n"
    try:
        make_folder(path.parent, error=CliError)
        atomic_write(path, text.encode(), error=CliError)
    except CliError as e:
        raise CliError(f"--markdown {e}") from None
    print(f"\nwritten: {path}", file=sys.stderr)
