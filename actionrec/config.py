"""Experiment configs: YAML files validated into dataclasses.

A config has four sections (``model``, ``data``, ``train``, ``test``), the ``runtime`` they run
with and ``work_dir``. The runtime keys that ``train`` held before (``MOVED``) are read where they
were, with a warning for a file or ``--set`` (a checkpoint's metadata is read silently). A file may
start from another with ``_base_: relative/path.yaml`` (merged key by key; at most ``MAX_BASES``
files in a chain). Overrides use dotted keys, ``--set train.lr=0.01 data.size=112``, values parsed
as YAML. Every file and value is read through ``validate`` (UTF-8, nesting and aliases bounded, no
key twice). An unknown or mistyped key, a value of the wrong type, or a number that is not finite
or outside its ``LIMITS`` is an error naming the file, the key and what was expected.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import string
import typing
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .errors import ConfigError
from .validate import SEED, InvalidInput, NotYaml, Range, check_type, load_yaml, raised_as, read_text, shown

log = logging.getLogger(__name__)

MAX_BASES = 16  # files in a _base_ chain
MAX_VALUES = 100_000  # values in a config file or --set value, aliases expanded


@dataclass
class ModelConfig:
    name: str = "tsn"
    backbone: str = "resnet50"
    num_frames: int = 8
    pretrained: str | None = None  # ImageNet (torchvision keys) or actionrec checkpoint file
    dropout: float = 0.5
    partial_bn: bool = False
    frozen_stages: int = 0
    options: dict = field(default_factory=dict)  # model-specific options (see `actionrec models`)


@dataclass
class DataConfig:
    prepared: str = ""  # a prepared dataset's data.yaml (`actionrec data prepare`), read if it exists
    root: str = ""
    train_list: str = ""
    val_list: str = ""
    test_list: str = ""  # defaults to val_list
    label_map: str = ""
    kind: str = "video"  # video | rawframes | features (extracted .npy sequences)
    frame_template: str = "img_{:05d}.jpg"
    sampler: str = "segment"  # segment (TSN) | snippet (StNet) | dense (3D nets)
    snippet_len: int = 5  # snippet: frames stacked per super-image
    stride: int = 1  # dense: frame step (clip length is model.num_frames)
    size: int = 224
    short_side: int | None = None  # default size * 8 / 7 (256 for 224)
    decode_short_side: int | None = None  # resize while decoding (fast for HD videos)
    crop: str = "multiscale"  # training crop: multiscale (TSN) | random (GST, MSTI, StNet) | random_resized
    scales: list = field(default_factory=lambda: [1.0, 0.875, 0.75, 0.66])  # multiscale crop
    flip: bool = True
    mirror_swap: bool = False  # swap left/right classes when flipping (Something-Something)
    workers: int = 2


@dataclass
class TrainConfig:
    epochs: int = 50
    batch_size: int = 8
    optimizer: str = "sgd"  # sgd (momentum) | adam (MSTI-Net from scratch, Sec. 4.1)
    lr: float = 0.01  # for a global batch of lr_batch clips
    lr_batch: int | None = None  # global batch lr is for (paper's GPUs x clips); null: one process's
    lr_scaling: str = "linear"  # linear: lr x global batch / lr_batch (Goyal et al., 2017) | none
    momentum: float = 0.9  # sgd
    weight_decay: float = 5e-4
    schedule: str = "step"  # step | cosine
    lr_steps: list = field(default_factory=lambda: [30, 40])  # epochs, step schedule
    lr_gamma: float = 0.1
    min_lr: float = 0.0  # cosine
    warmup_epochs: float = 0.0
    clip_grad: float | None = 20.0  # max gradient norm (TSN); null for none
    accumulate: int = 1  # gradient accumulation steps
    seed: int = 0
    deterministic: bool = False
    keep_last: int = 2  # checkpoints kept besides the best
    eval_every: int = 1  # epochs
    log_every: int = 10  # steps between JSONL/TensorBoard records
    sync_bn: bool = False  # torchrun: BN statistics over all processes' batches (CUDA only)
    bn_eval: bool = False  # BN normalises by its running statistics (MMAction2's norm_eval)


@dataclass
class RuntimeConfig:
    """How a run computes, not what it computes: read alike by train, test, predict, serve and the
    analyses, which may each run a checkpoint elsewhere than where it was trained."""
    device: str = "auto"  # auto | cpu | cuda
    precision: str = "fp32"  # fp32 | amp: bf16 autocast on CPU, fp16 AMP (loss scaling) on CUDA
    layout: str = "channels_last"  # channels_last | contiguous: the memory format of the model
    threads: int | None = None  # PyTorch's CPU threads per process; null: PyTorch's choice
    dist_timeout: float = 600.0  # torchrun: seconds a rank waits for the others before failing


@dataclass
class TestConfig:
    clips: int = 1  # temporal clips per video
    clip_offsets: str = "even"  # even | random (STM Sec. 4.2 samples its 10 test clips at random)
    crops: int = 1  # 1 (centre), 3 (squares of the short side, STM), 5 (GST Table 4) or 10
    short_side: int | None = None  # before the test crops; default data.short_side, else size * 8 / 7
    batch_size: int = 8


@dataclass
class RecipeInfo:
    """What a recipe of configs/ reproduces (`actionrec zoo` lists them); no effect on a run."""
    paper: str = ""  # STM | GST | StNet | MSTI-Net (baselines: the paper whose table has the row)
    table: str = ""  # e.g. "Table 1"
    section: str = ""  # where the protocol is stated, e.g. "4.2"
    dataset: str = ""  # a name of `actionrec data prepare`
    top1: float | None = None  # the paper's top-1 % for this row: a target, never our result
    views: str = ""  # the paper's test views, e.g. "10 clips x 3 crops"
    differs: str = ""  # what this recipe does differently from the paper, and why


@dataclass
class Config:
    """A whole config: the ``model``, ``data``, ``train`` and ``test`` sections, the ``runtime``
    they run with, the work dir and the ``recipe`` it reproduces (``read_config`` reads one)."""

    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    test: TestConfig = field(default_factory=TestConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
    work_dir: str = "work_dirs/default"
    recipe: RecipeInfo = field(default_factory=RecipeInfo)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


# keys whose value must be one of a few choices
CHOICES = {
    ("data", "kind"): ("video", "rawframes", "features"),
    ("data", "sampler"): ("segment", "snippet", "dense"),
    ("data", "crop"): ("multiscale", "random", "random_resized"),
    ("test", "clip_offsets"): ("even", "random"),
    ("train", "optimizer"): ("sgd", "adam"),
    ("train", "schedule"): ("step", "cosine"),
    ("train", "lr_scaling"): ("linear", "none"),
    ("runtime", "device"): ("auto", "cpu", "cuda"),
    ("runtime", "precision"): ("fp32", "amp"),
    ("runtime", "layout"): ("channels_last", "contiguous"),
    ("test", "crops"): (1, 3, 5, 10),
}

INT_MAX = 2**31 - 1  # no count, size or step of a config needs more
COUNT = Range(1, INT_MAX, integer=True)
POSITIVE, AT_LEAST_0 = Range(0, lo_open=True), Range(0)
FRACTION = Range(0, 1, hi_open=True)

# (section, key) -> the numbers it may be (None passes where the key may be null); a number key
# not listed is any finite number (an integer: within INT_MAX either way)
LIMITS = {
    ("model", "num_frames"): COUNT,
    ("model", "dropout"): FRACTION,
    ("model", "frozen_stages"): Range(0, 5, integer=True),  # 1: stem, 2..5: layer1..layer4
    ("data", "snippet_len"): COUNT,
    ("data", "stride"): COUNT,
    ("data", "size"): COUNT,
    ("data", "short_side"): COUNT,
    ("data", "decode_short_side"): COUNT,
    ("data", "workers"): Range(0, 1024, integer=True),
    ("train", "epochs"): COUNT,
    ("train", "batch_size"): COUNT,
    ("train", "lr"): POSITIVE,
    ("train", "lr_batch"): COUNT,
    ("train", "momentum"): FRACTION,
    ("train", "weight_decay"): AT_LEAST_0,
    ("train", "lr_gamma"): POSITIVE,
    ("train", "min_lr"): AT_LEAST_0,
    ("train", "warmup_epochs"): AT_LEAST_0,
    ("train", "clip_grad"): POSITIVE,
    ("train", "accumulate"): COUNT,
    ("train", "seed"): SEED,
    ("train", "keep_last"): COUNT,  # the latest checkpoint is kept
    ("train", "eval_every"): COUNT,
    ("train", "log_every"): COUNT,
    ("test", "clips"): COUNT,
    ("test", "short_side"): COUNT,
    ("test", "batch_size"): COUNT,
    ("runtime", "threads"): Range(1, 1024, integer=True),
    ("runtime", "dist_timeout"): Range(0, 7 * 86400, lo_open=True),  # seconds: a week at most
    ("recipe", "top1"): Range(0, 100),
}
# list keys: (section, key) -> (what each item may be, whether the list may be empty)
ITEMS = {
    ("data", "scales"): (Range(0, 1, lo_open=True), False),  # multiscale crop
    ("train", "lr_steps"): (AT_LEAST_0, True),  # epochs
}
ANY_INT, ANY_NUMBER = Range(-INT_MAX, INT_MAX, integer=True), Range()


def check_frame_template(text: str, where: str) -> str:
    """``text`` if it is a frame file name template (a ``str.format`` template giving each frame
    number another name, no field wider than a name can be), else ``InvalidInput`` naming
    ``where``."""
    try:
        specs = [spec for _, _, spec, _ in string.Formatter().parse(text) if spec]
        if not any(int(n) > 255 for spec in specs for n in re.findall(r"\d+", spec)) \
                and text.format(1) != text.format(2):
            return text
    except (IndexError, KeyError, ValueError, AttributeError, TypeError):
        pass
    raise InvalidInput(f"{where}: {shown(text)} is not allowed; expected a str.format template of "
                       "the frame number, e.g. img_{:05d}.jpg")


def _number_kind(hint) -> type | None:
    """``int`` or ``float`` for a number field (null allowed or not), else None."""
    kinds = [a for a in (typing.get_args(hint) or (hint,)) if a is not type(None)]
    return kinds[0] if kinds in ([int], [float]) else None


def _check_values(cfg: Config, source: str) -> None:
    """Every value of ``cfg`` that its type alone does not bound: the choices, the numbers
    (``LIMITS``, else finite), the list items (``ITEMS``) and the frame template."""
    for (section, key), allowed in CHOICES.items():
        value = getattr(getattr(cfg, section), key)
        if value not in allowed:
            raise ConfigError(f"{source}: {section}.{key}: {shown(value)} is not one of "
                              + ", ".join(map(str, allowed)))
    for section in (f.name for f in dataclasses.fields(cfg)):
        part = getattr(cfg, section)
        if not dataclasses.is_dataclass(part):
            continue
        for key, hint in typing.get_type_hints(type(part)).items():
            value, where = getattr(part, key), f"{source}: {section}.{key}"
            kind = _number_kind(hint)
            if kind is not None and value is not None:
                default = ANY_INT if kind is int else ANY_NUMBER
                with raised_as(ConfigError):
                    LIMITS.get((section, key), default).check(value, where)
            elif (section, key) in ITEMS:
                item, empty = ITEMS[section, key]
                if not (value or empty) or not all(item.accepts(x) for x in value):
                    raise ConfigError(f"{where}: {shown(value)} is not allowed; expected a "
                                      f"{'' if empty else 'non-empty '}list, each item "
                                      f"{item.describe()}")
    with raised_as(ConfigError):
        check_frame_template(cfg.data.frame_template, f"{source}: data.frame_template")


def _key(key) -> str:
    """A key as a message names it: as written, or quoted where it is not plain text."""
    return key if isinstance(key, str) and key.isprintable() and key else shown(key)


def _build(cls, values: dict, source: str, prefix: str = ""):
    """Dataclass ``cls`` from ``values``; errors read ``<source>: <dotted key>: <problem>``."""
    if not isinstance(values, dict):
        raise ConfigError(f"{source}: {prefix.rstrip('.') or 'config'}: expected a mapping, got "
                          f"{shown(values)}")
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for key, value in values.items():
        where = f"{source}: {prefix}{_key(key)}"
        if key not in hints:
            valid = ", ".join(prefix + f.name for f in dataclasses.fields(cls))
            raise ConfigError(f"{where}: unknown key; valid keys: {valid}")
        if dataclasses.is_dataclass(hints[key]):
            kwargs[key] = _build(hints[key], value, source, f"{prefix}{key}.")
            continue
        with raised_as(ConfigError):
            kwargs[key] = check_type(value, hints[key], where)
    return cls(**kwargs)


# runtime keys that train: held, and the runtime value of each old value (checkpoints keep them)
MOVED = {
    ("train", "device"): ("device", str, lambda v: v),
    ("train", "amp"): ("precision", bool, lambda v: "amp" if v else "fp32"),
    ("train", "channels_last"): ("layout", bool, lambda v: "channels_last" if v else "contiguous"),
    ("train", "dist_timeout"): ("dist_timeout", float, lambda v: v),
}


def _moved(values: dict, source: str, *, warn: bool) -> dict:
    """``values`` with the keys of ``MOVED`` put in ``runtime:``; one given both ways is an error
    naming both."""
    train = values.get("train")
    if not isinstance(train, dict) or not any(key in train for _, key in MOVED):
        return values
    runtime = values.get("runtime") or {}
    if not isinstance(runtime, dict):
        return values  # not a mapping: building the config says so
    train, runtime = dict(train), dict(runtime)
    for (_, key), (new, kind, value_of) in MOVED.items():
        if key not in train:
            continue
        if new in runtime:
            raise ConfigError(f"{source}: train.{key} and runtime.{new} are one setting; give "
                              f"runtime.{new} alone")
        with raised_as(ConfigError):
            runtime[new] = value_of(check_type(train.pop(key), kind, f"{source}: train.{key}"))
        if warn:
            log.warning("%s: train.%s is runtime.%s now; read as runtime.%s: %s", source, key, new,
                        new, runtime[new])
    return {**values, "train": train, "runtime": runtime}


def _merge(base: dict, update: dict) -> dict:
    out = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict) and key != "options":
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _read_yaml(path: Path) -> dict:
    """The mapping of a YAML file with its ``_base_`` chain (at most ``MAX_BASES`` files) merged
    under it."""
    chain: list[tuple[Path, dict]] = []
    while True:
        if not path.is_file():
            raise ConfigError(f"{path}: config file not found")
        if any(path.resolve() == seen.resolve() for seen, _ in chain):
            raise ConfigError(f"{path}: _base_ cycle")
        if len(chain) == MAX_BASES:
            raise ConfigError(f"{chain[0][0]}: a _base_ chain of more than {MAX_BASES} files; "
                              f"expected at most {MAX_BASES}")
        with raised_as(ConfigError):
            data = load_yaml(read_text(path), str(path), max_nodes=MAX_VALUES)
        data = {} if data is None else data
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: expected a mapping at the top level")
        base = data.pop("_base_", None)
        chain.append((path, _moved(data, str(path), warn=True)))
        if base is None:
            break
        if not (isinstance(base, str) and base.isprintable()):
            raise ConfigError(f"{path}: _base_: expected one file name (a string), got "
                              f"{shown(base)}")
        path = path.parent / base
    values: dict = {}
    for _, data in reversed(chain):
        values = _merge(values, data)
    return values


def parse_overrides(overrides: list[str]) -> dict:
    """``["train.lr=0.1", "model.options.alpha=0.25"]`` -> nested dict (values parsed as YAML,
    or kept as text where they are not YAML). A key set both as a value and as the parent of
    another is an error naming both."""
    out: dict = {}
    given: dict[tuple, str] = {}  # dotted key -> the item that set it
    for item in overrides:
        key, sep, text = item.partition("=")
        parts = tuple(key.split("."))
        if not sep or not all(parts) or not key.isprintable():
            raise ConfigError(f"--set {shown(item)}: expected key=value, e.g. train.lr=0.01")
        with raised_as(ConfigError):
            try:
                value = load_yaml(text, f"--set {key}", max_nodes=MAX_VALUES)
            except NotYaml:
                value = text
        for other_parts, other in given.items():
            n = min(len(parts), len(other_parts))
            if other_parts[:n] == parts[:n] and len(other_parts) != len(parts):
                raise ConfigError(f"--set {shown(other)} and --set {shown(item)}: "
                                  f"{'.'.join(parts[:n])} is given both as a value and as the "
                                  "section of another key")
        node = out
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = value
        given[parts] = item
    return out


# what a prepared dataset's data.yaml defines; the paths among them are relative to its folder
DATASET_KEYS = ("root", "train_list", "val_list", "test_list", "label_map", "kind",
                "frame_template")
_PATH_KEYS = ("root", "train_list", "val_list", "test_list", "label_map")


def read_data_file(path: str | Path) -> dict:
    """The ``data:`` section of a prepared dataset's ``data.yaml`` (``actionrec data prepare``),
    checked, with relative paths joined to the file's folder and every dataset key it leaves out
    at its default, so that nothing of the config's own dataset stays behind."""
    path = Path(path)
    values = _read_yaml(path)
    if set(values) != {"data"}:
        raise ConfigError(f"{path}: expected one top-level key, data:, got "
                          f"{', '.join(map(_key, values)) or 'nothing'}")
    _build(DataConfig, values["data"], str(path), "data.")
    data = dict(values["data"])
    for key in _PATH_KEYS:
        if data.get(key) and not Path(data[key]).is_absolute():
            data[key] = str(path.parent / data[key])
    defaults = DataConfig()
    return {**{k: getattr(defaults, k) for k in DATASET_KEYS}, **data}


