"""GST Fig. 5: how the prediction evolves over the frames of one video.

Models that average per-frame scores (TSN, TSM, STM, GST, C3D, P3D) expose ``frame_scores``; the
softmax of each frame's scores shows when the evidence for a class appears.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..report.plots import pyplot


@torch.no_grad()
def frame_probabilities(model: nn.Module, clip: torch.Tensor) -> np.ndarray:
    """Softmax per frame ``(T, K)`` of one clip ``(T, C, H, W)``."""
    if not hasattr(model, "frame_scores"):
        raise ValueError(f"{type(model).__name__} has no per-frame scores")
    return model.eval().frame_scores(clip[None])[0].float().softmax(-1).cpu().numpy()


def write_frame_predictions(probs: np.ndarray, class_names: list[str], out: str | Path,
                            *, top: int = 5, title: str = "") -> dict[str, Path]:
    """A line per top class (by mean probability) over the frames, as PNG and CSV."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    order = np.argsort(-probs.mean(0))[:top]
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 3.5))
    frames = np.arange(1, len(probs) + 1)
    for k in order:
        ax.plot(frames, probs[:, k], marker="o", label=class_names[k])
    ax.set_xlabel("frame")
    ax.set_ylabel("probability")
    ax.set_ylim(0, 1)
    ax.set_xticks(frames)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.set_title(title or "per-frame predictions", fontsize=9)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
    csv_path = out.with_suffix(".csv")
    with open(csv_path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["frame", *(class_names[k] for k in order)])
        writer.writerows([t + 1, *(f"{probs[t, k]:.6f}" for k in order)] for t in range(len(probs)))
    return {"png": out, "csv": csv_path}
