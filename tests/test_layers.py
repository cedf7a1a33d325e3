"""The package's floors: no module imports a package above its own, and no test imports a test
module (shared helpers live in conftest.py files or tests/helpers.py). Imports are read from the
source (``ast``), function-level ones included."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "actionrec"

# Each top-level module or package of actionrec and its floor; a module imports its own floor or lower.
FLOORS = {
    **dict.fromkeys(("errors", "validate", "config", "files", "runtime"), 0),  # the base
    **dict.fromkeys(("models", "data", "report", "export"), 1),
    "engine": 2,
    **dict.fromkeys(("analysis", "serve", "demo"), 3),
    **dict.fromkeys(("cli", "__main__", "__init__"), 4),
}


def module_name(path: Path, root: Path) -> list[str]:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    return parts[:-1] if parts[-1] == "__init__" and len(parts) > 1 else parts


def imported(path: Path, root: Path) -> list[tuple[int, list[str]]]:
    """``(line, absolute dotted name split)`` of every import in ``path`` (a module under
    ``root``'s parent), relative ones resolved; ``from X import y`` gives ``X.y``."""
    name = module_name(path, root)
    package = name if path.name == "__init__.py" else name[:-1]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name.split(".")) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = (package[: len(package) - node.level + 1] if node.level else []) \
                + (node.module.split(".") if node.module else [])
            found += [(node.lineno, base + [a.name]) for a in node.names]
    return found


def floor(parts: list[str]) -> tuple[str, int]:
    """The top-level unit of ``actionrec.<unit>...`` and its floor (a name the package's
    ``__init__`` defines is the ``__init__``'s)."""
    unit = parts[1] if len(parts) > 1 else "__init__"
    if not ((PACKAGE / unit).is_dir() or (PACKAGE / f"{unit}.py").is_file()):
        unit = "__init__"
    assert unit in FLOORS, f"actionrec.{unit} has no floor in tests/test_layers.py FLOORS"
    return unit, FLOORS[unit]


def upward_imports() -> list[str]:
    """``file:line: unit (floor) imports unit (floor)`` for every import of a higher floor."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        unit, level = floor(module_name(path, PACKAGE))
        for line, target in imported(path, PACKAGE):
            if target[0] != "actionrec":
                continue
            other, other_level = floor(target)
            if other_level > level:
                found.append(f"{path.relative_to(REPO)}:{line}: {unit} ({level}) imports "
                             f"{other} ({other_level})")
    return found


def test_every_unit_has_a_floor():
    units = {p.stem if p.is_file() else p.name for p in PACKAGE.iterdir()
             if (p.suffix == ".py" or (p / "__init__.py").is_file())}
    assert units <= set(FLOORS), sorted(units - set(FLOORS))


def test_no_module_imports_a_higher_floor():
    """models, data (and report, export) over the base; engine over them; analysis, serve and
    demo over the engine; the CLI on top."""
    assert upward_imports() == []


def test_tests_import_no_test_module():
    """A test file imports helpers from a conftest.py or tests/helpers.py, never from another
    test file (pytest would collect its tests twice and their fixtures would leak)."""
    tests = REPO / "tests"
    found = [f"{path.relative_to(REPO)}:{line}: {'.'.join(target)}"
             for path in sorted(tests.rglob("*.py"))
             for line, target in imported(path, tests)
             if any(part.startswith("test_") for part in target[:-1])
             or (target[0] == "tests" and target[-1].startswith("test_"))]
    assert found == []


@pytest.mark.parametrize(("source", "target"), [
    ("from ..engine.evaluate import x", ["actionrec", "engine", "evaluate", "x"]),
    ("from . import distributed", ["actionrec", "analysis", "distributed"]),
    ("import actionrec.cli", ["actionrec", "cli"]),
])
def test_relative_imports_resolve(tmp_path, source, target):
    path = tmp_path / "actionrec" / "analysis" / "m.py"
    path.parent.mkdir(parents=True)
    path.write_text(source + "\n")
    assert imported(path, tmp_path / "actionrec") == [(1, target)]


# below the CLI and the server, messages never name a flag: an error names the option as
# ``{option}`` and the CLI words it (errors.ActionrecError.worded); what stays allowed is a
# command line for the user to run (`actionrec ...` quoted, or a text that is one), torchrun's
# own flags and config.py's --set, the name of its own override syntax (read_config's overrides)
LIBRARY = ("errors.py", "validate.py", "files.py", "runtime.py", "export.py", "config.py",
           "demo.py", "models", "data", "report", "engine", "analysis")
FLAG = re.compile(r"(?<![\w-])--[a-z][\w-]*")
COMMAND_LINE = re.compile(r"`(actionrec|torchrun) [^`]*`|^\s*(next:\s*)?actionrec [a-z].*|"
                          r"torchrun --\w+")


def flags_named(path: Path) -> list[str]:
    """``file:line: flag`` for each flag in a string of ``path`` that is not a docstring (an
    f-string read whole, its fields as ``{}``)."""
    tree = ast.parse(path.read_text(), str(path))
    skip = {id(node.body[0].value) for node in ast.walk(tree)
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef))
            and node.body and isinstance(node.body[0], ast.Expr)}
    skip |= {id(v) for node in ast.walk(tree) if isinstance(node, ast.JoinedStr)
             for v in node.values}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            text = "".join(v.value if isinstance(v, ast.Constant) else "{}" for v in node.values)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip:
            text = node.value
        else:
            continue
        flags = [f for f in FLAG.findall(COMMAND_LINE.sub("", text))
                 if not (path.name == "config.py" and f == "--set")]
        found += [f"{path.relative_to(REPO)}:{node.lineno}: {f}" for f in flags]
    return found


def test_library_messages_name_no_flag():
    paths = [p for unit in LIBRARY for p in sorted((PACKAGE / unit).rglob("*.py"))
             if (PACKAGE / unit).is_dir()] + [PACKAGE / u for u in LIBRARY if u.endswith(".py")]
    assert [hit for path in paths for hit in flags_named(path)] == []


def test_an_error_names_its_options_as_each_caller_gives_them():
    from actionrec.cli import FLAGS
    from actionrec.errors import ActionrecError

    error = ActionrecError("use {resume} to continue it, another {work_dir}",
                           {"resume": "resume=True", "work_dir": "work_dir"})
    assert str(error) == "use resume=True to continue it, another work_dir"
    assert error.worded(FLAGS) == "use --resume to continue it, another --work-dir"
    assert ActionrecError("a {literal} brace").worded(FLAGS) == "a {literal} brace"
