"""The parameter and MAC counts the papers print, to compare with ours (never returned as ours).

Every row of the papers' params/FLOPs tables that prints a figure: STM Tables 8-9, GST Tables 1-3,
StNet Tables 1 and 3 (Kinetics-400 block; the Kinetics-600 block of the extracted text is a
garbled copy of the same models), MSTI-Net Table 3. A row names the registry model and options
that build it and the input it was counted at; rows of methods or backbones we do not build keep
the paper's numbers and say why (``unbuilt``). Where our count knowingly differs, ``reading``
names the documented reading behind it. ``actionrec tables`` prints them all beside our counts,
``actionrec flops`` the rows of one model, and the model tests assert the rows marked ``checked``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from ..models.registry import build_with_input, get_spec
from ..report.flops import count_macs, count_params
from ..report.tables import markdown_table, text_table


@dataclass(frozen=True)
class PaperRow:
    source: str  # paper and table
    label: str
    model: str | None  # registry name; None for a row we do not build (see ``unbuilt``)
    params_m: float | None  # millions, None where the paper prints none
    gmacs: float | None  # per view (the papers' "FLOPs"); multi-view totals only on unbuilt rows
    frames: int = 8
    size: int = 224
    classes: int = 174
    backbone: str | None = "resnet50"  # None: a head on feature sequences (StNet Table 1)
    options: dict = field(default_factory=dict)
    input: str = ""  # the paper's notation, where frames x size does not say it
    part: str = ""  # count only this submodule (GST Table 1: one replaced 3x3 conv)
    reading: str = ""  # why our count differs from the paper's (the model's docstring has more)
    unbuilt: str = ""  # why we do not build this row

    @property
    def checked(self) -> bool:
        """Built and claimed to match: the model tests assert these (each with its tolerance)."""
        return self.model is not None and not self.reading

    def describe_input(self) -> str:
        return self.input or f"{self.frames}x{self.size}x{self.size}"


def _sthv1(source, label, model, params_m, gmacs, frames=8, reading="", **options):
    """A row at Something-Something v1's setting: 174 classes, 224x224."""
    return PaperRow(source, label, model, params_m, gmacs, frames, options=options,
                    reading=reading)


def _other(source, label, params_m, gmacs, input, why):
    """A row of a method (or backbone) we do not build."""
    return PaperRow(source, label, None, params_m, gmacs, input=input, unbuilt=why)


def _gst_block(label, model, factor, **options):
    """GST Table 1 evaluated at one res4 3x3 conv (C_i = C_o = 256, H = W = T = 3, alpha = 1/4,
    g = 2): ``factor`` x H W C_i C_o, and ours counted on the same conv of our ResNet-50."""
    return PaperRow("GST Table 1", label, model, factor * 9 * 256 * 256 / 1e6, None,
                    options=options, input="3x3 conv, res4, 256->256",
                    part="backbone.layer3.1.conv2")


def _stnet_head(label, model, params_m, reading=""):
    """StNet Table 1: a head on 25 InceptionResNet-V2 feature vectors (1536-d), Kinetics-400."""
    return PaperRow("StNet Table 1", label, model, params_m, None, 25, 0, 400, None,
                    {"in_features": 1536}, input="25 x 1536-d features", reading=reading)


NOT_OURS = "another method, not in actionrec"
C3D_READING = "C3D inflates every 3x3 conv (Fig. 2); no reading reproduces 42.5M (gst.py)"
P3D_READING = "P3D-A after every 3x3 conv, C_o -> C_o (Fig. 2); 29.4M not reproduced (gst.py)"
MSTI_READING = ("Table 1's temporal stride 2 halves the frames after conv1: 24.7 GMACs; "
                "without it 43.7 (msti.py, reading 5)")

