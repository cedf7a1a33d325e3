"""GST: Grouped Spatial-Temporal aggregation (Luo and Yuille, ICCV 2019), and the baselines of its
Table 2 / Fig. 2 built the same way: every 3x3 convolution of a ResNet is replaced, everything else
stays 2D on the T frames, and the prediction is the average of per-frame scores (Sec. 3.4).

Replacements of a 3x3 conv with ``C_i`` inputs and ``C_o`` outputs (Table 1):

- ``GSTConv`` (Sec. 3.2-3.3, Eq. 2, Fig. 3c-d): inputs split by ``beta`` (1/2: first half to the
  spatial path, second half to the temporal path; 1, GST-Large, Fig. 3b: both see all), a 2D
  3x3 conv to ``(1 - alpha) C_o`` and a 3x3x3 conv to ``alpha C_o``, concatenated (spatial
  first) and normalised by the block's own BN. Stride is spatial only: no temporal downsampling.
- ``C3DConv``: a 3x3x3 conv (``groups`` 1 or 2).
- ``P3DConv``: a 1x3x3 conv, BN, ReLU, then a 3x1x1 conv C_o -> C_o in series (P3D-A of Qiu et
  al. 2017, cascaded, with their BN + ReLU between).

Readings (the paper's C3D and P3D parameter counts do not follow from Fig. 2): C3D inflates every
3x3 conv to 3x3x3, which gives 46.5M parameters for ResNet-50, not the printed 42.5M; P3D puts a
full C_o -> C_o temporal conv after each 3x3 conv, 27.6M, not 29.4M. No layer subset or width
choice we tried reproduces both printed numbers while keeping Fig. 2's structure, so we build the
plain reading and print the paper's numbers beside ours (``actionrec flops``). GST, GST-Large and
C3D groups=2 reproduce the paper's 21.0M / 29.6M / 29.6M within 1 %.

ImageNet init: the spatial path takes the slice of the 2D 3x3 weights that matches its inputs and
outputs; the temporal path of GST stays random (Sec. 4.2); C3D inflates the 3x3 weights I3D-style
(each group from its own slice); P3D's spatial conv loads the 3x3 weights, its temporal conv
stays random. All 1x1 convs, BNs and the stem load unchanged (the network stays 2D there).
"""

from __future__ import annotations

import torch
from torch import nn

from .fuse import fold_into_conv
from .pretrained import inflate_time
from .temporal import as_clips, as_frames
from .tsn import TSN


