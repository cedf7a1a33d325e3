"""Hostile configs and ``--set`` values: each is refused with one line naming the file, line, key
or item at fault, before anything runs; whatever a config or ``--set`` says, a loaded config's
numbers are finite and inside their limits."""

import dataclasses
import functools
import math
import re

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from actionrec.config import ITEMS, LIMITS, Config, read_config
from actionrec.engine.build import config_options
from actionrec.errors import ActionrecError, ConfigError
from actionrec.validate import Range
from tests.conftest import run


def bomb(levels: int = 9, width: int = 9) -> str:
    """A flow list whose anchors repeat the previous one ``width`` times: ``width**levels``
    values once expanded (a billion laughs)."""
    lists = [f"&a0 [{', '.join(['lol'] * width)}]"]
    lists += [f"&a{i} [{', '.join([f'*a{i - 1}'] * width)}]" for i in range(1, levels)]
    return f"[{', '.join(lists)}]"


def refused(path, overrides=(), *, match: str) -> str:
    with pytest.raises(ConfigError, match=match) as e:
        read_config(path, list(overrides))
    message = str(e.value)
    assert "\n" not in message and len(message) < 600, message
    return message


@pytest.fixture
def ok(tmp_path):
    path = tmp_path / "ok.yaml"
    path.write_text("train:\n  epochs: 1\n")
    return path


@pytest.mark.parametrize("section, key", [("train", "lr"), ("data", "scales"),
                                          ("recipe", "differs")])
def test_an_alias_bomb_is_refused_before_it_expands(tmp_path, ok, section, key):
    path = tmp_path / "bomb.yaml"
    path.write_text(f"{section}:\n  {key}: {bomb()}\n")
    refused(path, match=rf"^{path}: expands to more than \d+ values")
    refused(ok, [f"{section}.{key}={bomb()}"], match=rf"^--set {section}.{key}: expands to more")
    child = tmp_path / "child.yaml"
    child.write_text("_base_: bomb.yaml\n")
    refused(child, match=rf"^{path}: expands to more")  # a _base_ is read the same way
    data = tmp_path / "data.yaml"
    data.write_text(f"data:\n  root: {bomb()}\n")
    refused(ok, match=rf"^{data}: expands to more", overrides=[f"data.prepared={data}"])


