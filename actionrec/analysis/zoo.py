"""``actionrec zoo``: every recipe of configs/ as one row: what it reproduces, at what cost.

A recipe is a config whose ``recipe:`` section names the paper, table, dataset and the paper's
top-1 (files whose name starts with ``_`` are shared bases, not recipes). Each row puts our
params and MACs per view (counted on the meta device at the recipe's input) beside the paper's
count for the same model and input where it prints one, and estimates the compute a training
run needs: 3 x MACs per view (forward and backward) x training clips x epochs, and the GPU hours
that implies at ``GPU_MACS_PER_S``. That throughput is an assumption, not a measurement: the
hours are an estimate.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from ..config import Config, read_config
from ..errors import ActionrecError
from ..report.tables import markdown_table, text_table
from .paper import PAPER_ROWS, compare_model

# classes and official training clips of each dataset (label maps of ../shared/data; clip counts
# as released, UCF101/HMDB51 split 1 as counted from the official split files)
DATASETS = {"sthv1": (174, 86_017), "sthv2": (174, 168_913), "jester": (27, 118_562),
            "kinetics400": (400, 246_535), "kinetics600": (600, 392_622),
            "kinetics700": (700, 545_317), "ucf101": (101, 9_537), "hmdb51": (51, 3_570),
            "diving48": (48, 15_027)}
GPU_MACS_PER_S = 50e12  # assumed sustained: about a third of an A100's bf16 peak (156 TMAC/s)
TRAIN_PASSES = 3  # a backward pass costs about twice the forward one


@dataclass(frozen=True)
class ZooRow:
    path: str
    cfg: Config
    params: int
    macs: int  # per view
    paper_params_m: float | None
    paper_gmacs: float | None

    @property
    def train_macs(self) -> float:
        return TRAIN_PASSES * self.macs * DATASETS[self.cfg.recipe.dataset][1] * self.cfg.train.epochs

    @property
    def gpu_hours(self) -> float:
        return self.train_macs / GPU_MACS_PER_S / 3600


def recipe_paths(folder: str | Path = "configs") -> list[Path]:
    folder = Path(folder)
    if not folder.is_dir():
        raise ActionrecError(f"{folder}: recipe folder not found (run from the repository root "
                             "or give {configs})", {"configs": "folder="})
    return sorted(p for p in folder.glob("*/*.yaml") if not p.name.startswith("_"))


def zoo_rows(folder: str | Path = "configs") -> list[ZooRow]:
    rows, counted = [], {}
    for path in recipe_paths(folder):
        cfg = read_config(path)
        r, m = cfg.recipe, cfg.model
        if r.dataset not in DATASETS or not r.paper or not r.table:
            raise ActionrecError(f"{path}: recipe.paper, recipe.table and recipe.dataset (one of "
                                 f"{', '.join(DATASETS)}) must be set")
        key = (m.name, m.backbone, m.num_frames, cfg.data.size, r.dataset,
               json.dumps(m.options, sort_keys=True))
        if key not in counted:
            with torch.device("meta"):
                counted[key] = compare_model(m.name, backbone=m.backbone, frames=m.num_frames,
                                             size=cfg.data.size, classes=DATASETS[r.dataset][0],
                                             options=m.options)
        found = counted[key]
        paper = found["paper"][0] if found["paper"] else None
        rows.append(ZooRow(str(path), cfg, found["params"], found["macs"],
                           paper.params_m if paper else None, paper.gmacs if paper else None))
    return rows


def _ours_vs(ours: float, paper: float | None) -> str:
    return f"{ours:.2f}" + (f" ({paper:g})" if paper is not None else "")


HEADERS = ["paper", "table", "dataset", "model", "backbone", "frames", "test views",
           "paper top-1 %", "params M (paper)", "GMACs/view (paper)", "train PMACs",
           "GPU h (est.)", "train", "test"]


def render(rows: list[ZooRow], *, markdown: bool = False) -> str:
    cells = []
    for z in rows:
        c, r = z.cfg, z.cfg.recipe
        options = ",".join(f"{k}={v}" for k, v in c.model.options.items())
        views = f"{c.test.clips}x{c.test.crops} ({r.views})" if r.views else \
            f"{c.test.clips}x{c.test.crops}"
        cells.append([r.paper, r.table, r.dataset, c.model.name + (f" [{options}]" if options else ""),
                      c.model.backbone, str(c.model.num_frames), views,
                      "-" if r.top1 is None else f"{r.top1:g}",
                      _ours_vs(z.params / 1e6, z.paper_params_m),
                      _ours_vs(z.macs / 1e9, z.paper_gmacs), f"{z.train_macs / 1e15:.0f}",
                      f"{z.gpu_hours:.1f}", f"actionrec train {z.path}",
                      f"actionrec test {z.path} --checkpoint {c.work_dir}/best.safetensors"])
    table = (markdown_table if markdown else text_table)(HEADERS, cells)
    unbuilt = sorted({(row.source, row.label, row.describe_input(), row.unbuilt)
                      for row in PAPER_ROWS if row.unbuilt})
    notes = [
        "GMACs are multiply-accumulates per view (the papers' FLOPs), ours counted at the recipe's "
        "input; the paper's count in brackets where it prints one for the same model and input.",
        f"train PMACs = {TRAIN_PASSES} x GMACs/view x training clips x epochs; GPU hours are an "
        f"estimate at an assumed {GPU_MACS_PER_S / 1e12:.0f} TMAC/s sustained, not a measurement.",
        "Paper top-1 is the target the recipe is run against, never our result. Each recipe's "
        "recipe.differs says where it departs from the paper.",
        "Data: `actionrec data prepare DATASET --annotations DIR --media DIR` writes the "
        "data/DATASET/data.yaml each recipe reads.",
        "Rows the papers report that are not built here:"]
    bullet = "- " if markdown else "  "
    lines = [f"{bullet}{source}, {label} ({inp}): {why}" for source, label, inp, why in unbuilt]
    lines.append(f"{bullet}MSTI-Net Table 2, its 8-conv-layer ablation network: the paper gives no "
                 "widths, kernels or strides; the Table 2 recipes use the ResNet-50 MSTI-Net")
    return table + "\n\n" + "\n".join(notes) + "\n" + "\n".join(lines)
