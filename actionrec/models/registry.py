"""The model registry: a plain dict from name to ``ModelSpec``, and the one place that builds models.

A spec carries what a caller needs besides the builder (as timm's per-model default config does):

- ``input``: what the model takes. ``clips``: ``(N, T, 3, H, W)`` frames; ``snippets``: StNet's
  ``(N, T * n, 3, H, W)``, T segments of ``n`` consecutive frames (option ``n``; a config sets it
  as ``data.snippet_len``); ``features``: ``(N, T, C)`` sequences of extracted per-frame features
  (option ``in_features``; StNet Table 1's heads).
- ``paper``: the input of the paper table it is counted in: frames, crop size, classes, backbone,
  input-defining options, and the table. ``actionrec flops`` and ``bench --all`` start from it.
- ``options``: every keyword option of the builder with one line of help (``actionrec models``).
  Defaults come from the builder's signature. Every builder takes ``num_classes`` and
  ``num_frames`` positionally and its options keyword-only; the ResNet models follow the
  constructor contract of ``models/base.py``, the heads are functions returning a
  ``SequenceClassifier``. ``tests/models/test_registry.py`` checks every entry.

``example_input(spec, ...)`` is the one input every analysis and test builds a model's batch with.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from ..errors import ActionrecError, ConfigError
from ..validate import check_type, raised_as, shown
from .gst import C3D, GST, P3D, GSTLarge
from .heads import gru_classifier, lstm_classifier, temporal_conv_classifier, txb_classifier
from .msti import MSTINet
from .stm import STM
from .stnet import StNet
from .tsm import TSM
from .tsn import TSN

INPUT_KINDS = ("clips", "snippets", "features")


@dataclass(frozen=True)
class PaperInput:
    """The input a model is counted at in its paper's table (per view)."""

    source: str  # the paper table, e.g. "STM Table 9"
    frames: int  # T: frames, StNet's segments, or feature vectors
    classes: int
    size: int = 224  # crop side; 0 for feature sequences
    backbone: str | None = "resnet50"  # None for heads on feature sequences
    options: dict = field(default_factory=dict)  # options that define the input (in_features)


@dataclass(frozen=True)
class ModelSpec:
    """A registered model: its builder, the kind of input it takes, the input its paper counts it at
    and a line of help per option."""

    builder: Callable[..., nn.Module]
    input: str  # one of INPUT_KINDS
    paper: PaperInput
    options: dict[str, str]  # option -> one line of help

    @property
    def summary(self) -> str:
        """The first line of the builder's docstring."""
        return (inspect.getdoc(self.builder) or "").splitlines()[0]

    @property
    def defaults(self) -> dict[str, object]:
        """Each option with its default from the builder's signature."""
        params = inspect.signature(self.builder).parameters
        return {k: params[k].default for k in self.options}

    @property
    def types(self) -> dict[str, object]:
        """Each option's type, from the builder's annotations."""
        init = self.builder.__init__ if isinstance(self.builder, type) else self.builder
        hints = typing.get_type_hints(init)
        return {k: hints[k] for k in self.options}

    def describe_input(self, frames: int, size: int, options: dict | None = None) -> str:
        """The papers' notation of one view: ``8x224x224``, StNet's ``25x15x256x256`` (T x 3n
        channels), ``25 x 1536-d features``."""
        values = {**self.defaults, **(options or {})}
        if self.input == "features":
            return f"{frames} x {values['in_features']}-d features"
        channels = f"x{3 * values['n']}" if self.input == "snippets" else ""
        return f"{frames}{channels}x{size}x{size}"

    def describe_paper_input(self) -> str:
        p = self.paper
        return self.describe_input(p.frames, p.size, p.options)


