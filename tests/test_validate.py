"""The shared validation layer (actionrec/validate.py) and that every command's numeric flags go
through it."""

import argparse
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actionrec.cli import build_parser
from actionrec.validate import InvalidInput, Range, inside, load_json, load_yaml, read_text
from tests.conftest import REPO

NON_FINITE = ("nan", "inf", "-inf", "NaN", "Infinity", "1e999")


def numeric_flags():
    """(command, flag names, type) of every option of every command typed int, float or a Range's
    ``flag``."""
    found = []

    def walk(parser, prefix):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    walk(sub, f"{prefix} {name}".strip())
            elif action.type in (int, float) or isinstance(getattr(action.type, "__self__", None),
                                                           Range):
                found.append((prefix, action.option_strings or [action.dest], action.type))

    walk(build_parser(), "")
    return found


def test_every_numeric_flag_goes_through_a_range():
    flags = numeric_flags()
    plain = [f"{command} {'/'.join(names)}" for command, names, kind in flags if kind in (int, float)]
    assert not plain, f"numeric flags typed int/float, not validate.Range: {plain}"
    assert len(flags) >= 20  # the walk reached the commands' flags


@pytest.mark.parametrize("text", NON_FINITE)
def test_no_numeric_flag_takes_a_non_finite_value(text):
    for command, names, parse in numeric_flags():
        with pytest.raises((argparse.ArgumentTypeError, ValueError)):
            parse(text)
            pytest.fail(f"{command} {names[0]} took {text}")


def test_a_bad_flag_is_one_line_naming_it(capsys):
    with pytest.raises(SystemExit) as e:
        build_parser().parse_args(["bench", "--rounds", "nan"])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == ("actionrec bench: error: argument --rounds: 'nan' is not allowed; "
                       "expected an integer in [1, 1000]")


@settings(max_examples=300, deadline=None)
@given(lo=st.one_of(st.none(), st.floats(-1e6, 1e6)), span=st.floats(0, 1e6),
       lo_open=st.booleans(), integer=st.booleans(),
       value=st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(),
                       st.booleans(), st.text(max_size=5), st.none()))
def test_a_range_passes_exactly_the_finite_numbers_inside_it(lo, span, lo_open, integer, value):
    hi = None if lo is None else lo + span
    r = Range(lo, hi, lo_open=lo_open, integer=integer)
    number = isinstance(value, int | float) and not isinstance(value, bool)
    expected = (number and (not integer or isinstance(value, int)) and math.isfinite(value)
                and (lo is None or (value > lo if lo_open else value >= lo))
                and (hi is None or value <= hi))
    if expected:
        assert r.check(value, "k") == (value if integer else float(value))
    else:
        with pytest.raises(InvalidInput, match=r"^k: .* is not allowed; expected "):
            r.check(value, "k")


def test_a_query_gets_the_same_bounds():
    assert Range(0, 60, lo_open=True).query() == {"allow_inf_nan": False, "gt": 0, "le": 60}
    assert Range(1, integer=True).query() == {"ge": 1}


@pytest.mark.parametrize("relative", ["../x", "a/../../x", "/etc/passwd", "link/x"])
def test_inside_refuses_paths_that_leave_the_folder(tmp_path, relative):
    (tmp_path / "root").mkdir()
    (tmp_path / "root" / "link").symlink_to(tmp_path)
    with pytest.raises(InvalidInput, match="^list.txt:3: "):
        inside(tmp_path / "root", relative, "list.txt:3")


def test_inside_keeps_paths_inside(tmp_path):
    assert inside(tmp_path, "a/../b/c.mp4", "x") == tmp_path / "a/../b/c.mp4"


def billion_laughs(levels: int = 9, width: int = 9) -> str:
    text = "a0: &a0 [" + ", ".join(["lol"] * width) + "]\n"
    for i in range(1, levels):
        text += f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * width) + "]\n"
    return text


@pytest.mark.parametrize("text, message", [
    (billion_laughs(), "expands to more than"),
    ("a: &x [*x]\n", "an alias that contains itself"),
    ("[" * 50000 + "]" * 50000, ":1: nested deeper than 64 levels"),
    ("train:\n  lr: 1\n  epochs: 2\n  lr: 3\n", ":4: key 'lr' is given twice (first on line 2)"),
    ("a: [1, 2\n", "not valid YAML"),
    ("!!python/object:os.system {}\n", "not valid YAML"),
])
def test_load_yaml_refuses_with_one_line(text, message):
    with pytest.raises(InvalidInput, match="^cfg.yaml") as e:
        load_yaml(text, "cfg.yaml")
    assert message in str(e.value) and "\n" not in str(e.value)


def test_load_yaml_reads_aliases_of_ordinary_size():
    assert load_yaml("a: &x [1, 2]\nb: *x\n", "c") == {"a": [1, 2], "b": [1, 2]}
    assert load_yaml(billion_laughs(3, 3), "c")["a2"][2][2][2] == "lol"


@pytest.mark.parametrize("encoding", ["latin-1", "utf-16"])
def test_read_text_names_the_file_and_line_of_a_byte_that_is_not_utf8(tmp_path, encoding):
    path = tmp_path / "cfg.yaml"
    path.write_bytes("train:\n  lr: 0.1  # café\n".encode(encoding))
    with pytest.raises(InvalidInput, match=rf"^{path}:\d+: byte 0x.. is not UTF-8"):
        read_text(path)


def test_read_text_drops_a_bom(tmp_path):
    (tmp_path / "a").write_bytes("\ufeffx: 1\n".encode())
    assert read_text(tmp_path / "a") == "x: 1\n"


@pytest.mark.parametrize("text, message", [
    ('{"a": ' * 200000 + "1" + "}" * 200000, "nested more than 64 deep"),
    ('{"a": ' * 70 + "1" + "}" * 70, "nested more than 64 deep"),
    ("[NaN]", "NaN is not a number JSON allows"),
    ('{"a": 1', "not valid JSON"),
])
def test_load_json_refuses_with_one_line(text, message):
    with pytest.raises(InvalidInput, match="^meta: ") as e:
        load_json(text, "meta")
    assert message in str(e.value)


# (module, call) pairs allowed to parse without validate: JSON its own processes wrote in memory
PARSERS_ALLOWED = {("engine/distributed.py", "json.loads")}
PARSERS = {"json.loads", "json.load", "yaml.load", "yaml.safe_load", "yaml.full_load",
           "yaml.unsafe_load", "pickle.load", "pickle.loads"}


def test_text_from_outside_is_parsed_only_through_validate():
    """No module but validate.py parses JSON or YAML (or unpickles), and every torch.load is
    weights_only=True: the bounds hold wherever a new reader is written."""
    import ast

    package = REPO / "actionrec"
    found = []
    for path in sorted(package.rglob("*.py")):
        name = str(path.relative_to(package))
        if name == "validate.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
                continue
            call = ast.unparse(node.func)
            if call in PARSERS and (name, call) not in PARSERS_ALLOWED:
                found.append(f"{name}:{node.lineno}: {call}")
            if call == "torch.load" and not any(
                    k.arg == "weights_only" and ast.unparse(k.value) == "True" for k in node.keywords):
                found.append(f"{name}:{node.lineno}: torch.load without weights_only=True")
    assert not found, found