PAPER_ROWS = [
    # STM (ICCV 2019), Something-Something v1
    _sthv1("STM Table 8", "CSTM only, channel-wise", "stm", 23.88, 32.93, modules="cstm"),
    _sthv1("STM Table 8", "CSTM only, ordinary conv", "stm", 27.64, 40.59, modules="cstm",
           temporal_conv="ordinary"),
    _other("STM Table 9", "I3D", 28.0, 306, "64 frames", NOT_OURS),
    _other("STM Table 9", "ECO", 47.5, 64, "16 frames", NOT_OURS),
    _sthv1("STM Table 9", "TSM 8f", "tsm", 23.9, 32.9, 8),
    _sthv1("STM Table 9", "TSM 16f", "tsm", 23.9, 65.8, 16),
    _sthv1("STM Table 9", "STM 8f", "stm", 24.0, 33.3, 8),
    _sthv1("STM Table 9", "STM 16f", "stm", 24.0, 66.5, 16),
    # GST (ICCV 2019): Table 1 (parameters of one block), Table 2 (ResNet-50, 8 frames), Table 3
    _gst_block("C2D: HW Ci Co", "c2d", 1),
    _gst_block("C3D: THW Ci Co", "c3d", 3),
    _gst_block("P3D: (HW + T) Ci Co", "p3d", 12 / 9),
    _gst_block("C3D(groups=2): THW/g Ci Co", "c3d", 3 / 2, groups=2),
    _gst_block("GST-Large: (1 - a + aT) HW Ci Co", "gst_large", 1.5),
    _gst_block("GST: (1 - a + aT) HW Ci Co / 2", "gst", 0.75),
    _sthv1("GST Table 2", "C3D 3x3x3", "c3d", 42.5, None, reading=C3D_READING),
    _sthv1("GST Table 2", "C3D groups=2", "c3d", 29.6, None, groups=2),
    _sthv1("GST Table 2", "P3D", "p3d", 29.4, None, reading=P3D_READING),
    _sthv1("GST Table 2", "GST-Large (1/4)", "gst_large", 29.6, None),
    _sthv1("GST Table 2", "C2D", "c2d", 23.9, None),
    _sthv1("GST Table 2", "GST alpha=1/2", "gst", 23.9, None, alpha=0.5),
    _sthv1("GST Tables 2-3", "GST alpha=1/4", "gst", 21.0, 29.5),
    _sthv1("GST Table 2", "GST alpha=1/8", "gst", 19.7, None, alpha=0.125),
    _other("GST Table 3", "ECO (BN-Inception + 3D ResNet-18)", None, 32, "8 frames", NOT_OURS),
    _other("GST Table 3", "ECO (BN-Inception + 3D ResNet-18)", None, 64, "16 frames", NOT_OURS),
    _other("GST Table 3", "NL I3D (3D ResNet-50)", None, 168, "32 frames x 2 clips (per clip)",
           NOT_OURS),
    _sthv1("GST Table 3", "TSM 8f", "tsm", None, 33, 8),
    _sthv1("GST Table 3", "TSM 16f", "tsm", None, 65, 16),
    _other("GST Table 3", "S3D (BN-Inception)", None, 66.38, "64 frames", NOT_OURS),
    _other("GST Table 3", "S3D-G (BN-Inception)", None, 71.38, "64 frames", NOT_OURS),
    _sthv1("GST Table 3", "GST 16f", "gst", 21.0, 59.0, 16),
    # StNet (AAAI 2019): Table 1 (heads), Table 3 (Kinetics-400)
    _stnet_head("TXB", "txb", 4.6),
    _stnet_head("LSTM", "lstm", 10.9),
    _stnet_head("GRU", "gru", 8.3),
    _stnet_head("Ordinary Temporal-Conv", "temporal_conv", 9.6,
                reading="two kernel-3 Conv1d of 1024 as described; 9.6M not reproduced (heads.py)"),
    _other("StNet Table 3", "C2D ResNet50 (Wang et al.)", 24.27, 26.29, "32x3x256x256 x 1",
           "Wang et al.'s C2D pools time; not our per-frame c2d"),
    _other("StNet Table 3", "C2D ResNet50 (Wang et al.)", None, 262.9, "32x3x256x256 x 10",
           "Wang et al.'s C2D pools time; not our per-frame c2d"),
    _other("StNet Table 3", "C3D ResNet50 (Wang et al.)", 35, 164.84, "32x3x256x256 x 1",
           "Wang et al.'s C3D inflates to 3x1x1 kernels; not GST's c3d"),
    _other("StNet Table 3", "C3D ResNet50 (Wang et al.)", None, 1648.4, "32x3x256x256 x 10",
           "Wang et al.'s C3D inflates to 3x1x1 kernels; not GST's c3d"),
    _other("StNet Table 3", "I3D BN-Inception", 12.7, 544.44, "All x3x256x256", NOT_OURS),
    _other("StNet Table 3", "S3D BN-Inception", 8.8, 518.6, "All x3x224x224", NOT_OURS),
    _other("StNet Table 3", "MF-Net", 8.0, 11.1, "16x3x224x224 x 1", NOT_OURS),
    _other("StNet Table 3", "MF-Net", None, 555, "16x3x224x224 x 50", NOT_OURS),
    _other("StNet Table 3", "R(2+1)D-RGB ResNet34", 63.8, 1524, "32x3x112x112 x 10", NOT_OURS),
    _other("StNet Table 3", "Nonlocal-I3D ResNet50", 35.33, 145.7, "128x3x224x224 x 1", NOT_OURS),
    _other("StNet Table 3", "Nonlocal-I3D ResNet50", None, 4371, "128x3x224x224 x 30", NOT_OURS),
    PaperRow("StNet Table 3", "StNet ResNet50", "stnet", 33.16, 189.29, 25, 256, 400,
             input="25x15x256x256"),
    PaperRow("StNet Table 3", "StNet ResNet101", "stnet", 52.15, 310.50, 25, 256, 400,
             "resnet101", input="25x15x256x256"),
    _other("StNet Table 3", "TSN InceptionResNet-V2", 55.23, 410.85, "25x3x331x331",
           "InceptionResNet-V2 backbone (we build ResNets)"),
    _other("StNet Table 3", "TSN SE-ResNeXt152", 142.94, 875.21, "25x3x256x256",
           "SE-ResNeXt backbone (we build ResNets)"),
    _other("StNet Table 3", "StNet SE-ResNeXt101", 79.13, 453.95, "25x15x256x256",
           "SE-ResNeXt backbone (we build ResNets)"),
    _other("StNet Table 3", "StNet InceptionResNet-V2", 72.13, 439.57, "25x15x331x331",
           "InceptionResNet-V2 backbone (we build ResNets)"),
    # MSTI-Net (IJCAI 2020): Table 3, Kinetics-400
    _other("MSTI-Net Table 3", "C3D (Tran et al.)", 79.0, 296.7, "16x3x112x112 x 1", NOT_OURS),
    _other("MSTI-Net Table 3", "LRCN", 9.0, 41.5, "25x3x224x224 x 1", NOT_OURS),
    _other("MSTI-Net Table 3", "ARTNet ResNet18", 35.2, 25.7, "16x3x112x112 x 25", NOT_OURS),
    _other("MSTI-Net Table 3", "I3D-RGB BN-Inception", 12.7, 544.4, "All x3x256x256", NOT_OURS),
    PaperRow("MSTI-Net Table 3", "StNet ResNet101", "stnet", 52.2, 310.5, 25, 256, 400,
             "resnet101", input="25x15x256x256"),
    _other("MSTI-Net Table 3", "R(2+1)D-RGB ResNet34", 63.8, 152.4, "32x3x112x112 x 10",
           NOT_OURS),
    _other("MSTI-Net Table 3", "S3D BN-Inception", 8.8, 518.6, "All x3x224x224", NOT_OURS),
    _other("MSTI-Net Table 3", "MRST-Net ResNet101", 31.7, 99.6, "16x3x224x224 x 20", NOT_OURS),
    _other("MSTI-Net Table 3", "CFST ResNet34", 12.9, 14.1, "16x3x224x224 x 50", NOT_OURS),
    _other("MSTI-Net Table 3", "Nonlocal-I3D ResNet50", 35.3, 163.3, "32x3x224x224 x 10",
           NOT_OURS),
    _other("MSTI-Net Table 3", "SlowFast ResNet50", 32.9, 36.1, "64x3x224x224 x 10", NOT_OURS),
    PaperRow("MSTI-Net Table 3", "MSTI-Net ResNet50", "msti", 16.4, 46.3, 16, 224, 400,
             reading=MSTI_READING),
]


