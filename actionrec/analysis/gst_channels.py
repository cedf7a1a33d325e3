"""GST Fig. 4: how much each block uses its spatial and its temporal channels.

The BN after a GST module scales its spatial outputs and its temporal outputs separately; the
distribution of |gamma| per group shows which path a trained block relies on (Sec. 4.6).
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
from torch import nn

from ..models.gst import GSTConv
from ..report.plots import pyplot


def bn_scales(model: nn.Module) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """``(block name, |gamma| of spatial channels, |gamma| of temporal channels)`` per GST module;
    the BN is the one that follows the conv in its block (``convK`` -> ``bnK``)."""
    modules = dict(model.named_modules())
    out = []
    for name, module in modules.items():
        if not isinstance(module, GSTConv):
            continue
        parent, _, conv = name.rpartition(".")
        bn = modules[f"{parent}.bn{conv.removeprefix('conv')}"]
        gamma = bn.weight.detach().abs().cpu().numpy()
        out.append((name.removeprefix("backbone."), gamma[: module.spatial_out],
                    gamma[module.spatial_out :]))
    if not out:
        raise ValueError("the model has no GST module")
    return out


def write_channel_report(model: nn.Module, out_dir: str | Path) -> dict[str, Path]:
    """``gst_channels.csv`` (block, path, channel, scale) and ``gst_channels.png`` (histograms)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    scales = bn_scales(model)
    paths = {"csv": out / "gst_channels.csv", "png": out / "gst_channels.png"}
    with open(paths["csv"], "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["block", "path", "channel", "bn_scale"])
        for block, spatial, temporal in scales:
            for path, values in (("spatial", spatial), ("temporal", temporal)):
                writer.writerows([block, path, i, f"{v:.6g}"] for i, v in enumerate(values))
    plt = pyplot()
    cols = min(4, len(scales))
    rows = math.ceil(len(scales) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.4 * rows), squeeze=False)
    for ax, (block, spatial, temporal) in zip(axes.flat, scales, strict=False):
        bins = np.linspace(0, max(spatial.max(), temporal.max()) + 1e-6, 20)
        ax.hist(spatial, bins, alpha=0.6, density=True, label="spatial")
        ax.hist(temporal, bins, alpha=0.6, density=True, label="temporal")
        ax.set_title(block, fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(scales):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7)
    fig.suptitle("BN scale |gamma| of spatial vs temporal channels per GST block (GST Fig. 4)")
    fig.tight_layout()
    fig.savefig(paths["png"], dpi=90)
    plt.close(fig)
    return paths
