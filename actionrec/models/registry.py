"""The model registry: a plain dict from name to builder, and the one place that builds models.

Every builder takes ``num_classes`` and ``num_frames`` plus its own keyword options; the common
ones are ``backbone``, ``dropout``, ``partial_bn`` and ``frozen_stages``.
"""

from __future__ import annotations

import inspect

from torch import nn

from ..errors import ActionrecError
from .gst import C3D, GST, P3D, GSTLarge
from .heads import gru_classifier, lstm_classifier, temporal_conv_classifier, txb_classifier
from .msti import MSTINet
from .stm import STM
from .stnet import StNet
from .tsm import TSM
from .tsn import TSN

MODELS = {
    "tsn": TSN,
    "tsm": TSM,
    "stm": STM,
    "gst": GST,
    "gst_large": GSTLarge,
    "c2d": TSN,  # GST's name for the per-frame 2D baseline
    "c3d": C3D,
    "p3d": P3D,
    "stnet": StNet,
    "msti": MSTINet,
    # heads on extracted feature sequences (N, T, C): StNet Table 1
    "txb": txb_classifier,
    "temporal_conv": temporal_conv_classifier,
    "lstm": lstm_classifier,
    "gru": gru_classifier,
}


def model_options(name: str) -> dict[str, object]:
    """Keyword options of a registered model with their defaults."""
    if name not in MODELS:
        raise ActionrecError(f"unknown model {name!r}; registered: {', '.join(sorted(MODELS))}")
    params = inspect.signature(MODELS[name]).parameters
    return {k: p.default for k, p in params.items()
            if k not in ("num_classes", "num_frames") and p.kind is not p.KEYWORD_ONLY}


def build_model(name: str, *, num_classes: int, num_frames: int, **options) -> nn.Module:
    valid = model_options(name)
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise ActionrecError(f"model {name!r} has no option {', '.join(unknown)}; its options: "
                             + ", ".join(f"{k}={v!r}" for k, v in valid.items()))
    try:
        return MODELS[name](num_classes=num_classes, num_frames=num_frames, **options)
    except ValueError as e:
        raise ActionrecError(f"model {name!r}: {e}") from None


def describe_models() -> str:
    """One paragraph per model: name, first docstring line, options with defaults."""
    lines = []
    for name, builder in sorted(MODELS.items()):
        doc = (inspect.getdoc(builder) or "").splitlines()[0]
        opts = ", ".join(f"{k}={v!r}" for k, v in model_options(name).items())
        lines.append(f"{name:<10} {doc}\n{'':<10} options: {opts}")
    return "\n".join(lines)
