"""The one check for everything that enters from outside: command-line flags, query parameters,
config values, annotation fields, checkpoint metadata, uploads.

- Numbers: ``Range`` says what a value may be (integer or real, bounds, open or closed); a value
  is accepted only when it is of that type, finite and inside the bounds. The same ``Range``
  checks a flag (``type=Range(...).flag``), a query parameter (``Range(...).query()``) and a
  config value.
- Paths: ``inside(folder, relative)`` is the path of ``relative`` under ``folder``, refused when
  it is absolute or leads out (``..``, a symlink).
- Types: ``check_type`` says whether a value read from YAML or JSON is of a type hint (the
  numbers finite, the integers 64-bit, the items of a ``list[X]`` each checked).
- Text: ``read_text`` decodes UTF-8 or names the file and the byte that is not; ``shown`` is a
  value as an error message quotes it (a ``repr`` cut short).
- YAML and JSON: ``load_yaml`` and ``load_json`` bound the text's size, its nesting depth and
  (YAML) the size the aliases expand to, and refuse duplicate keys, naming both lines.

Every refusal is an ``InvalidInput`` (an ``ActionrecError``: one line, no traceback) whose message
starts with where the value came from (file:line, a flag, a dotted key) and says what was expected.
"""

from __future__ import annotations

import json
import math
import os
import reprlib
import sys
import types
import typing
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import yaml

from .errors import ActionrecError

MAX_TEXT_BYTES = 8 * 2**20  # a config, data.yaml or checkpoint's metadata
MAX_DEPTH = 64  # nesting of mappings and lists
MAX_NODES = 1_000_000  # a YAML document's values, counted with every alias expanded
INT64 = 2**63  # integers are within (-INT64, INT64): what C, NumPy and torch take
FLOAT_MAX = sys.float_info.max


class InvalidInput(ActionrecError, ValueError):
    """A value from outside that is not what it must be; the message names where it came from."""


@contextmanager
def raised_as(error: type[ActionrecError]):
    """An ``InvalidInput`` raised inside re-raised as ``error`` (a module's own error type), with
    its message."""
    try:
        yield
    except InvalidInput as e:
        if isinstance(e, error):
            raise
        raise error(str(e)) from None


class NotYaml(InvalidInput):
    """Text that does not parse as YAML at all (as opposed to YAML past the bounds)."""


_REPR = reprlib.Repr()
_REPR.maxstring, _REPR.maxother, _REPR.maxlong, _REPR.maxlevel = 60, 60, 40, 3
MAX_SHOWN = 200  # characters of a value quoted in a message


def shown(value) -> str:
    """``repr(value)`` for an error message: long strings, numbers and collections cut short (at
    most ``MAX_SHOWN`` characters)."""
    try:
        text = _REPR.repr(value)
    except ValueError:  # an integer of more digits than Python turns into text
        return f"<a {type(value).__name__} too large to show>"
    return text if len(text) <= MAX_SHOWN else text[: MAX_SHOWN - 3] + "..."


@dataclass(frozen=True)
class Range:
    """What a number may be: ``integer`` or real, ``lo``/``hi`` bounds (``None``: unbounded on that
    side), ``lo_open``/``hi_open`` to exclude ``lo``/``hi``. Never NaN or infinite."""

    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    integer: bool = False
    hi_open: bool = False

    def describe(self) -> str:
        kind = "an integer" if self.integer else "a number"
        lo, hi = _show(self.lo), _show(self.hi)
        if self.lo is not None and self.hi is not None:
            return f"{kind} in {'(' if self.lo_open else '['}{lo}, {hi}{')' if self.hi_open else ']'}"
        if self.lo is not None:
            return f"{kind} {'>' if self.lo_open else '>='} {lo}"
        if self.hi is not None:
            return f"{kind} {'<' if self.hi_open else '<='} {hi}"
        return f"a finite {kind.split()[-1]}"

    def accepts(self, value) -> bool:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        if self.integer and not isinstance(value, int):
            return False
        if isinstance(value, float) and not math.isfinite(value):
            return False
        if not self.integer and isinstance(value, int) and abs(value) > FLOAT_MAX:
            return False  # an integer no float can hold
        if self.lo is not None and (value <= self.lo if self.lo_open else value < self.lo):
            return False
        return self.hi is None or (value < self.hi if self.hi_open else value <= self.hi)

    def check(self, value, where: str):
        """``value`` (an int given for a real is made a float), or ``InvalidInput`` naming
        ``where``."""
        if not self.accepts(value):
            raise InvalidInput(f"{where}: {shown(value)} is not allowed; expected {self.describe()}")
        return value if self.integer else float(value)

    def parse(self, text: str, where: str):
        """A number written as text (a flag, a query parameter, a list field), checked."""
        try:
            value = int(text) if self.integer else float(text)
        except (TypeError, ValueError):
            raise InvalidInput(f"{where}: {text!r} is not allowed; expected "
                               f"{self.describe()}") from None
        return self.check(value, where)

    def flag(self, text: str):
        """``argparse`` ``type=``: argparse prefixes the flag's name to the message."""
        import argparse

        try:
            return self.parse(text, "value")
        except InvalidInput as e:
            raise argparse.ArgumentTypeError(str(e).removeprefix("value: ")) from None

    def query(self) -> dict:
        """Keyword arguments for FastAPI's ``Query``/``Field``: the same bounds, finite only."""
        bounds = {} if self.integer else {"allow_inf_nan": False}
        if self.lo is not None:
            bounds["gt" if self.lo_open else "ge"] = self.lo
        if self.hi is not None:
            bounds["lt" if self.hi_open else "le"] = self.hi
        return bounds