TRUNK = {
    "backbone": "ResNet trunk: resnet18, resnet34, resnet50, resnet101, resnet152 (resnet26: small "
                "bottleneck net for CPU runs)",
    "dropout": "dropout rate before the classifier",
    "partial_bn": "TSN's partial BN: every backbone BN but the first keeps its ImageNet statistics",
    "frozen_stages": "stages 1..k get no gradient (1: stem, 2..5: layer1..layer4)",
}
HEAD = {
    "in_features": "width of the per-frame feature vectors (2048: ResNet-50, 1536: "
                   "InceptionResNet-V2 as in StNet Table 1)",
    "dropout": "dropout rate before the classifier",
}
STHV1 = dict(frames=8, classes=174)  # Something-Something v1 at 8 frames of 224x224
STNET_TABLE_1 = PaperInput("StNet Table 1", 25, 400, size=0, backbone=None,
                           options={"in_features": 1536})
GST_TABLE_2 = PaperInput("GST Table 2", **STHV1)

MODELS: dict[str, ModelSpec] = {
    "tsn": ModelSpec(TSN, "clips", PaperInput("STM Table 1", **STHV1), TRUNK),
    "tsm": ModelSpec(TSM, "clips", PaperInput("STM Table 9", **STHV1), {
        **TRUNK, "shift_div": "1/shift_div of the channels shift one frame each way"}),
    "stm": ModelSpec(STM, "clips", PaperInput("STM Table 9", **STHV1), {
        **TRUNK,
        "modules": "both | cstm | cmm: the STM block's branches (Table 5)",
        "fusion": "sum | concat: how CSTM and CMM are fused (Table 6)",
        "temporal_conv": "channelwise | ordinary: CSTM's temporal conv (Table 8)",
        "stages": "paper stages 2..5 whose blocks are STM blocks (Table 7)",
        "blocks": "all | first: every block of those stages or the first of each (Table 7)"}),
    "gst": ModelSpec(GST, "clips", PaperInput("GST Tables 2-3", **STHV1), {
        **TRUNK,
        "alpha": "share of each 3x3 conv's outputs on the temporal (3x3x3) path (Table 2)",
        "beta": "1/2: the paths split the inputs; 1: both see all (GST-Large)"}),
    "gst_large": ModelSpec(GSTLarge, "clips", GST_TABLE_2, {
        **TRUNK, "alpha": "share of each 3x3 conv's outputs on the temporal (3x3x3) path"}),
    "c2d": ModelSpec(TSN, "clips", GST_TABLE_2, TRUNK),  # GST's name for the 2D baseline
    "c3d": ModelSpec(C3D, "clips", GST_TABLE_2, {
        **TRUNK, "groups": "1 | 2: groups of every 3x3x3 conv (Table 2)"}),
    "p3d": ModelSpec(P3D, "clips", GST_TABLE_2, TRUNK),
    "stnet": ModelSpec(StNet, "snippets", PaperInput("StNet Table 3", 25, 400, size=256), {
        **TRUNK,
        "n": "frames per super-image (Sec. 3: 5; configs set data.snippet_len)",
        "temporal_blocks": "temporal modeling blocks after res3 and res4 (Table 2)",
        "head": "txb | avg: temporal Xception head or TSN's average of scores (Table 2)"}),
    "msti": ModelSpec(MSTINet, "clips", PaperInput("MSTI-Net Table 3", 16, 400), {
        **TRUNK,
        "variant": "p3d_b | ms_t | ms_s | ms_st | msti: Table 2's ablation variants",
        "shared_caw": "one set of CAW weights for the four groups (reading 3, msti.py)",
        "temporal_stride": "temporal stride of conv2_x's first block (Table 1: 2)",
        "temporal_kernel": "temporal extent of conv1, max-pool and the temporal branch (1: "
                           "spatial-only control)"}),
    "txb": ModelSpec(txb_classifier, "features", STNET_TABLE_1, {
        **HEAD,
        "bn": "the input BN1d (Table 1 ablation)",
        "channelwise": "both channel-wise temporal convs (Table 1 ablation)",
        "temporalwise": "the long branch's second temporal-wise conv (Table 1 ablation)",
        "short": "the short branch (Table 1 ablation)",
        "long": "the long branch (Table 1 ablation)"}),
    "temporal_conv": ModelSpec(temporal_conv_classifier, "features", STNET_TABLE_1, HEAD),
    "lstm": ModelSpec(lstm_classifier, "features", STNET_TABLE_1, HEAD),
    "gru": ModelSpec(gru_classifier, "features", STNET_TABLE_1, HEAD),
}


