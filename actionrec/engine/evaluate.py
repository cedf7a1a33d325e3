"""Evaluation: multi-view scoring and the field's metrics and reports.

A test sample is ``(V, T, C, H, W)``: V = temporal clips x spatial crops. Each view is classified,
softmax scores are averaged over the views (the papers' protocol), and the video's prediction is
the arg-max of that average. Under torchrun each rank scores its share of the list and the scores
are gathered once, in list order, so the metrics are those of one process (``gather_scores``).
"""

from __future__ import annotations

import csv
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from ..data.datasets import BadSampleLog
from ..errors import NonFiniteOutput, NoReadableVideo
from . import distributed

log = logging.getLogger(__name__)


@dataclass
class Scores:
    scores: np.ndarray  # (N, K) softmax averaged over views
    labels: np.ndarray  # (N,)
    indices: np.ndarray  # (N,) entry indices in the list
    bad: list  # (path, reason) of skipped entries


def autocast(device: torch.device, enabled: bool):
    """bf16 autocast on CPU, fp16 on CUDA."""
    dtype = torch.float16 if device.type == "cuda" else torch.bfloat16
    return torch.autocast(device.type, dtype=dtype, enabled=enabled)


def to_device(clip: torch.Tensor, device: torch.device) -> torch.Tensor:
    return clip.to(device, non_blocking=True)


@torch.no_grad()
def score_views(model: nn.Module, clip: torch.Tensor, *, amp: bool = False) -> torch.Tensor:
    """Softmax scores ``(N, K)`` of a batch ``(N, V, T, C, H, W)``, averaged over the V views."""
    n, v = clip.shape[:2]
    with autocast(clip.device, amp):
        logits = model(clip.flatten(0, 1))
    return logits.float().softmax(-1).unflatten(0, (n, v)).mean(1)


def readable_batches(loader, bad: list, *, desc: str = "eval") -> Iterator[dict]:
    """The loader's batches that hold a clip; unreadable entries are logged and added to
    ``bad`` as ``(path, reason)``."""
    bad_log = BadSampleLog(log)
    for batch in tqdm(loader, desc=desc, leave=False, disable=distributed.progress_disabled()):
        bad_log.update(batch["bad"])
        bad += batch["bad"]
        if batch["clip"] is not None:
            yield batch


def check_finite(scores: torch.Tensor, path_of) -> None:
    """NonFiniteOutput naming the first video whose scores are NaN or infinite; ``path_of(i)``
    is the path of row ``i`` (asked for only then)."""
    bad = (~torch.isfinite(scores)).any(-1)
    if bad.any():
        first = path_of(int(bad.nonzero()[0]))
        raise NonFiniteOutput(f"non-finite scores (NaN or inf) for {int(bad.sum())} of "
                              f"{len(scores)} videos, the first {first}: the model's weights "
                              "have diverged or the input is broken")


def gather_scores(scores: list[torch.Tensor], labels: list[torch.Tensor],
                  indices: list[torch.Tensor], bad: list, *, total: int) -> Scores:
    """The batches of scores ``(B, K)``, labels and list indices of every rank (this process's
    alone without torchrun) in list order, and every rank's unreadable entries; NoReadableVideo
    if no rank read any of the ``total`` videos."""
    flat = torch.cat([s.double().flatten() for s in scores]) if scores else torch.zeros(0).double()
    label = torch.cat(labels) if labels else torch.zeros(0, dtype=torch.long)
    index = torch.cat(indices) if indices else torch.zeros(0, dtype=torch.long)
    flat, label, index = (distributed.gather_rows(x[:, None])[:, 0] for x in (flat, label, index))
    bad = [tuple(b) for part in distributed.gather_json([list(b) for b in bad]) for b in part]
    if not len(label):
        raise NoReadableVideo(f"none of the {total} videos could be read"
                              + (f", the first: {bad[0][1]}" if bad else ""))
    order = index.argsort()
    return Scores(flat.view(len(label), -1)[order].numpy(), label[order].numpy(),
                  index[order].numpy(), bad)


