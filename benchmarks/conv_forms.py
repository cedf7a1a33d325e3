"""Spatial-only and temporal-only convolutions as 2D convs vs the equivalent 3D convs.

    python benchmarks/conv_forms.py [--frames 8] [--batch 1 2]

Times the same convolution in two forms, channels-last, in one run, after checking they agree:

- spatial (1, 3, 3): ``Conv2d`` 3x3 on ``(N*T, C, H, W)`` frames vs ``Conv3d`` on the clip
  ``(N, C, T, H, W)`` -- GST-ResNet50's spatial paths (alpha = 1/4, beta = 1/2) and MSTI-Net's
  multi-scale spatial groups;
- temporal (3, 1, 1): ``Conv2d`` with a (3, 1) kernel on the view ``(N, C, T, H*W)`` vs ``Conv3d`` --
  MSTI-Net's multi-scale temporal groups and STM-ResNet50's channel-wise CSTM conv.

At batch 1 (one video: inference) the 2D forms are up to 7x faster at GST's and MSTI-Net's
shapes (which use them); for STM's channel-wise temporal conv the two forms are equal, and at
batch 2 all are about equal.
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F

from actionrec.analysis.benchmark import time_call
from actionrec.models.temporal import as_clips
from actionrec.runtime import tune_allocator

# (layer, kind, input channels, output channels, input size, stride, groups)
LAYERS = [("GST-R50 " + s, "spatial", *rest, 1) for s, *rest in [
    ("res2", 32, 48, 56, 1), ("res3.0", 64, 96, 56, 2), ("res3", 64, 96, 28, 1),
    ("res4.0", 128, 192, 28, 2), ("res4", 128, 192, 14, 1), ("res5.0", 256, 384, 14, 2),
    ("res5", 256, 384, 7, 1)]]
LAYERS += [(f"MSTI-R50 conv{i + 2}_x", kind, c, c, size, 1, 1)
           for kind in ("spatial", "temporal")
           for i, (c, size) in enumerate([(16, 56), (32, 28), (64, 14), (128, 7)])]
LAYERS += [(f"STM-R50 res{i + 2}", "temporal", c, c, size, 1, c)
           for i, (c, size) in enumerate([(64, 56), (128, 28), (256, 14), (512, 7)])]


def forms(kind: str, x: torch.Tensor, w: torch.Tensor, stride: int, frames: int, groups: int):
    """(2D form, 3D form) of the convolution as closures, and a function mapping 3D output to 2D."""
    clips = as_clips(x, frames)
    if kind == "spatial":
        w2d = w.contiguous(memory_format=torch.channels_last)
        w3d = w[:, :, None].contiguous(memory_format=torch.channels_last_3d)
        return (lambda: F.conv2d(x, w2d, stride=stride, padding=1),
                lambda: F.conv3d(clips, w3d, stride=(1, stride, stride), padding=(0, 1, 1)),
                lambda out3d: out3d.transpose(1, 2).flatten(0, 1))
    w2d = w[..., :1].contiguous(memory_format=torch.channels_last)  # (O, I/g, 3, 1)
    w3d = w[..., None, :1].contiguous(memory_format=torch.channels_last_3d)  # (O, I/g, 3, 1, 1)
    view = clips.flatten(3)  # (N, C, T, H*W), zero-copy
    return (lambda: F.conv2d(view, w2d, padding=(1, 0), groups=groups),
            lambda: F.conv3d(clips, w3d, padding=(1, 0, 0), groups=groups),
            lambda out3d: out3d.flatten(3))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--frames", type=int, default=8)
    p.add_argument("--batch", type=int, nargs="+", default=[1, 2])
    args = p.parse_args()
    tune_allocator()
    torch.manual_seed(0)
    for batch in args.batch:
        table(batch, args.frames)


def table(batch: int, frames: int) -> None:
    print(f"batch {batch} x {frames} frames, channels-last, ms per call")
    print(f"{'layer':<22} {'kind':<9} {'C_in':>5} {'C_out':>5} {'size':>5} {'stride':>6} "
          f"{'2D form':>8} {'Conv3d':>8} {'3D / 2D':>8}")
    totals = {}
    for name, kind, cin, cout, size, stride, groups in LAYERS:
        x = torch.randn(batch * frames, cin, size, size).contiguous(memory_format=torch.channels_last)
        w = torch.randn(cout, cin // groups, 3, 3)
        two, three, to_2d_layout = forms(kind, x, w, stride, frames, groups)
        with torch.no_grad():
            torch.testing.assert_close(to_2d_layout(three()), two(), rtol=1e-4, atol=1e-3)
            t2 = time_call(two, min_time=0.5) * 1e3
            t3 = time_call(three, min_time=0.5) * 1e3
        model = name.split()[0]
        a, b = totals.get(model, (0.0, 0.0))
        totals[model] = (a + t2, b + t3)
        print(f"{name:<22} {kind:<9} {cin:>5} {cout:>5} {size:>5} {stride:>6} {t2:>8.2f} {t3:>8.2f} "
              f"{t3 / t2:>8.2f}")
    for model, (t2, t3) in totals.items():
        print(f"{model + ' all':<61} {t2:>8.2f} {t3:>8.2f} {t3 / t2:>8.2f}")


if __name__ == "__main__":
    main()