def _show(bound: float | None) -> str:
    if bound is None:
        return ""
    return str(int(bound)) if float(bound).is_integer() else f"{bound:g}"


SEED = Range(0, 2**32 - 1, integer=True)  # a random seed (NumPy takes 32 bits)


def check_type(value, hint, where: str):
    """``value`` (read from YAML or JSON) as of type ``hint``, or ``InvalidInput`` naming ``where``
    and the type expected. ``hint`` is ``bool``, ``int`` (64-bit), ``float`` (finite; an int, or a
    number YAML 1.1 left as text such as ``1e-4``, is made a float), ``str`` (no NUL character),
    ``dict``, ``list`` or ``tuple`` (bare, or ``list[X]``/``tuple[X, ...]``: each item checked and
    named ``where[i]``; a YAML list serves for a tuple), ``None``, ``typing.Any``, or a union of
    them."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        arms = [a for a in args if a is not type(None)]
        if value is None and len(arms) < len(args):
            return None
        if len(arms) == 1:
            return check_type(value, arms[0], where)
        for arm in arms:
            try:
                return check_type(value, arm, where)
            except InvalidInput:
                pass
        raise InvalidInput(f"{where}: expected {' or '.join(dict.fromkeys(map(_type_name, arms)))}, got "
                           f"{shown(value)}")
    kind = origin or hint
    if kind is typing.Any or (kind in (None, type(None)) and value is None):
        return value
    if kind is float and isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            pass
    if kind is float and isinstance(value, int | float) and not isinstance(value, bool):
        return Range().check(value, where)
    if kind is int and isinstance(value, int) and not isinstance(value, bool):
        return Range(-INT64 + 1, INT64 - 1, integer=True).check(value, where)
    if kind in (list, tuple) and isinstance(value, list | tuple):
        item = args[0] if args and (kind is list or args[1:] == (...,)) else typing.Any
        return kind(check_type(v, item, f"{where}[{i}]") for i, v in enumerate(value))
    if kind is str and isinstance(value, str) and "\0" in value:  # no path or name holds one
        raise InvalidInput(f"{where}: {shown(value)} is not allowed; expected text without NUL "
                           "characters")
    if kind in (bool, str, dict) and isinstance(value, kind):
        return value
    raise InvalidInput(f"{where}: expected {_type_name(hint)}, got {shown(value)}")


def _type_name(hint) -> str:
    """``float``, ``true/false``, ``a list of int``: a type as an error message names it."""
    if hint is bool:
        return "true/false"
    if hint in (None, type(None)):
        return "null"
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (list, tuple) and args:
        return f"a list of {_type_name(args[0])}"
    return getattr(hint, "__name__", str(hint))


def inside(folder: str | os.PathLike, relative: str | os.PathLike, where: str, *,
           resolve: bool = True) -> Path:
    """``folder / relative``, refused unless it stays inside ``folder`` once ``..`` and symlinks
    are resolved (an absolute ``relative`` is refused too). ``resolve=False`` judges the text
    alone (``..`` steps), for a folder whose sub-folders may be links to other disks."""
    relative = Path(relative)
    if relative.is_absolute():
        raise InvalidInput(f"{where}: {str(relative)!r} is an absolute path; expected a path "
                           f"inside {folder}")
    path = Path(folder) / relative
    if resolve:
        leaves = not path.resolve().is_relative_to(Path(folder).resolve())
    else:
        leaves = os.path.normpath(relative).split(os.sep)[0] == os.pardir
    if leaves:
        raise InvalidInput(f"{where}: {str(relative)!r} leads outside {folder}; expected a path "
                           f"inside it")
    return path


def read_text(path: str | os.PathLike, *, max_bytes: int = MAX_TEXT_BYTES) -> str:
    """A text file's contents: UTF-8 (a BOM is dropped), at most ``max_bytes``."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise InvalidInput(f"{path}: {size} bytes; expected a text file of at most "
                               f"{max_bytes} bytes")
        data = path.read_bytes()
    except IsADirectoryError:
        raise InvalidInput(f"{path}: a folder; expected a text file") from None
    except OSError as e:
        raise InvalidInput(f"{path}: cannot be read: {e.strerror or e}") from None
    return decode(data, str(path))


