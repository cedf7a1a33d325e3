"""Class activation maps (StNet Fig. 4) for any model of the toolkit.

Grad-CAM (Selvaraju et al., 2017) on the last feature maps (``backbone.layer4``): each channel is
weighted by the mean gradient of the class score over its map. For a head that is global average
pooling followed by a linear layer (TSN, TSM, STM, GST, ...) the gradient of a channel is its fc
weight for the class, so Grad-CAM is exactly CAM (Zhou et al., 2016) up to a positive factor;
StNet's TXB is not linear, so there Grad-CAM is the definition. One map per input frame, or per
super-image for StNet.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..data.transforms import IMAGENET_MEAN, IMAGENET_STD
from ..report.plots import pyplot


def grad_cam(model: nn.Module, clip: torch.Tensor, class_index: int | None = None
             ) -> tuple[np.ndarray, int]:
    """Maps ``(T', h, w)`` in [0, 1] for a clip ``(F, C, H, W)`` and the class they explain
    (default: the predicted one)."""
    layer = model.backbone.layer4
    store, caller = {}, threading.get_ident()

    def hook(module, inputs, output):
        if threading.get_ident() == caller:  # not another thread's forward pass (a server's)
            output.retain_grad()
            store["maps"] = output

    handle = layer.register_forward_hook(hook)
    try:
        model.eval()
        with torch.enable_grad():
            scores = model(clip[None].requires_grad_(False))[0]
            if class_index is None:
                class_index = int(scores.argmax())
            model.zero_grad(set_to_none=True)
            scores[class_index].backward()
            model.zero_grad(set_to_none=True)  # the parameters' gradients are not kept
    finally:
        handle.remove()
    maps, grads = store["maps"].detach(), store["maps"].grad
    weights = grads.mean((-2, -1), keepdim=True)
    cam = torch.relu((weights * maps).sum(1))  # (T', h, w)
    cam = cam / cam.amax().clamp_min(1e-12)
    return cam.float().cpu().numpy(), class_index


def to_images(clip: torch.Tensor, maps: np.ndarray) -> np.ndarray:
    """The frames under the maps as uint8 RGB ``(T', H, W, 3)``: every frame, or the middle frame
    of each super-image when the clip has more frames than maps."""
    per_map = clip.shape[0] // len(maps)
    frames = clip[per_map // 2 :: per_map][: len(maps)]
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
    rgb = (frames * std + mean).clamp(0, 1).permute(0, 2, 3, 1)
    return (rgb.numpy() * 255).astype(np.uint8)


def upsample(maps: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    return F.interpolate(torch.from_numpy(maps)[:, None], size=size, mode="bilinear",
                         align_corners=False)[:, 0].numpy()


def blend(images: np.ndarray, maps: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """The maps in the jet colormap over their frames, uint8 RGB ``(T', H, W, 3)`` (the lower
    row of ``save_overlay``, as pixels)."""
    from matplotlib import colormaps

    heat = colormaps["jet"](upsample(maps, images.shape[1:3]))[..., :3] * 255
    return ((1 - alpha) * images + alpha * heat).round().clip(0, 255).astype(np.uint8)


def save_overlay(images: np.ndarray, maps: np.ndarray, path: str | Path, title: str) -> Path:
    """A frame per column: the frame, and the map overlaid (jet colormap)."""
    plt = pyplot()
    cols = len(images)
    big = upsample(maps, images.shape[1:3])
    fig, axes = plt.subplots(2, cols, figsize=(1.8 * cols, 3.8), squeeze=False)
    for t in range(cols):
        axes[0, t].imshow(images[t])
        axes[1, t].imshow(images[t])
        axes[1, t].imshow(big[t], cmap="jet", alpha=0.45, vmin=0, vmax=1)
        for ax in axes[:, t]:
            ax.axis("off")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