def get_spec(name: str) -> ModelSpec:
    """The ``ModelSpec`` registered as ``name``; an unknown name is an error listing the registered ones."""
    if name not in MODELS:
        raise ActionrecError(f"unknown model {name!r}; registered: {', '.join(sorted(MODELS))}")
    return MODELS[name]


def check_options(name: str, options: dict, section: str | None = None) -> dict:
    """``options`` of model ``name`` as its builder takes them: each one of its options, of the
    type its annotation says (``validate.check_type``: an int given for a float made a float,
    numbers finite). ``ConfigError`` otherwise, naming ``section.KEY`` (a config's
    ``model.options``) or the model and the option, and listing the options."""
    spec = get_spec(name)
    types, checked = spec.types, {}
    for key, value in options.items():
        label = key if isinstance(key, str) and key.isprintable() else shown(key)
        where = f"{section}.{label}" if section else f"model {name!r} option {label}"
        if key not in spec.options:
            raise ConfigError((f"{where}: " if section else "") + f"model {name!r} has no option "
                              f"{label}; its options: "
                              + ", ".join(f"{k}={v!r}" for k, v in spec.defaults.items()))
        with raised_as(ConfigError):
            checked[key] = check_type(value, types[key], where)
    return checked


def build_model(name: str, *, num_classes: int, num_frames: int, **options) -> nn.Module:
    """The registered model ``name``, its ``options`` checked (``check_options``)."""
    spec = get_spec(name)
    options = check_options(name, options)
    try:
        return spec.builder(num_classes=num_classes, num_frames=num_frames, **options)
    except ValueError as e:
        raise ActionrecError(f"model {name!r}: {e}") from None


def example_input(spec: ModelSpec, *, frames: int, size: int = 224, batch: int = 1,
                  options: dict | None = None, generator: torch.Generator | None = None
                  ) -> torch.Tensor:
    """A batch for a model of ``spec`` built with ``frames`` and ``options``: zeros, or normal
    noise from ``generator``. Clips ``(batch, frames, 3, size, size)``; snippets ``(batch,
    frames * n, 3, size, size)``; features ``(batch, frames, in_features)`` (``size`` unused)."""
    values = {**spec.defaults, **(options or {})}
    if spec.input == "features":
        shape = (batch, frames, values["in_features"])
    else:
        n = values["n"] if spec.input == "snippets" else 1
        shape = (batch, frames * n, 3, size, size)
    return torch.zeros(shape) if generator is None else torch.randn(shape, generator=generator)


def build_with_input(name: str, *, classes: int, frames: int, size: int = 224,
                     backbone: str | None = None, options: dict | None = None, batch: int = 1,
                     generator: torch.Generator | None = None) -> tuple[nn.Module, torch.Tensor]:
    """The registered model and its ``example_input``; ``backbone`` None keeps the model's
    default (heads on feature sequences take none and ignore it)."""
    spec = get_spec(name)
    options = dict(options or {})
    if backbone is not None and spec.input != "features":
        options["backbone"] = backbone
    model = build_model(name, num_classes=classes, num_frames=frames, **options)
    return model, example_input(spec, frames=frames, size=size, batch=batch, options=options,
                                generator=generator)


def describe_models() -> str:
    """Per model: name, first docstring line, input, paper input, each option with its default
    and help line."""
    lines = []
    for name, spec in sorted(MODELS.items()):
        p = spec.paper
        lines.append(f"{name}\n  {spec.summary}\n  input: {spec.input}; paper: "
                     f"{spec.describe_paper_input()}, {p.classes} classes ({p.source})")
        width = max(len(f"{k}={v!r}") for k, v in spec.defaults.items())
        lines += [f"    {f'{k}={v!r}':<{width}}  {spec.options[k]}" for k, v in spec.defaults.items()]
    return "\n".join(lines)