def rows_for(model: str) -> list[PaperRow]:
    """The whole-model rows of a registered model (no single-block rows)."""
    return [row for row in PAPER_ROWS if row.model == model and not row.part]


def rows_from(paper: str, *, checked: bool = False) -> list[PaperRow]:
    """The rows whose source starts with ``paper`` (e.g. "STM", "GST Table 2"); ``checked``: only
    the rows we build and claim to match."""
    return [row for row in PAPER_ROWS
            if row.source.startswith(paper) and (row.checked or not checked)]


def build(row: PaperRow, **options) -> tuple[nn.Module, torch.Tensor]:
    """Our model for ``row`` (``options`` on top of the row's) and a zero input at its size.

    Builds on the current default device: under ``torch.device("meta")`` nothing is allocated
    or initialised, which is all that counting needs.
    """
    if row.model is None:
        raise ValueError(f"{row.source} {row.label}: not built ({row.unbuilt})")
    return build_with_input(row.model, classes=row.classes, frames=row.frames, size=row.size,
                            backbone=row.backbone, options={**row.options, **options})


def compare_model(name: str, *, backbone: str | None = None, frames: int | None = None,
                  size: int | None = None, classes: int | None = None,
                  options: dict | None = None) -> dict:
    """Our params and MACs per view of one model (``actionrec flops``) beside the paper rows of
    the same model, input and options. Unset input values are the model's paper input
    (``ModelSpec.paper``); options start from the paper input's."""
    spec = get_spec(name)
    p = spec.paper
    backbone = None if spec.input == "features" else backbone or p.backbone
    frames, size, classes = frames or p.frames, size or p.size, classes or p.classes
    options = {**p.options, **(options or {})}
    model, example = build_with_input(name, classes=classes, frames=frames, size=size,
                                      backbone=backbone, options=options)
    same = [r for r in rows_for(name)
            if (r.backbone, r.frames, r.size, r.classes) == (backbone, frames, size, classes)
            and {**spec.defaults, **r.options} == {**spec.defaults, **options}]
    return {"model": name, "backbone": backbone, "frames": frames, "size": size,
            "classes": classes, "input": "x".join(map(str, example.shape[1:])),
            "params": count_params(model), "macs": count_macs(model, example), "paper": same}


