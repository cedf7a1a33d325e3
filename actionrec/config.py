"""Experiment configs: YAML files validated into dataclasses.

A config has four sections (``model``, ``data``, ``train``, ``test``) and ``work_dir``. A file may
start from another with ``_base_: relative/path.yaml`` (merged key by key). Overrides use dotted
keys, ``--set train.lr=0.01 data.size=112``, values parsed as YAML. An unknown or mistyped key, or a
value of the wrong type, is an error naming the file, the key and the valid keys.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .errors import ConfigError


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
    amp: bool = False  # bf16 autocast on CPU, fp16 AMP (with loss scaling) on CUDA
    device: str = "auto"  # auto | cpu | cuda
    channels_last: bool = True
    seed: int = 0
    deterministic: bool = False
    keep_last: int = 2  # checkpoints kept besides the best
    eval_every: int = 1  # epochs
    log_every: int = 10  # steps between JSONL/TensorBoard records
    sync_bn: bool = False  # torchrun: BN statistics over all processes' batches (CUDA only)
    bn_eval: bool = False  # BN normalises by its running statistics (MMAction2's norm_eval)
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
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    test: TestConfig = field(default_factory=TestConfig)
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
    ("train", "device"): ("auto", "cpu", "cuda"),
    ("test", "crops"): (1, 3, 5, 10),
}


def _number(v) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _template(v: str) -> bool:
    """A frame file name template: formats a frame number, and differently for each number."""
    try:
        return v.format(1) != v.format(2)
    except (IndexError, KeyError, ValueError):
        return False


AT_LEAST_1, AT_LEAST_0 = (lambda v: v >= 1, ">= 1"), (lambda v: v >= 0, ">= 0")
POSITIVE = (lambda v: v > 0, "> 0")
FRACTION = (lambda v: 0 <= v < 1, "in [0, 1)")

# (section, key) -> (test, what is allowed); None passes where the key may be null
LIMITS = {
    ("model", "num_frames"): AT_LEAST_1,
    ("model", "dropout"): FRACTION,
    ("model", "frozen_stages"): (lambda v: 0 <= v <= 5, "in [0, 5] (stages)"),
    ("data", "frame_template"): (_template, "a str.format template of the frame number, "
                                            "e.g. img_{:05d}.jpg"),
    ("data", "snippet_len"): AT_LEAST_1,
    ("data", "stride"): AT_LEAST_1,
    ("data", "size"): AT_LEAST_1,
    ("data", "short_side"): AT_LEAST_1,
    ("data", "decode_short_side"): AT_LEAST_1,
    ("data", "scales"): (lambda v: bool(v) and all(_number(x) and 0 < x <= 1 for x in v),
                         "a non-empty list of numbers in (0, 1]"),
    ("data", "workers"): AT_LEAST_0,
    ("train", "epochs"): AT_LEAST_1,
    ("train", "batch_size"): AT_LEAST_1,
    ("train", "lr"): POSITIVE,
    ("train", "lr_batch"): AT_LEAST_1,
    ("train", "momentum"): FRACTION,
    ("train", "weight_decay"): AT_LEAST_0,
    ("train", "lr_steps"): (lambda v: all(_number(x) and x >= 0 for x in v),
                            "a list of epochs (numbers >= 0)"),
    ("train", "lr_gamma"): POSITIVE,
    ("train", "min_lr"): AT_LEAST_0,
    ("train", "warmup_epochs"): AT_LEAST_0,
    ("train", "clip_grad"): POSITIVE,
    ("train", "accumulate"): AT_LEAST_1,
    ("train", "keep_last"): (lambda v: v >= 1, ">= 1 (the latest checkpoint is kept)"),
    ("train", "eval_every"): AT_LEAST_1,
    ("train", "log_every"): AT_LEAST_1,
    ("train", "dist_timeout"): POSITIVE,
    ("test", "clips"): AT_LEAST_1,
    ("test", "short_side"): AT_LEAST_1,
    ("test", "batch_size"): AT_LEAST_1,
}


def _check_type(value, hint, where: str):
    """``value`` converted to ``hint`` (int -> float allowed), or ConfigError."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(hint)
        if value is None and type(None) in args:
            return None
        hint = next(a for a in args if a is not type(None))
        origin = typing.get_origin(hint)
    expected = origin or hint
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if expected is float and isinstance(value, str):  # YAML 1.1 reads 1e-4 as a string
        try:
            return float(value)
        except ValueError:
            pass
    if expected is bool and not isinstance(value, bool):
        raise ConfigError(f"{where}: expected true/false, got {value!r}")
    if expected is int and isinstance(value, bool):
        raise ConfigError(f"{where}: expected an integer, got {value!r}")
    if not isinstance(value, expected):
        raise ConfigError(f"{where}: expected {expected.__name__}, got {value!r}")
    return value