@torch.no_grad()
def collect_scores(model: nn.Module, loader, device: torch.device, *, amp: bool = False,
                   desc: str = "eval") -> Scores:
    """Softmax scores of every readable video of ``loader`` (of every rank's share under
    torchrun); NoReadableVideo if none can be read, NonFiniteOutput if any score is not finite
    (nothing is scored from them)."""
    model.eval()
    scores, labels, indices, bad = [], [], [], []
    for batch in readable_batches(loader, bad, desc=desc):
        scores.append(score_views(model, to_device(batch["clip"], device), amp=amp).cpu())
        check_finite(scores[-1], lambda i, index=batch["index"]: loader.dataset.path_of(int(index[i])))
        labels.append(batch["label"])
        indices.append(batch["index"])
    return gather_scores(scores, labels, indices, bad, total=len(loader.dataset))


def compute_metrics(scores: np.ndarray, labels: np.ndarray, class_names: list[str],
                    pairs: list[tuple[int, int]] | None = None) -> dict:
    """top-1, top-5, mean class accuracy, per-class accuracy and the confusion matrix.

    With ``pairs`` (time-reversal class pairs of the synthetic set): ``pair_accuracy``, the share
    of videos of a paired class scored above their reversed twin, and ``pair_identity_accuracy``,
    the share whose arg-max falls in the right pair.
    """
    k = len(class_names)
    pred = scores.argmax(1)
    top5 = np.argsort(-scores, axis=1)[:, : min(5, k)]
    confusion = np.zeros((k, k), dtype=np.int64)
    np.add.at(confusion, (labels, pred), 1)
    support = confusion.sum(1)
    per_class = np.divide(np.diag(confusion), support, out=np.full(k, np.nan), where=support > 0)
    metrics = {
        "num_videos": int(len(labels)),
        "top1": float((pred == labels).mean()),
        "top5": float((top5 == labels[:, None]).any(1).mean()),
        "mean_class_accuracy": float(np.nanmean(per_class)),
        "per_class": {name: (None if np.isnan(a) else float(a))
                      for name, a in zip(class_names, per_class, strict=True)},
        "confusion": confusion.tolist(),
    }
    if pairs:
        twin = {a: b for a, b in pairs} | {b: a for a, b in pairs}
        pair_of = {c: frozenset((c, twin[c])) for c in twin}
        paired = np.array([lbl in twin for lbl in labels])
        if paired.any():
            lab = labels[paired]
            s = scores[paired]
            other = np.array([twin[int(c)] for c in lab])
            rows = np.arange(len(lab))
            metrics["pair_accuracy"] = float((s[rows, lab] > s[rows, other]).mean())
            metrics["pair_identity_accuracy"] = float(np.mean(
                [int(p) in pair_of[int(c)] for p, c in zip(pred[paired], lab, strict=True)]))
    return metrics


def write_reports(metrics: dict, class_names: list[str], out_dir: str | Path) -> dict[str, Path]:
    """results.json, confusion.csv and confusion.png in ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"results": out / "results.json", "confusion_csv": out / "confusion.csv",
             "confusion_png": out / "confusion.png"}
    paths["results"].write_text(json.dumps(metrics, indent=2) + "\n")
    with open(paths["confusion_csv"], "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["true \\ predicted", *class_names])
        for name, row in zip(class_names, metrics["confusion"], strict=True):
            writer.writerow([name, *row])
    from ..report.plots import plot_confusion  # matplotlib only where a report is written

    plot_confusion(np.array(metrics["confusion"]), class_names, paths["confusion_png"])
    return paths


def format_metrics(metrics: dict) -> str:
    keys = [("top1", "top-1"), ("top5", "top-5"), ("mean_class_accuracy", "mean class acc"),
            ("pair_accuracy", "reversal-pair acc"), ("pair_identity_accuracy", "pair identity acc")]
    lines = [f"{'videos':<20} {metrics['num_videos']}"]
    lines += [f"{label:<20} {100 * metrics[k]:6.2f} %" for k, label in keys if k in metrics]
    return "\n".join(lines)
