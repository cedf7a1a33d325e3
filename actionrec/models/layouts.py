"""The key layouts of published checkpoints and how each maps onto our models' keys.

A layout is a renaming, key by key, of a state dict (``read_weights`` has already unwrapped
``{"state_dict": ...}`` and DataParallel's ``module.``); a key it does not know maps to None.
Shapes are fitted afterwards against the model (``pretrained.adapt_tensor``): a 3D kernel of
temporal size 1, ``(O, I, 1, k, k)``, is the 2D kernel ``(O, I, k, k)`` of ours.

Each layout was checked against the implementation that writes it, on the same generated weights
and input (``tests/parity/``): the logits agree to 1e-4. Where the two architectures differ in a
way no renaming can bridge, the layout's ``differs`` says so for the backbone concerned, and
``actionrec convert`` refuses to write the result unless told to.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Layout:
    source: str  # who writes checkpoints in this layout
    models: tuple[str, ...]  # our models it converts to
    rename: Callable[[str], str | None]  # a source key -> ours, or None (not part of the layout)
    detect: Callable[[set[str]], bool]  # whether a checkpoint's keys are in this layout
    differs: Callable[[str], str | None] = lambda backbone: None  # what no renaming bridges


def _head(key: str) -> str | None:
    """TSN-style heads: ``new_fc`` (after dropout), or the base model's own ``fc`` (no dropout)."""
    for prefix in ("new_fc.", "base_model.fc."):
        if key.startswith(prefix):
            return "fc." + key.removeprefix(prefix)
    return None


def tsn_wrapped(trunk: Callable[[str], str]) -> Callable[[str], str | None]:
    """The renaming of a TSN-style wrapper (the GST, TSM and STM authors' code): the head as
    ``_head`` says, ``base_model.X`` as ``trunk("backbone.X")``, anything else unmapped."""

    def rename(key: str) -> str | None:
        if (head := _head(key)) is not None:
            return head
        if not key.startswith("base_model."):
            return None
        return trunk("backbone." + key.removeprefix("base_model."))

    return rename


@tsn_wrapped
def _gst_official(key: str) -> str:
    """GST.py's Bottleneck: ``conv2`` is the spatial path (1x3x3 conv on the first half of the
    channels), ``Tconv`` the temporal one (3x3x3 on the second half), concatenated spatial first:
    the same split and order as ``GSTConv``, so nothing is reordered."""
    key = re.sub(r"(layer\d\.\d+)\.conv2\.", r"\1.conv2.spatial.", key)
    return re.sub(r"(layer\d\.\d+)\.Tconv\.", r"\1.conv2.temporal.", key)


@tsn_wrapped
def _tsm_official(key: str) -> str:
    """ops/temporal_shift.py wraps each block's conv1 as ``conv1.net`` (residual shift); the
    shift itself has no weights and moves the same channels the same way as ours (the first
    1/shift_div read the next frame, the second the previous one)."""
    return key.replace(".conv1.net.", ".conv1.")


STM_AUTHOR = (  # the STM authors' module names -> ours, in order (the CMM's ``shift`` first)
    (".mb.stage_conv.", ".cmm.reduce."), (".mb.stage_bn.", ".cmm.bn."),
    (".mb.shift.", ".cmm.motion."), (".mb.conv1x1.", ".cmm.restore."), (".shift.", ".temporal."))


@tsn_wrapped
def _stm_author(key: str) -> str:
    """The STM authors' ``STM.py``: a torchvision Bottleneck whose ``shift`` (a channel-wise
    Conv1d over the T frames, our ``temporal``) runs before ``conv2`` and whose CMM is ``mb``
    (``stage_conv`` + ``stage_bn``, the depthwise ``shift``, ``conv1x1``; max-pooled in stride-2
    blocks), inside a TSN-style ``base_model``; the same order, kernels and taps as ours."""
    for theirs, ours in STM_AUTHOR:
        key = key.replace(theirs, ours)
    return key


def _mmaction2(key: str) -> str | None:
    """MMAction2's ResNet builds each conv + BN as a ``ConvModule`` (``convK.conv``,
    ``convK.bn``; the stem is ``conv1``, the shortcut ``downsample``) and ResNetTSM wraps conv1's
    conv as ``conv.net``; its head is ``cls_head.fc_cls``. The networks are torchvision's."""
    if key.startswith("cls_head.fc_cls."):
        return "fc." + key.removeprefix("cls_head.fc_cls.")
    if not key.startswith("backbone."):
        return None
    key = key.replace(".conv.net.", ".conv.")
    key = re.sub(r"\.conv(\d)\.conv\.", r".conv\1.", key)
    key = re.sub(r"\.conv(\d)\.bn\.", r".bn\1.", key)
    return key.replace(".downsample.conv.", ".downsample.0.").replace(".downsample.bn.",
                                                                      ".downsample.1.")


RESNET_KEY = re.compile(r"(conv1|bn1|layer[1-4]\.\d+\.\w+(\.\d+)?)\.\w+$")


def _resnet(key: str) -> str | None:
    """An ImageNet ResNet keyed as torchvision's (timm's ResNets are keyed alike): its trunk is
    our ``backbone``, its classifier our ``fc``."""
    if key.startswith("fc."):
        return key
    return "backbone." + key if RESNET_KEY.fullmatch(key) else None


def _resnet_keys(keys: set[str]) -> bool:
    return "conv1.weight" in keys and "layer1.0.conv1.weight" in keys


IMAGENET_INIT = ("tsn", "tsm", "stm", "gst", "gst_large", "c3d", "p3d", "stnet", "msti")

LAYOUTS = {
    "gst-official": Layout(
        "chenxuluo/GST-video (the GST authors' release)", ("gst", "gst_large"), _gst_official,
        lambda keys: any(".Tconv." in k for k in keys)),
    "stm-author": Layout(
        "the STM authors' code (Boyuan Jiang's STM.py and CMM.py, trained with their TSN "
        "wrapper)", ("stm",), _stm_author, lambda keys: any(".mb.stage_conv." in k for k in keys)),
    "tsm-official": Layout(
        "mit-han-lab/temporal-shift-module (the TSM authors' release)", ("tsm", "tsn"),
        _tsm_official,
        lambda keys: any(k.startswith("base_model.") for k in keys)
        and not any(".Tconv." in k or ".mb.stage_conv." in k for k in keys),
        differs=lambda backbone: (
            f"the TSM code shifts every other block of a {backbone} (n_round 2), ours every "
            "block: the weights carry over, the function does not"
            if backbone in ("resnet101", "resnet152") else None)),
    "mmaction2": Layout(
        "open-mmlab/mmaction2 (TSN and TSM ResNets, ResNetTSM)", ("tsn", "tsm"), _mmaction2,
        lambda keys: "backbone.conv1.conv.weight" in keys or any(
            k.startswith("cls_head.") for k in keys)),
    "torchvision": Layout(
        "torchvision.models.resnet18..152", IMAGENET_INIT, _resnet, _resnet_keys),
    # timm's ResNets have torchvision's keys and compute the same function: found as torchvision
    "timm": Layout("timm.create_model('resnet18'..'resnet152')", IMAGENET_INIT, _resnet,
                   _resnet_keys),
}


def detect_layout(keys: set[str]) -> str | None:
    """The layout whose detector accepts ``keys``; None for none (ours among them)."""
    return next((name for name, layout in LAYOUTS.items() if layout.detect(keys)), None)