def _build(cls, values: dict, source: str, prefix: str = ""):
    """Dataclass ``cls`` from ``values``; errors read ``<source>: <dotted key>: <problem>``."""
    if not isinstance(values, dict):
        raise ConfigError(f"{source}: {prefix.rstrip('.') or 'config'}: expected a mapping, got {values!r}")
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for key, value in values.items():
        where = f"{source}: {prefix}{key}"
        if key not in hints:
            valid = ", ".join(prefix + f.name for f in dataclasses.fields(cls))
            raise ConfigError(f"{where}: unknown key; valid keys: {valid}")
        if dataclasses.is_dataclass(hints[key]):
            kwargs[key] = _build(hints[key], value, source, f"{prefix}{key}.")
        else:
            kwargs[key] = _check_type(value, hints[key], where)
    return cls(**kwargs)


def _merge(base: dict, update: dict) -> dict:
    out = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict) and key != "options":
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _read_yaml(path: Path, seen: tuple = ()) -> dict:
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    if path.resolve() in seen:
        raise ConfigError(f"{path}: _base_ cycle")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    base = data.pop("_base_", None)
    if base is None:
        return data
    if not isinstance(base, str):
        raise ConfigError(f"{path}: _base_: expected one file name (a string), got {base!r}")
    return _merge(_read_yaml(path.parent / base, (*seen, path.resolve())), data)


def parse_overrides(overrides: list[str]) -> dict:
    """``["train.lr=0.1", "model.options.alpha=0.25"]`` -> nested dict (values parsed as YAML)."""
    out: dict = {}
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set {item!r}: expected key=value, e.g. train.lr=0.01")
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError:
            value = text
        node = out
        *parents, leaf = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
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
                          f"{', '.join(map(str, values)) or 'nothing'}")
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


def load_config(path: str | Path | None, overrides: list[str] = (), *, data: dict | None = None,
                source: str = "config", data_file: str | Path | None = None) -> Config:
    """Config from a YAML file (or a dict via ``data``, errors naming ``source``), then the
    dataset of ``data_file`` (a prepared ``data.yaml``; by default ``data.prepared`` where that
    file exists), then ``--set`` style overrides."""
    values = _read_yaml(Path(path)) if path is not None else dict(data or {})
    overrides = parse_overrides(list(overrides))
    if data_file is None:  # the recipe's own prepared dataset, where it has been prepared
        prepared = _merge(values, overrides).get("data", {}).get("prepared")
        data_file = prepared if isinstance(prepared, str) and Path(prepared).is_file() else None
    if data_file is not None:
        values = _merge(values, {"data": read_data_file(data_file)})
    values = _merge(values, overrides)
    source = str(path) if path is not None else source
    cfg = _build(Config, values, source)
    for (section, key), allowed in CHOICES.items():
        value = getattr(getattr(cfg, section), key)
        if value not in allowed:
            raise ConfigError(f"{source}: {section}.{key}: {value!r} is not one of "
                              + ", ".join(map(str, allowed)))
    for (section, key), (test, allowed) in LIMITS.items():
        value = getattr(getattr(cfg, section), key)
        if value is not None and not test(value):
            raise ConfigError(f"{source}: {section}.{key}: {value!r} is not allowed; expected "
                              f"{allowed}")
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