def _versus(paper: float | None, ours: float) -> str:
    return "-" if paper is None else f"{paper:g} ({100 * (ours / paper - 1):+.1f} % ours)"


def format_comparison(result: dict) -> str:
    """``compare_model``'s result as the lines ``actionrec flops`` prints."""
    params, macs = result["params"], result["macs"]
    lines = [f"{result['model']} ({result['backbone'] or 'features'}, input {result['input']}, "
             f"{result['classes']} classes): {params / 1e6:.2f} M params, {macs / 1e9:.2f} GMACs "
             "per view (multiply-accumulates, the papers' FLOPs)"]
    lines += [f"  paper, {r.source} ({r.label}): params {_versus(r.params_m, params / 1e6)}, "
              f"GMACs {_versus(r.gmacs, macs / 1e9)}" for r in result["paper"]]
    return "\n".join(lines)


def compare(rows: list[PaperRow]) -> list[dict]:
    """Our parameter and MAC counts beside each row's (None where we do not build the row; MACs
    for whole models, not single blocks). Counted on the meta device: shapes only."""
    counted: dict[tuple, tuple[float, float | None]] = {}
    results = []
    for row in rows:
        ours_params = ours_gmacs = None
        if row.model is not None:
            key = (row.model, row.backbone, row.frames, row.size, row.classes,
                   tuple(sorted(row.options.items())), row.part)
            if key not in counted:
                with torch.device("meta"):
                    model, example = build(row)
                    part = model.get_submodule(row.part) if row.part else model
                    counted[key] = (count_params(part) / 1e6,
                                    None if row.part else count_macs(model, example) / 1e9)
            ours_params, ours_gmacs = counted[key]
        results.append({"row": row, "params_m": ours_params, "gmacs": ours_gmacs})
    return results


HEADERS = ["source", "model", "input", "paper params M", "ours", "diff %", "paper GMACs", "ours",
           "diff %", "note"]


def _number(x: float | None, paper: bool = False) -> str:
    """The paper's figures as printed; ours to 2 decimals (3 below 1)."""
    return "-" if x is None else f"{x:g}" if paper else f"{x:.3f}" if x < 1 else f"{x:.2f}"


def _diff(paper: float | None, ours: float | None) -> str:
    return "-" if paper is None or ours is None else f"{100 * (ours / paper - 1):+.1f}"


def render(results: list[dict], *, markdown: bool = False) -> str:
    """The comparison as a terminal or Markdown table, with the notes as numbered footnotes."""
    notes: list[str] = []
    cells = []
    for r in results:
        row = r["row"]
        note = f"not built: {row.unbuilt}" if row.unbuilt else row.reading
        if note and note not in notes:
            notes.append(note)
        cells.append([row.source, row.label, row.describe_input(),
                      _number(row.params_m, paper=True), _number(r["params_m"]),
                      _diff(row.params_m, r["params_m"]), _number(row.gmacs, paper=True),
                      _number(r["gmacs"]), _diff(row.gmacs, r["gmacs"]),
                      f"[{notes.index(note) + 1}]" if note else ""])
    table = (markdown_table if markdown else text_table)(HEADERS, cells)
    footnotes = [f"[{i}] {note}" for i, note in enumerate(notes, 1)]
    legend = ("GMACs: multiply-accumulates per view (the papers' \"FLOPs\"); ours counted by "
              "torch.utils.flop_counter on our models; diff % = ours / paper - 1.")
    return table + "\n\n" + ("\n\n" if markdown else "\n").join([legend, *footnotes])