def data_file_text(data: dict, note: str) -> str:
    """A ``data.yaml`` that ``read_data_file`` reads: ``note`` as its comment, then ``data:``."""
    comment = "".join(f"# {line}\n" for line in note.splitlines())
    return comment + yaml.safe_dump({"data": data}, sort_keys=False)


def read_config(path: str | Path | None, overrides: list[str] = (), *, data: dict | None = None,
                source: str = "config", data_file: str | Path | None = None) -> Config:
    """Config from a YAML file (or a dict via ``data``, errors naming ``source``), then the
    dataset of ``data_file`` (a prepared ``data.yaml``; by default ``data.prepared`` where that
    file exists), then ``--set`` style overrides."""
    source = str(path) if path is not None else source
    values = _read_yaml(Path(path)) if path is not None else {} if data is None else data
    if not isinstance(values, dict):
        raise ConfigError(f"{source}: expected a mapping at the top level, got {shown(values)}")
    if path is None:
        values = _moved(values, source, warn=False)
    overrides = _moved(parse_overrides(list(overrides)), "--set", warn=True)
    if data_file is None:  # the recipe's own prepared dataset, where it has been prepared
        section = _merge(values, overrides).get("data")
        prepared = section.get("prepared") if isinstance(section, dict) else None
        data_file = prepared if isinstance(prepared, str) and Path(prepared).is_file() else None
    if data_file is not None:
        values = _merge(values, {"data": read_data_file(data_file)})
    cfg = _build(Config, _merge(values, overrides), source)
    _check_values(cfg, source)
    return cfg


def _flatten(values: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in values.items():
        if isinstance(value, dict) and key != "options":
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[prefix + key] = value
    return out


def config_diff(old: Config, new: Config) -> list[tuple[str, object, object]]:
    """``(dotted key, old value, new value)`` of every key that differs (``model.options`` as a
    whole)."""
    a, b = _flatten(old.to_dict()), _flatten(new.to_dict())
    return [(k, a.get(k), b.get(k)) for k in sorted(a.keys() | b.keys()) if a.get(k) != b.get(k)]


def dump_config(cfg: Config) -> str:
    return yaml.safe_dump(cfg.to_dict(), sort_keys=False)