def test_a_key_given_twice_is_refused_naming_both_lines(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("train:\n  lr: 0.1\n  epochs: 2\n  lr: 0.2\n")
    refused(path, match=rf"^{path}:4: key 'lr' is given twice \(first on line 2\)")


@pytest.mark.parametrize("encoding", ["latin-1", "utf-16"])
def test_a_file_not_in_utf8_is_refused_naming_the_line(tmp_path, encoding):
    path = tmp_path / "c.yaml"
    path.write_bytes("train:\n  lr: 0.1\nwork_dir: café\n".encode(encoding))
    refused(path, match=rf"^{path}:\d+: byte 0x.. is not UTF-8; save the file as UTF-8")


@pytest.mark.parametrize("text", ["work_dir: " + "[" * 50000 + "]" * 50000,
                                  "".join(" " * i + "a:\n" for i in range(3000))])
def test_deep_nesting_is_refused(tmp_path, text):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    refused(path, match=rf"^{path}:\d+: nested deeper than 64 levels")


def test_a_long_base_chain_is_refused(tmp_path):
    for i in range(1500):
        (tmp_path / f"c{i}.yaml").write_text(f"_base_: c{i + 1}.yaml\n" if i < 1499 else "")
    refused(tmp_path / "c0.yaml", match=rf"^{tmp_path / 'c0.yaml'}: a _base_ chain of more than 16")
    (tmp_path / "c1483.yaml").write_text("train:\n  epochs: 3\n")  # 16 files: allowed
    assert read_config(tmp_path / "c1468.yaml").train.epochs == 3


@pytest.mark.parametrize("base", ['"a\\nb.yaml"', '"a\\0b.yaml"', "[a.yaml, b.yaml]"])
def test_a_base_that_is_not_one_file_name_is_refused(tmp_path, base):
    path = tmp_path / "c.yaml"
    path.write_text(f"_base_: {base}\n")
    refused(path, match=rf"^{path}: _base_: expected one file name \(a string\), got ")


@pytest.mark.parametrize("overrides", [["model.name=tsn", "model.name.x=1"],
                                       ["model.name.x=1", "model.name=tsn"],
                                       ["train={lr: 1}", "train.epochs=2"]])
def test_a_key_set_both_as_value_and_as_section_is_refused_naming_both(ok, overrides):
    message = refused(ok, overrides, match=r"^--set '.*' and --set '.*': .* is given both as a "
                                           r"value and as the section of another key")
    assert all(repr(o) in message for o in overrides)


@pytest.mark.parametrize("item", ["train.lr", "=1", "train..lr=1", "tra\nin.lr=1", "train.=1"])
def test_a_set_item_that_is_not_key_value_is_refused(ok, item):
    refused(ok, [item], match=r"^--set '.*': expected key=value, e.g. train.lr=0.01$")


def test_a_control_character_is_one_line_naming_the_file(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("work_dir: a\x1fb\n")
    refused(path, match=rf"^{path}: not valid YAML: unacceptable character #x001f")


@pytest.mark.parametrize("override, message", [
    ("train.warmup_epochs=.inf", "train.warmup_epochs: inf is not allowed; expected a finite"),
    ("runtime.dist_timeout=.inf", "runtime.dist_timeout: inf is not allowed"),
    ("train.dist_timeout=.inf", "train.dist_timeout: inf is not allowed"),  # its old place
    ("runtime.dist_timeout=1e12", "runtime.dist_timeout: 1000000000000.0 is not allowed; expected "
                                  "a number in (0, 604800]"),
    ("train.min_lr=.NaN", "train.min_lr: nan is not allowed"),
    ("recipe.top1=1e400", "recipe.top1: inf is not allowed"),
    ("train.epochs=1" + "0" * 400, "train.epochs: 1000"),
    ("train.lr=-1" + "0" * 400, "train.lr: -100"),
    ("model.dropout=1" + "0" * 400, "model.dropout: 100"),
    ("train.epochs=1" + "0" * 5000, "--set train.epochs:1: '1000"),
    ("train.seed=-1", "train.seed: -1 is not allowed; expected an integer in [0, 4294967295]"),
    ("model.dropout=1", "model.dropout: 1.0 is not allowed; expected a number in [0, 1)"),
    ("data.frame_template={:>999999999}", "data.frame_template: '{:>999999999}' is not allowed"),
    ("data.scales=[0.5, .nan]", "data.scales: [0.5, nan] is not allowed; expected a non-empty"),
    ("train.lr_steps=[1, -2]", "train.lr_steps: [1, -2] is not allowed; expected a list, each"),
])
def test_every_number_is_finite_and_in_range(ok, override, message):
    refused(ok, [override], match=f"^(.*: )?{re.escape(message)}")


NUMBER_KEYS = [(s, f.name, kind) for s in ("model", "data", "train", "test", "recipe")
               for f in dataclasses.fields(getattr(Config(), s))
               for kind in [k for k in (int, float) if k.__name__ in f.type.split(" | ")]]


@pytest.mark.parametrize("section, key, kind", NUMBER_KEYS,
                         ids=[f"{s}.{k}" for s, k, _ in NUMBER_KEYS])
def test_every_number_key_refuses_what_no_run_can_use(ok, section, key, kind):
    for text in (["4294967296"] if kind is int else [".inf", "-.inf", ".nan", "1e999"]):
        refused(ok, [f"{section}.{key}={text}"],
                match=rf": {section}.{key}: .* is not (allowed|one of)")


@pytest.mark.parametrize("option, message", [
    ("partial_bn=abc", "model.options.partial_bn: expected true/false, got 'abc'"),
    ("dropout=abc", "model.options.dropout: expected float, got 'abc'"),
    ("dropout=.inf", "model.options.dropout: inf is not allowed; expected a finite number"),
    ("frozen_stages=1.5", "model.options.frozen_stages: expected int, got 1.5"),
    ("alpha=0.25", "model.options.alpha: model 'tsn' has no option alpha; its options: backbone="),
])
def test_model_options_are_checked_against_the_builder(ok, option, message):
    cfg = read_config(ok, [f"model.options.{option}"])
    with pytest.raises(ConfigError) as e:
        config_options(cfg)
    assert str(e.value).startswith(message)


def test_model_options_of_the_right_type_pass(ok):
    cfg = read_config(ok, ["model.name=stm", "model.options.stages=[3, 4]",
                           "model.options.partial_bn=true", "model.options.dropout=1"])
    options = config_options(cfg)
    assert options["stages"] == [3, 4] and options["partial_bn"] is True
    assert options["dropout"] == 1.0 and isinstance(options["dropout"], float)


@pytest.mark.parametrize("shift_div", [0, 1, -4, 10**6])
def test_an_option_out_of_its_models_range_is_one_line(capsys, shift_div):
    """Options of the right type that the model cannot take (TSM's shift_div divides the
    channels into folds) are refused by the model, in one line (0 was a ZeroDivisionError)."""
    code, _, err = run(capsys, "flops", "tsm", "--opt", f"shift_div={shift_div}")
    assert code == 2 and err.count("\n") == 1
    assert err.startswith("actionrec: error: model 'tsm': shift_div must be in [2, ")


@pytest.mark.parametrize("argv, message", [
    (["--set", "model.options.partial_bn=abc"], "model.options.partial_bn: expected true/false"),
    (["--set", "model.name=tsn", "model.name.x=1"], "model.name is given both"),
    (["--set", f"train.lr={bomb()}"], "--set train.lr: expands to more than"),
])
def test_train_refuses_in_one_line_before_it_starts(tmp_path, ok, capsys, argv, message):
    code, _, err = run(capsys, "train", ok, "--work-dir", tmp_path / "w", *argv)
    assert code == 2 and err.count("\n") == 1 and err.startswith("actionrec: error: ")
    assert message in err



@pytest.mark.parametrize("text, message", [
    ("train:\n  epochs: !!int abc\n", ":2: 'abc' cannot be read as int"),
    ("work_dir: 2001-13-45\n", ":1: '2001-13-45' cannot be read as timestamp"),
    ("train:\n  seed: 0x" + "f" * 5000 + "\n", "train.seed: <a int too large to show> is not allowed"),
    ("work_dir: 2001-12-14\n", "work_dir: expected str, got datetime.date(2001, 12, 14)"),
    ("train:\n  lr: !!binary aGk=\n", "train.lr: expected float, got b'hi'"),
])
def test_a_value_yaml_cannot_hold_or_of_another_type_is_one_line(tmp_path, text, message):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    assert message in refused(path, match=f"^{path}")


# --- properties: whatever the text, a Config inside its limits or one ActionrecError line -------

SECTIONS = {f.name: f.type for f in dataclasses.fields(Config)}
FIELDS = [(s, f.name) for s in ("model", "data", "train", "test", "recipe")
          for f in dataclasses.fields(getattr(Config(), s))]
DOTTED = [f"{s}.{k}" for s, k in FIELDS] + ["work_dir", "model.options.partial_bn",
                                            "model.options.alpha", "model.options.stages"]
SCALARS = st.one_of(
    st.none(), st.booleans(), st.floats(),
    st.integers(-2**70, 2**70), st.sampled_from([0, 1, -1, 2**31, 2**63, 10**400]),
    st.text(max_size=8), st.sampled_from(["1e-4", ".inf", "-.inf", ".nan", "1e999", "[1", "abc",
                                          "{:05d}", "img_{:05d}.jpg", "{:>99999}", "tsn", "gst"]))
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(st.text(max_size=4) | st.sampled_from(DOTTED), inner,
                                        max_size=4), max_leaves=12)
HOSTILE = st.one_of(  # YAML text that is hostile in its shape, not only in its values
    st.builds(bomb, st.integers(1, 9), st.integers(1, 9)),
    st.integers(1, 200).map(lambda n: "[" * n + "]" * n),
    st.integers(1, 200).map(lambda n: "{a: " * n + "1" + "}" * n),
    st.text(max_size=30))


@st.composite
def documents(draw) -> str:
    """A config's YAML: known sections and keys (and some unknown), values of any shape, and now
    and then a hostile value, a key given twice or a text appended."""
    doc = draw(st.dictionaries(st.sampled_from([*SECTIONS, "x"]), st.dictionaries(
        st.sampled_from([k for _, k in FIELDS] + ["options", "y"]), VALUES, max_size=6),
        max_size=4))
    text = yaml.safe_dump(doc, default_flow_style=False)
    if draw(st.booleans()):
        section = draw(st.sampled_from([*SECTIONS]))
        text += f"{section}:\n  {draw(st.sampled_from(FIELDS))[1]}: {draw(HOSTILE)}\n"
    if draw(st.booleans()):
        text += draw(st.text(max_size=20))
    return text


def override() -> st.SearchStrategy:
    """``--set`` items: dotted keys (known, extended, unknown) = YAML of any shape, or any text."""
    keys = st.sampled_from(DOTTED) | st.builds("{}.{}".format, st.sampled_from(DOTTED),
                                               st.text(max_size=3)) | st.text(max_size=8)
    values = VALUES.map(lambda v: yaml.safe_dump(v, default_flow_style=True).strip()) | HOSTILE
    return st.builds("{}={}".format, keys, values) | st.text(max_size=20)


def holds(load) -> None:
    """``load()`` is a Config whose every number is finite and inside its limits (and whose model
    options pass or are refused), or raises one ActionrecError line."""
    try:
        cfg = load()
        config_options(cfg)
    except ActionrecError as e:
        assert "\n" not in str(e) and len(str(e)) < 2000, str(e)
        return
    for section, key in FIELDS:
        value = getattr(getattr(cfg, section), key)
        if isinstance(value, bool) or value is None:
            continue
        if isinstance(value, int | float):
            assert math.isfinite(value) and (isinstance(value, float) or abs(value) < 2**32)
            assert LIMITS.get((section, key), Range()).accepts(value), (section, key, value)
        if (section, key) in ITEMS:
            assert all(ITEMS[section, key][0].accepts(x) for x in value), (section, key, value)


EXTREMES = [0, -1, 2**31, 2**63, 10**400, -10**400, "1e999", ".inf", ".nan", "1e-400", "-0.0",
            "true", "null", "[]", "{}", "[.nan]", "[1e999]", "abc"]


def test_every_key_with_every_extreme_value():
    for item in [f"{key}={value}" for key in DOTTED for value in EXTREMES]:
        holds(functools.partial(read_config, None, [item]))


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    return tmp_path_factory.mktemp("hostile_config")


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=documents())
def test_any_config_text_loads_inside_its_limits_or_is_one_line(scratch, text):
    path = scratch / "c.yaml"
    path.write_text(text)
    holds(lambda: read_config(path))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=st.text(max_size=60))
def test_any_text_as_a_config_is_one_line_or_a_config(scratch, text):
    path = scratch / "t.yaml"
    path.write_bytes(text.encode("utf-8", "surrogatepass"))
    holds(lambda: read_config(path))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(items=st.lists(override(), max_size=5), name=st.sampled_from(["tsn", "stm", "gst", "x"]))
def test_any_set_items_load_inside_their_limits_or_are_one_line(items, name):
    holds(lambda: read_config(None, [f"model.name={name}", *items]))


def test_a_nul_character_in_a_text_value_is_refused(tmp_path, ok, capsys):
    code, _, err = run(capsys, "train", ok, "--set", 'work_dir="/tmp/a\\0b"')
    assert code == 2 and err.count("\n") == 1
    assert "work_dir: '/tmp/a\\x00b' is not allowed; expected text without NUL characters" in err