class GSTConv(nn.Module):
    """The GST module (Eq. 2): ``w_GST = w_gs (+) w_gt`` on channel groups."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, num_frames: int, *,
                 alpha: float = 0.25, beta: float = 0.5):
        super().__init__()
        if beta not in (0.5, 1.0):
            raise ValueError(f"beta must be 1/2 (GST) or 1 (GST-Large), got {beta}")
        if not 0 < alpha < 1:
            raise ValueError(f"alpha must be in (0, 1), got {alpha}")
        self.num_frames = num_frames
        self.temporal_out = max(1, round(alpha * out_channels))
        self.spatial_out = out_channels - self.temporal_out
        self.split = None if beta == 1.0 else in_channels // 2
        spatial_in = in_channels if beta == 1.0 else self.split
        temporal_in = in_channels if beta == 1.0 else in_channels - self.split
        self.spatial = nn.Conv2d(spatial_in, self.spatial_out, 3, stride, 1, bias=False)
        self.temporal = nn.Conv3d(temporal_in, self.temporal_out, 3, (1, stride, stride), 1,
                                  bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.paths(*((x, x) if self.split is None else
                            x.split([self.split, x.shape[1] - self.split], 1)))

    def paths(self, xs: torch.Tensor, xt: torch.Tensor) -> torch.Tensor:
        """The two paths on their input groups, concatenated (spatial first)."""
        spatial = self.spatial(xs)
        temporal = as_frames(self.temporal(as_clips(xt, self.num_frames)))
        return torch.cat([spatial, temporal], 1)

    def fold_bn(self, scale: torch.Tensor, shift: torch.Tensor) -> None:
        """The following BN into both paths, each its slice of the channels (``models/fuse.py``)."""
        s = self.spatial_out
        fold_into_conv(self.spatial, scale[:s], shift[:s])
        fold_into_conv(self.temporal, scale[s:], shift[s:])

    def adapt_weight(self, weight2d: torch.Tensor) -> dict[str, torch.Tensor]:
        """ImageNet 3x3 weights -> this module's: the spatial path's slice; temporal stays."""
        return {"spatial.weight": weight2d[: self.spatial_out, : self.spatial.in_channels]}


class C3DConv(nn.Module):
    """A 3x3x3 convolution on the clip (spatial stride only), optionally grouped."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, num_frames: int, *,
                 groups: int = 1):
        super().__init__()
        self.num_frames = num_frames
        self.conv = nn.Conv3d(in_channels, out_channels, 3, (1, stride, stride), 1, groups=groups,
                              bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return as_frames(self.conv(as_clips(x, self.num_frames)))

    def fold_bn(self, scale: torch.Tensor, shift: torch.Tensor) -> None:
        fold_into_conv(self.conv, scale, shift)

    def adapt_weight(self, weight2d: torch.Tensor) -> dict[str, torch.Tensor]:
        """I3D inflation; with groups, output group g keeps the 2D weights of input group g."""
        g = self.conv.groups
        out_per, in_per = weight2d.shape[0] // g, weight2d.shape[1] // g
        blocks = [weight2d[i * out_per : (i + 1) * out_per, i * in_per : (i + 1) * in_per]
                  for i in range(g)]
        return {"conv.weight": inflate_time(torch.cat(blocks), 3)}


class P3DConv(nn.Module):
    """1x3x3 spatial conv -> BN -> ReLU -> 3x1x1 temporal conv (P3D-A, cascaded)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, num_frames: int):
        super().__init__()
        self.num_frames = num_frames
        self.spatial = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.temporal = nn.Conv3d(out_channels, out_channels, (3, 1, 1), 1, (1, 0, 0), bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn(self.spatial(x)))
        return as_frames(self.temporal(as_clips(x, self.num_frames)))

    def fold_bn(self, scale: torch.Tensor, shift: torch.Tensor) -> None:
        fold_into_conv(self.temporal, scale, shift)

    def adapt_weight(self, weight2d: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"spatial.weight": weight2d}


class GroupedTSN(TSN):
    """TSN whose 3x3 convs are all replaced by ``make_conv(in, out, stride)`` (in ``bottleneck``
    blocks on ResNet-50 and deeper); ``load_pretrained`` maps ImageNet 3x3 weights onto the
    replacements with their ``adapt_weight``."""

    def __init__(self, num_classes: int, num_frames: int, *, make_conv, **shared):
        def block(slot):
            return slot.build(conv3x3=make_conv)

        super().__init__(num_classes, num_frames, block=block, **shared)


class GST(GroupedTSN):
    """GST network: every 3x3 conv a GST module (alpha temporal outputs, beta input split)."""

    def __init__(self, num_classes: int, num_frames: int, *, backbone: str = "resnet50",
                 dropout: float = 0.3, partial_bn: bool = False, frozen_stages: int = 0,
                 alpha: float = 0.25, beta: float = 0.5):
        def make_conv(cin, cout, stride):
            return GSTConv(cin, cout, stride, num_frames, alpha=alpha, beta=beta)

        super().__init__(num_classes, num_frames, make_conv=make_conv, backbone=backbone,
                         dropout=dropout, partial_bn=partial_bn, frozen_stages=frozen_stages)


class GSTLarge(GST):
    """GST-Large (Fig. 3b): both paths see all input channels (beta = 1)."""

    def __init__(self, num_classes: int, num_frames: int, *, backbone: str = "resnet50",
                 dropout: float = 0.3, partial_bn: bool = False, frozen_stages: int = 0,
                 alpha: float = 0.25):
        super().__init__(num_classes, num_frames, backbone=backbone, dropout=dropout,
                         partial_bn=partial_bn, frozen_stages=frozen_stages, alpha=alpha, beta=1.0)


class C3D(GroupedTSN):
    """C3D baseline of GST's Table 2: every 3x3 conv inflated to 3x3x3 (``groups`` 1 or 2)."""

    def __init__(self, num_classes: int, num_frames: int, *, backbone: str = "resnet50",
                 dropout: float = 0.3, partial_bn: bool = False, frozen_stages: int = 0,
                 groups: int = 1):
        if groups not in (1, 2):
            raise ValueError(f"groups must be 1 or 2, got {groups}")

        def make_conv(cin, cout, stride):
            return C3DConv(cin, cout, stride, num_frames, groups=groups)

        super().__init__(num_classes, num_frames, make_conv=make_conv, backbone=backbone,
                         dropout=dropout, partial_bn=partial_bn, frozen_stages=frozen_stages)


class P3D(GroupedTSN):
    """P3D baseline of GST's Table 2: every 3x3 conv followed by a 3x1x1 temporal conv."""

    def __init__(self, num_classes: int, num_frames: int, *, backbone: str = "resnet50",
                 dropout: float = 0.3, partial_bn: bool = False, frozen_stages: int = 0):
        def make_conv(cin, cout, stride):
            return P3DConv(cin, cout, stride, num_frames)

        super().__init__(num_classes, num_frames, make_conv=make_conv, backbone=backbone,
                         dropout=dropout, partial_bn=partial_bn, frozen_stages=frozen_stages)
