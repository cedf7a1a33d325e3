"""The flags several commands share are one definition: here, that they behave alike."""

import argparse

import pytest

from actionrec.cli import build_parser
from actionrec.cli.common import write_markdown
from actionrec.errors import CliError

# every command that takes --set, with its required arguments
TAKES_SET = {
    "train": ["train", "c.yaml"],
    "test": ["test", "c.yaml", "--checkpoint", "k"],
    "diagnose": ["diagnose", "c.yaml", "--checkpoint", "k"],
    "features extract": ["features", "extract", "c.yaml", "--checkpoint", "k", "--out", "o"],
    "demo": ["demo"],
    "convert": ["convert", "src.pth", "--model", "tsm", "--out", "o.safetensors"],
    "export": ["export", "k", "--out", "o.onnx", "--int8", "c.yaml"],
    "serve": ["serve", "--checkpoint", "k"],
}


def _commands(parser: argparse.ArgumentParser, prefix: str = ""):
    """(command path, parser) of every leaf command."""
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield prefix.strip(), parser
    for sub in subs:
        for name, child in sub.choices.items():
            yield from _commands(child, f"{prefix} {name}")


def test_repeated_set_accumulates_on_every_command_that_takes_it():
    parser = build_parser()
    with_set = {name for name, p in _commands(parser)
                if any("--set" in a.option_strings for a in p._actions)}
    assert with_set == set(TAKES_SET)
    for argv in TAKES_SET.values():
        args = parser.parse_args([*argv, "--set", "a=1", "b=2", "--set", "c=3"])
        assert args.set == ["a=1", "b=2", "c=3"]
        assert parser.parse_args(argv).set == []


def test_repeated_opt_accumulates():
    args = build_parser().parse_args(["flops", "gst", "--opt", "alpha=0.5", "--opt", "beta=1"])
    assert args.opt == ["alpha=0.5", "beta=1"]



def test_markdown_that_cannot_be_written_is_one_line(tmp_path):
    args = argparse.Namespace(markdown=tmp_path, command_line="actionrec zoo")  # a folder
    with pytest.raises(CliError, match=rf"^--markdown {tmp_path}: cannot be written: Is a "
                                       r"directory$"):
        write_markdown(args, "Zoo", "| a |")
    args.markdown = tmp_path / "new" / "zoo.md"
    write_markdown(args, "Zoo", "| a |")
    assert args.markdown.read_text() == "# Zoo\n\nWritten by `actionrec zoo`.\n\n| a |\n"
    assert [p.name for p in (tmp_path / "new").iterdir()] == ["zoo.md"]  # no temporary left


def test_a_size_too_large_for_the_machine_is_one_line():
    """An allocation PyTorch cannot make (here a 1024-frame 4096x4096 example clip, in a process
    limited to 6 GiB of address space) is one line, not a traceback."""
    import resource
    import subprocess
    import sys

    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (6 * 2**30, 6 * 2**30))

    done = subprocess.run([sys.executable, "-m", "actionrec", "flops", "tsn", "--frames", "1024",
                           "--size", "4096"], capture_output=True, text=True, timeout=120,
                          preexec_fn=limit)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines()[-1] == (
        "actionrec: error: out of memory (192.0 GiB at once): a size in the config, checkpoint or "
        "flags too large for this machine?"), done.stderr
    assert "Traceback" not in done.stderr
