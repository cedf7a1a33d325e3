"""Spatial-only convolutions as 2D convs on frames vs 3D convs with a temporal kernel of 1.

    python benchmarks/conv_forms.py [--frames 8] [--batch 2]

For the 3x3 spatial paths of GST-ResNet50 (alpha = 1/4, beta = 1/2) at 224x224, times the same
convolution as ``Conv2d`` on ``(N*T, C, H, W)`` frames and as ``Conv3d`` with kernel ``(1, 3, 3)`` on
the ``(N, C, T, H, W)`` clip, channels-last, in one run; actionrec uses the 2D form.
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F

from actionrec.analysis.benchmark import time_call
from actionrec.models.temporal import as_clips
from actionrec.runtime import tune_allocator

# (input channels of the spatial path, output channels, input size, stride) of GST-R50's stages
LAYERS = [(32, 48, 56, 1), (64, 96, 56, 2), (64, 96, 28, 1), (128, 192, 28, 2), (128, 192, 14, 1),
          (256, 384, 14, 2), (256, 384, 7, 1)]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--frames", type=int, default=8)
    p.add_argument("--batch", type=int, default=2)
    args = p.parse_args()
    tune_allocator()
    torch.manual_seed(0)
    print(f"{'C_in':>5} {'C_out':>5} {'size':>5} {'stride':>6} {'Conv2d ms':>10} {'Conv3d(1,3,3) ms':>17}"
          f" {'3D / 2D':>8}")
    total2d = total3d = 0.0
    for cin, cout, size, stride in LAYERS:
        x = torch.randn(args.batch * args.frames, cin, size, size)
        x = x.contiguous(memory_format=torch.channels_last)
        w = torch.randn(cout, cin, 3, 3)
        w2d = w.contiguous(memory_format=torch.channels_last)
        w3d = w[:, :, None].contiguous(memory_format=torch.channels_last_3d)
        clips = as_clips(x, args.frames)
        with torch.no_grad():
            out2d = F.conv2d(x, w2d, stride=stride, padding=1)
            out3d = F.conv3d(clips, w3d, stride=(1, stride, stride), padding=(0, 1, 1))
            torch.testing.assert_close(out3d.transpose(1, 2).flatten(0, 1), out2d, rtol=1e-4, atol=1e-3)
            t2 = time_call(lambda x=x, w=w2d, s=stride: F.conv2d(x, w, stride=s, padding=1),
                           min_time=0.5) * 1e3
            t3 = time_call(lambda c=clips, w=w3d, s=stride: F.conv3d(c, w, stride=(1, s, s),
                                                                     padding=(0, 1, 1)),
                           min_time=0.5) * 1e3
        total2d, total3d = total2d + t2, total3d + t3
        print(f"{cin:>5} {cout:>5} {size:>5} {stride:>6} {t2:>10.2f} {t3:>17.2f} {t3 / t2:>8.2f}")
    print(f"{'all':>24} {total2d:>10.2f} {total3d:>17.2f} {total3d / total2d:>8.2f}")


if __name__ == "__main__":
    main()