def decode(data: bytes, where: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise InvalidInput(f"{where}:{line}: byte 0x{data[e.start]:02x} is not UTF-8; save the "
                           f"file as UTF-8") from None


class _BoundedLoader(yaml.SafeLoader):
    """PyYAML's safe loader with the nesting depth bounded and duplicate keys refused."""

    def __init__(self, stream, source: str, max_depth: int):
        super().__init__(stream)
        self.source, self.max_depth, self.depth = source, max_depth, 0

    def compose_node(self, parent, index):
        self.depth += 1
        try:
            if self.depth > self.max_depth:
                mark = self.peek_event().start_mark
                raise InvalidInput(f"{self.source}:{mark.line + 1}: nested deeper than "
                                   f"{self.max_depth} levels")
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1

    def construct_object(self, node, deep=False):
        try:
            return super().construct_object(node, deep)
        except InvalidInput:
            raise
        except ValueError as e:  # a scalar its tag cannot hold: !!int abc, 2001-13-45, 10**5000
            raise InvalidInput(f"{self.source}:{node.start_mark.line + 1}: {shown(node.value)} "
                               f"cannot be read as {node.tag.rpartition(':')[2]}: {e}") from None

    def construct_mapping(self, node, deep=False):
        lines = {}
        for key_node, _ in node.value:
            key, line = self.construct_object(key_node, deep=True), key_node.start_mark.line + 1
            try:
                if key in lines:
                    raise InvalidInput(f"{self.source}:{line}: key {key!r} is given twice (first "
                                       f"on line {lines[key]})")
                lines[key] = line
            except TypeError:  # an unhashable key: PyYAML's own error names it
                pass
        return super().construct_mapping(node, deep)


def _expanded_size(node, limit: int, source: str) -> int:
    """Values in ``node`` with every alias expanded; ``InvalidInput`` past ``limit`` or on an
    alias that contains itself."""
    sizes: dict[int, int] = {}
    active: set[int] = set()

    def size(n) -> int:
        key = id(n)
        if key in sizes:
            return sizes[key]
        if key in active:
            raise InvalidInput(f"{source}:{n.start_mark.line + 1}: an alias that contains itself")
        active.add(key)
        children = n.value if isinstance(n.value, list) else []
        total = 1
        for child in children:
            for c in child if isinstance(child, tuple) else (child,):
                total += size(c)
                if total > limit:
                    raise InvalidInput(f"{source}: expands to more than {limit} values (aliases "
                                       f"repeating aliases?); expected a config of ordinary size")
        active.discard(key)
        sizes[key] = total
        return total

    size(node)
    return sizes[id(node)]


def load_yaml(text: str, source: str, *, max_depth: int = MAX_DEPTH, max_nodes: int = MAX_NODES):
    """One YAML document from ``text`` (errors name ``source``): safe types only, nesting at most
    ``max_depth``, at most ``max_nodes`` values with aliases expanded, no key given twice."""
    if len(text) > MAX_TEXT_BYTES:
        raise InvalidInput(f"{source}: {len(text)} characters; expected at most {MAX_TEXT_BYTES}")
    loader = None
    try:
        loader = _BoundedLoader(text, source, max_depth)  # refuses unprintable characters
        node = loader.get_single_node()
        if node is None:
            return None
        _expanded_size(node, max_nodes, source)
        return loader.construct_document(node)
    except yaml.YAMLError as e:
        raise NotYaml(f"{source}: not valid YAML: {' '.join(str(e).split())}") from None
    finally:
        if loader is not None:
            loader.dispose()


def load_json(text: str | bytes, source: str, *, max_depth: int = MAX_DEPTH,
              max_bytes: int = MAX_TEXT_BYTES):
    """JSON from ``text`` (errors name ``source``), at most ``max_depth`` deep and ``max_bytes``
    long; NaN and infinities are refused."""
    if len(text) > max_bytes:
        raise InvalidInput(f"{source}: {len(text)} bytes of JSON; expected at most {max_bytes}")

    def refuse(constant):
        raise ValueError(f"{constant} is not a number JSON allows")

    try:
        value = json.loads(text, parse_constant=refuse)
    except RecursionError:
        value = None
        depth = max_depth + 1
    except ValueError as e:
        raise InvalidInput(f"{source}: not valid JSON: {e}") from None
    else:
        depth = _depth(value)
    if depth > max_depth:
        raise InvalidInput(f"{source}: JSON nested more than {max_depth} deep")
    return value


def _depth(value) -> int:
    """Nesting depth of lists and dicts, counted without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        v, d = stack.pop()
        children = v.values() if isinstance(v, dict) else v if isinstance(v, list) else None
        if children is not None:
            deepest = max(deepest, d)
            stack.extend((c, d + 1) for c in children)
    return deepest
