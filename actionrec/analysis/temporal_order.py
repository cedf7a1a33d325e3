"""Does a trained model use time? Its accuracy with the frames of every view in order, reversed,
shuffled, and one (the middle) frame repeated: ``actionrec diagnose``.

The check behind the GST paper's concern (Sec. 1, 4.6) that a model can score well on a dataset by
scene and object cues alone. A model that averages per-frame evidence (TSN) scores every order of
the same frames identically; only "single frame" can change it. A model of temporal order loses
accuracy when the order goes; on the synthetic reversal pairs, reversing a video turns it into its
twin class, so such a model drops far below chance on reversal-pair accuracy.
"""

from __future__ import annotations

import torch

from ..config import Config
from ..data.build import reversal_pairs
from ..engine import distributed
from ..engine.build import amp
from ..engine.evaluate import (
    compute_metrics,
    gather_scores,
    readable_batches,
    score_views,
    to_device,
)
from ..engine.inference import recognizer_and_loader
from ..errors import ActionrecError, NoReadableVideo

ORDERS = ("in order", "reversed", "shuffled", "single frame")


def reorder(clip: torch.Tensor, order: str, generator: torch.Generator) -> torch.Tensor:
    """``clip`` (N, V, T, C, H, W) with the T frames of each view put in ``order``; "shuffled"
    draws one permutation per view from ``generator``."""
    n, v, t = clip.shape[:3]
    if order == "in order":
        return clip
    if order == "reversed":
        return clip.flip(2)
    if order == "shuffled":
        perm = torch.rand(n, v, t, generator=generator).argsort(-1).to(clip.device)
        n_index = torch.arange(n, device=clip.device)[:, None, None]
        return clip[n_index, torch.arange(v, device=clip.device)[None, :, None], perm]
    if order == "single frame":
        return clip[:, :, t // 2 : t // 2 + 1].expand_as(clip).contiguous()
    raise ValueError(f"unknown frame order {order!r}; one of {ORDERS}")


@torch.no_grad()
def diagnose(cfg: Config, checkpoint: str, *, seed: int = 0) -> dict:
    """Metrics per frame order on the config's test list (else val list) with its test views:
    ``{"orders": {order: metrics}, "skipped": [(path, reason)]}``. Each batch is decoded once
    and scored in every order."""
    with distributed.joint("diagnose", cfg.runtime.dist_timeout):
        recognizer, loader = recognizer_and_loader(cfg, checkpoint)
        names, model, device = recognizer.classes, recognizer.model, recognizer.device
        generator = torch.Generator().manual_seed(seed)
        scores: dict[str, list[torch.Tensor]] = {order: [] for order in ORDERS}
        labels, indices, bad = [], [], []
        for batch in readable_batches(loader, bad, desc="diagnose"):
            clip = to_device(batch["clip"], device)  # moved once, reordered where it is
            for order in ORDERS:
                scores[order].append(score_views(model, reorder(clip, order, generator),
                                                 amp=amp(cfg)).cpu())
            labels.append(batch["label"])
            indices.append(batch["index"])
        try:
            gathered = {order: gather_scores(s, labels, indices, bad, total=len(loader.dataset))
                        for order, s in scores.items()}
        except NoReadableVideo:
            raise ActionrecError(f"diagnose: no readable video in the test list of "
                                 f"{cfg.data.root}") from None
    pairs = reversal_pairs(cfg)
    orders = {order: compute_metrics(g.scores, g.labels, names, pairs)
              for order, g in gathered.items()}
    first = gathered[ORDERS[0]]
    return {"orders": orders, "num_videos": len(first.labels), "skipped": first.bad}


def format_diagnosis(result: dict) -> tuple[list[str], list[list[str]]]:
    """Headers and rows: each order's accuracies and their drops from "in order" (percentage
    points; negative: a gain)."""
    keys = [("top1", "top-1")]
    if "pair_accuracy" in result["orders"]["in order"]:
        keys.append(("pair_accuracy", "reversal-pair"))
    base = result["orders"]["in order"]
    headers = ["frames"] + [h for _, label in keys for h in (f"{label} %", "drop")]
    rows = []
    for order, metrics in result["orders"].items():
        cells = [order]
        for key, _ in keys:
            drop = 100 * (base[key] - metrics[key])
            cells += [f"{100 * metrics[key]:.1f}", "-" if order == "in order" else f"{drop:.1f}"]
        rows.append(cells)
    return headers, rows
