"""The parameter and MAC counts the papers print, to compare with ours (never returned as ours).

Each row names the registry model and options that build it and the input it was counted at;
``actionrec flops`` prints the rows of a model beside our count.
"""

from __future__ import annotations

from dataclasses import dataclass, field


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


PAPER_ROWS = [
    PaperRow("MSTI-Net Table 3", "MSTI-Net R50", "msti", 16.4, 46.3, 16, 224, 400),
    PaperRow("StNet Table 3", "StNet-R50", "stnet", 33.16, 189.29, 25, 256, 400),
    PaperRow("StNet Table 3", "StNet-R101", "stnet", 52.15, 310.50, 25, 256, 400, "resnet101"),
    PaperRow("GST Table 2", "C2D", "c2d", 23.9, None, 8, 224, 174),
    PaperRow("GST Table 2", "C3D groups=2", "c3d", 29.6, None, 8, 224, 174, options={"groups": 2}),
    PaperRow("GST Table 2", "GST-Large", "gst_large", 29.6, None, 8, 224, 174),
    PaperRow("GST Table 2", "GST alpha=1/2", "gst", 23.9, None, 8, 224, 174, options={"alpha": 0.5}),
    PaperRow("GST Table 2/3", "GST alpha=1/4", "gst", 21.0, 29.5, 8, 224, 174),
    PaperRow("GST Table 3", "GST 16 frames", "gst", 21.0, 59.0, 16, 224, 174),
    PaperRow("GST Table 2", "GST alpha=1/8", "gst", 19.7, None, 8, 224, 174,
             options={"alpha": 0.125}),
]


def rows_for(model: str) -> list[PaperRow]:
    return [row for row in PAPER_ROWS if row.model == model]
