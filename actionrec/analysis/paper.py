"""The parameter and MAC counts the papers print, to compare with ours (never returned as ours).

Each row names the registry model and options that build it and the input it was counted at;
``actionrec flops`` prints the rows of a model beside our count and the model tests assert ours
against them (each with its paper's tolerance).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from ..models.registry import build_model


@dataclass(frozen=True)
class PaperRow:
    source: str  # paper and table
    label: str
    model: str  # registry name
    params_m: float | None  # millions, None where the paper prints none
    gmacs: float | None  # per view (the papers' "FLOPs")
    frames: int
    size: int
    classes: int
    backbone: str = "resnet50"
    options: dict = field(default_factory=dict)


def _sthv1(source, label, model, params_m, gmacs, frames, **options):
    """A row at Something-Something v1's setting: 174 classes, 224x224."""
    return PaperRow(source, label, model, params_m, gmacs, frames, 224, 174, options=options)


PAPER_ROWS = [
    # STM (ICCV 2019): Table 9 (TSN, TSM, STM at 8 and 16 frames), Table 8 (CSTM-only rows)
    *(_sthv1("STM Table 9", f"{label} {t}f", name, params, gmacs, t)
      for label, name, params, by_frames in [("TSN", "tsn", 23.9, {8: 32.9, 16: 65.8}),
                                             ("TSM", "tsm", 23.9, {8: 32.9, 16: 65.8}),
                                             ("STM", "stm", 24.0, {8: 33.3, 16: 66.5})]
      for t, gmacs in by_frames.items()),
    _sthv1("STM Table 8", "CSTM only, channel-wise", "stm", 23.88, 32.93, 8, modules="cstm"),
    _sthv1("STM Table 8", "CSTM only, ordinary conv", "stm", 27.64, 40.59, 8, modules="cstm",
           temporal_conv="ordinary"),
    # GST (ICCV 2019): Table 2 (parameters, 8 frames), Table 3 (MACs)
    _sthv1("GST Table 2", "C2D", "c2d", 23.9, None, 8),
    _sthv1("GST Table 2", "C3D groups=2", "c3d", 29.6, None, 8, groups=2),
    _sthv1("GST Table 2", "GST-Large", "gst_large", 29.6, None, 8),
    _sthv1("GST Table 2", "GST alpha=1/2", "gst", 23.9, None, 8, alpha=0.5),
    _sthv1("GST Tables 2-3", "GST alpha=1/4", "gst", 21.0, 29.5, 8),
    _sthv1("GST Table 3", "GST 16 frames", "gst", 21.0, 59.0, 16),
    _sthv1("GST Table 2", "GST alpha=1/8", "gst", 19.7, None, 8, alpha=0.125),
    # StNet (AAAI 2019): Table 3, T=25 super-images of 5 frames, Kinetics-400
    PaperRow("StNet Table 3", "StNet-R50", "stnet", 33.16, 189.29, 25, 256, 400),
    PaperRow("StNet Table 3", "StNet-R101", "stnet", 52.15, 310.50, 25, 256, 400, "resnet101"),
    # MSTI-Net (IJCAI 2020): Table 3, Kinetics-400
    PaperRow("MSTI-Net Table 3", "MSTI-Net R50", "msti", 16.4, 46.3, 16, 224, 400),
]


def rows_for(model: str) -> list[PaperRow]:
    return [row for row in PAPER_ROWS if row.model == model]


def rows_from(paper: str) -> list[PaperRow]:
    """The rows whose source starts with ``paper`` (e.g. "STM", "GST Table 2")."""
    return [row for row in PAPER_ROWS if row.source.startswith(paper)]


def build(row: PaperRow, **options) -> tuple[nn.Module, torch.Tensor]:
    """Our model for ``row`` (``options`` on top of the row's) and a zero input at its size."""
    model = build_model(row.model, num_classes=row.classes, num_frames=row.frames,
                        backbone=row.backbone, **{**row.options, **options})
    return model, torch.zeros(1, model.input_frames, 3, row.size, row.size)
