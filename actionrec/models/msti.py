"""MSTI-Net: multi-scale spatial-temporal integration tube (Wu et al., IJCAI 2020, Sec. 3, Fig. 1-2).

A 3D ResNet-50 (Table 1) whose bottleneck middle is the MSTI tube:

- **Multi-scale convolution block** (Eq. 1-3): the reduced features are split into 4 channel
  groups. The spatial branch computes ``S_1 = K_1(X_1)`` with a 1x1x1 conv and
  ``S_i = K_i(X_i + S_{i-1})`` with 1x3x3 convs (receptive fields 1, 3, 5, 7); the temporal branch
  the same with 3x1x1 convs.
- **Cross-scale attention weighted (CAW) blocks** (Eq. 4-7): ``U_Si = W*_SS S*_{i-1} + W_SS S_i +
  W_TS T_i`` (no first term in group 1), ``a_i = sigmoid(W GAP(U_Si))``, ``S*_i = a_i S_i``; the
  temporal CAW mirrors it with T. Output ``X* = concat(S*_1..4) + concat(T*_1..4)`` (Eq. 8).
- **Network** (Table 1): conv1 3x7x7 stride (1, 2, 2), max-pool 3x3x3 stride (1, 2, 2), stages of
  [3, 4, 6, 3] tubes, the first block of conv2_x with temporal stride 2 (16 -> 8 frames), of
  conv3_x..conv5_x with spatial stride 2; global average pooling; dropout; fc.

No code was published; these are our readings of what the paper leaves open:

1. BN + ReLU after every convolution (Sec. 4.1: "batch normalization and ReLU ... to all
   convolutional layers") -- the reduce conv and each K_i; the restore conv gets BN and the ReLU
   comes after the residual sum, as in ResNet. The CAW's 1x1x1 convs are the exception: Eq. 4-5
   sum them and pool the sum directly, so they are linear.
2. Because they are linear and followed by global pooling, ``GAP(W U) = W GAP(U)``: we apply
   ``W*``, ``W_SS``, ``W_TS`` to pooled vectors (and ``GAP(S*_{i-1}) = a_{i-1} GAP(S_{i-1})``).
   Exactly Eq. 4-7, at a negligible cost instead of 22 full-resolution 1x1x1 convs per tube.
3. One set of CAW weights per branch, shared by the four groups (``shared_caw=True``): Eq. 4 and
   Eq. 6 write ``W*_SS, W_SS, W_TS, W`` without a group index, and this reading gives 16.6M
   parameters (paper 16.4M); one set per group (``shared_caw=False``) gives 18.3M (+12 %).
   The excitation is Eq. 6's single ``C~ x C~`` FC without bias, then a sigmoid.
4. Strides sit in the reduce conv (the original ResNet's place), so the tube runs at the block's
   output resolution and never mixes resolutions inside its stepped sums. The temporal stride of
   conv2_x's first block is a 1x1x1 conv with stride (2, 1, 1) on both paths, i.e. every second
   frame is kept before the block.
5. The paper's 46.3 GMACs per 16x224x224 clip cannot come from Table 1's 8-frame stages: those
   give 24.7 GMACs (conv1 5.7, tubes 3.9, the rest 15.1); the CAW convs applied at full
   resolution would add 22/38 of the tubes' 3.9, about 2.3. Running every stage at 16 frames
   (``temporal_stride=1``) gives 43.7 GMACs (-6 %), so the paper's count most likely omits the
   (2, 1, 1) stride; we keep Table 1's stride by default and print both (``actionrec flops``).

Ablation variants (Table 2, option ``variant``): ``p3d_b`` a parallel 1x3x3 and 3x1x1 conv
(P3D-B, Qiu et al. 2017), ``ms_t`` / ``ms_s`` multi-scale convolution on the temporal / spatial
branch only (the other a single conv), ``ms_st`` both, ``msti`` both plus the CAW blocks.

Form: the network keeps clips as frames ``(N*T, C, H, W)`` like the 2D models; a 1x3x3 conv is a
2D conv on the frames and a 3x1x1 conv a 2D conv with a (3, 1) kernel on the zero-copy view
``(N, C, T, H*W)``, the same sums as a 3D convolution. Only conv1 and the max-pool are 3D
operators.

``temporal_kernel=1`` makes every temporal extent (conv1, max-pool, temporal branch) 1: the
spatial-only control of the learning test.

ImageNet init (``load_pretrained``): conv1 inflated to 3x7x7, the 1x1 reduce/restore convs, the
shortcut convs and every BN load from the 2D ResNet-50 (torchvision keys); the tube starts random.
"""

from __future__ import annotations

import torch
from torch import nn

from .base import VideoRecognizer
from .resnet import resnet
from .temporal import OverTime, as_clips, as_frames, keep_frames

# variant -> (multi-scale spatial branch, multi-scale temporal branch, CAW blocks)
VARIANTS = {
    "p3d_b": (False, False, False),
    "ms_t": (False, True, False),
    "ms_s": (True, False, False),
    "ms_st": (True, True, False),
    "msti": (True, True, True),
}
SCALES = 4  # channel groups of the multi-scale convolution (Sec. 3.1: N = 4)


class OnFrames:
    """Mixin: a 3D operator that takes and returns frames ``(N*T, C, H, W)`` of clips of
    ``num_frames`` (keeping the operator's own parameter names, so ImageNet keys still fit)."""

    def __init__(self, *args, num_frames: int, **kwargs):
        super().__init__(*args, **kwargs)
        self.num_frames = num_frames

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return as_frames(super().forward(as_clips(x, self.num_frames)))


class FramesConv3d(OnFrames, nn.Conv3d):
    """Table 1's conv1 (3x7x7) on frames."""


class FramesMaxPool3d(OnFrames, nn.MaxPool3d):
    """Table 1's 3x3x3 max-pool on frames."""


class TemporalConv2d(OverTime, nn.Conv2d):
    """A (k, 1, 1) convolution over time of frames ``(N*T, C, H, W)`` (``temporal.temporal_conv``:
    a 2D conv with a (k, 1) kernel on the view ``(N, C, T, H*W)``), zero-padded at the clip ends."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int, num_frames: int):
        super().__init__(in_channels, out_channels, (kernel, 1), padding=(kernel // 2, 0),
                         bias=False)
        self.num_frames = num_frames

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.over_time(x, self.weight, self.bias)


def conv_bn_relu(in_channels: int, out_channels: int, kernel: tuple[int, int, int],
                 num_frames: int) -> nn.Sequential:
    """A (t, k, k) conv with t = 1 or k = 1 on frames, BN, ReLU."""
    t, kh, kw = kernel
    if t == 1:
        conv = nn.Conv2d(in_channels, out_channels, (kh, kw), padding=(kh // 2, kw // 2),
                         bias=False)
    elif kh == kw == 1:
        conv = TemporalConv2d(in_channels, out_channels, t, num_frames)
    else:
        raise ValueError(f"kernel {kernel} is neither spatial nor temporal")
    return nn.Sequential(conv, nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True))


class SteppedConv(nn.Module):
    """One branch of the multi-scale convolution block (Eq. 1 or 2).

    ``scales`` channel groups; group 1 gets a 1x1x1 conv, group ``i > 1`` the branch ``kernel`` on
    its input plus the previous group's output. ``scales=1`` is a single conv with ``kernel`` over
    all channels (P3D-B's branch). Returns the list of group outputs.
    """

    def __init__(self, channels: int, kernel: tuple[int, int, int], num_frames: int,
                 scales: int = SCALES):
        super().__init__()
        if channels % scales:
            raise ValueError(f"{channels} channels do not split into {scales} groups")
        width = channels // scales
        kernels = [kernel] if scales == 1 else [(1, 1, 1)] + [kernel] * (scales - 1)
        self.convs = nn.ModuleList(conv_bn_relu(width, width, k, num_frames) for k in kernels)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outs: list[torch.Tensor] = []
        for xi, conv in zip(x.chunk(len(self.convs), 1), self.convs, strict=True):
            outs.append(conv(xi if not outs else xi + outs[-1]))
        return outs


def clip_average(x: torch.Tensor, num_frames: int) -> torch.Tensor:
    """Global average over T, H, W of frames ``(N*T, C, H, W)`` -> ``(N, C)`` (Eq. 5)."""
    return x.mean((2, 3)).unflatten(0, (-1, num_frames)).mean(1)


class CrossScaleAttention(nn.Module):
    """The CAW blocks of one branch (Eq. 4-7): the channel weights
    ``a_i = sigmoid(W (W* GAP(own*_{i-1}) + W_own GAP(own_i) + W_other GAP(other_i)))`` by which
    the tube re-weights group ``i``'s own output, ``own*_i = a_i own_i``.

    The 1x1x1 convs act on pooled vectors (reading 2 of the module docstring: exact, since they are
    linear), which the tube computes once for both branches; ``shared`` uses one set of weights
    for all groups (reading 3).
    """

    def __init__(self, channels: int, num_frames: int, scales: int = SCALES, shared: bool = True):
        super().__init__()
        sets = 1 if shared else scales

        def linears(n: int) -> nn.ModuleList:
            return nn.ModuleList(nn.Linear(channels, channels, bias=False) for _ in range(n))

        self.previous = linears(1 if shared else scales - 1)  # W*: from group 2 on
        self.own, self.other, self.fc = linears(sets), linears(sets), linears(sets)
        self.shared, self.num_frames = shared, num_frames

    def forward(self, own_pooled: list[torch.Tensor],
                other_pooled: list[torch.Tensor]) -> list[torch.Tensor]:
        """``*_pooled``: the GAP ``(N, C)`` of each group of this branch and of the other one.
        Returns each group's ``a_i`` per frame, ``(N*T, C, 1, 1)``."""
        out, previous = [], None
        for i, (pooled, other) in enumerate(zip(own_pooled, other_pooled, strict=True)):
            k = 0 if self.shared else i
            u = self.own[k](pooled) + self.other[k](other)
            if previous is not None:
                u = u + self.previous[0 if self.shared else i - 1](previous)
            a = torch.sigmoid(self.fc[k](u))
            out.append(a.repeat_interleave(self.num_frames, 0)[:, :, None, None])
            previous = a * pooled  # GAP(own*_i)
        return out


class MSTITube(nn.Module):
    """The middle of an MSTI bottleneck (Fig. 1): spatial and temporal branches, optional CAW
    blocks, ``X* = concat(S*) + concat(T*)`` (Eq. 8)."""

    def __init__(self, channels: int, num_frames: int, variant: str = "msti",
                 shared_caw: bool = True, temporal_kernel: int = 3):
        super().__init__()
        if variant not in VARIANTS:
            raise ValueError(f"variant must be one of {', '.join(VARIANTS)}, got {variant!r}")
        spatial_ms, temporal_ms, attention = VARIANTS[variant]
        self.spatial = SteppedConv(channels, (1, 3, 3), num_frames, SCALES if spatial_ms else 1)
        self.temporal = SteppedConv(channels, (temporal_kernel, 1, 1), num_frames,
                                    SCALES if temporal_ms else 1)
        self.num_frames = num_frames
        self.spatial_caw = self.temporal_caw = None
        if attention:
            width = channels // SCALES
            self.spatial_caw = CrossScaleAttention(width, num_frames, shared=shared_caw)
            self.temporal_caw = CrossScaleAttention(width, num_frames, shared=shared_caw)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s, t = self.spatial(x), self.temporal(x)
        if self.spatial_caw is None:
            return torch.cat(s, 1) + torch.cat(t, 1)
        ps = [clip_average(g, self.num_frames) for g in s]
        pt = [clip_average(g, self.num_frames) for g in t]
        return self.integrate(s, self.spatial_caw(ps, pt), t, self.temporal_caw(pt, ps))

    def integrate(self, s: list[torch.Tensor], a: list[torch.Tensor], t: list[torch.Tensor],
                  b: list[torch.Tensor]) -> torch.Tensor:
        """Eq. 8: ``X* = concat(a_i S_i) + concat(b_i T_i)``."""
        return (torch.cat([si * ai for si, ai in zip(s, a, strict=True)], 1)
                + torch.cat([ti * bi for ti, bi in zip(t, b, strict=True)], 1))


class MSTIBottleneck(nn.Module):
    """1x1x1 reduce (with the block's stride) -> MSTI tube -> 1x1x1 restore, plus the shortcut.
    Attribute names follow torchvision's Bottleneck, so the ImageNet 1x1 weights load as they are.
    ``temporal_stride`` keeps every s-th of the ``num_frames`` input frames on both paths."""

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int, downsample: nn.Module | None, *,
                 num_frames: int, temporal_stride: int = 1, **tube):
        super().__init__()
        self.num_frames, self.temporal_stride = num_frames, temporal_stride
        self.conv1 = nn.Conv2d(inplanes, planes, 1, stride, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.tube = MSTITube(planes, num_frames // temporal_stride, **tube)
        self.conv3 = nn.Conv2d(planes, planes * self.expansion, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.kept_frames(x)
        identity = x if self.downsample is None else self.downsample(x)
        out = self.tube(self.relu(self.bn1(self.conv1(x))))
        out = self.bn3(self.conv3(out))
        out += identity
        return self.relu(out)


    def kept_frames(self, x: torch.Tensor) -> torch.Tensor:
        """Every ``temporal_stride``-th frame of each clip (reading 4)."""
        return keep_frames(x, self.num_frames, self.temporal_stride)


class MSTINet(VideoRecognizer):
    """MSTI-Net: 3D ResNet-50 of multi-scale spatial-temporal integration tubes."""

    def __init__(self, num_classes: int, num_frames: int = 16, *, backbone: str = "resnet50",
                 dropout: float = 0.5, partial_bn: bool = False, frozen_stages: int = 0,
                 variant: str = "msti", shared_caw: bool = True, temporal_stride: int = 2,
                 temporal_kernel: int = 3):
        if num_frames % temporal_stride:
            raise ValueError(f"num_frames {num_frames} is not a multiple of the temporal stride "
                             f"{temporal_stride}")
        tube = {"variant": variant, "shared_caw": shared_caw, "temporal_kernel": temporal_kernel}
        frames = num_frames // temporal_stride  # from conv2_x on

        def block(slot):
            if slot.kind.expansion != MSTIBottleneck.expansion:
                raise ValueError(f"MSTI-Net needs a bottleneck ResNet (26, 50, 101, 152), got "
                                 f"{backbone}")
            first = slot.stage == 2 and slot.index == 0  # conv2_x's first: the temporal stride
            return slot.build(MSTIBottleneck, **tube, num_frames=num_frames if first else frames,
                              temporal_stride=temporal_stride if first else 1)

        trunk = resnet(backbone, block=block)
        # each block starts as its shortcut (Goyal et al., 2017): ours, the paper gives no init
        for m in trunk.modules():
            if isinstance(m, MSTIBottleneck):
                nn.init.zeros_(m.bn3.weight)
        k = temporal_kernel  # Table 1's stem: conv1 3x7x7 and max-pool 3x3x3, both (1, 2, 2)
        trunk.conv1 = FramesConv3d(3, 64, (k, 7, 7), (1, 2, 2), (k // 2, 3, 3), bias=False,
                                   num_frames=num_frames)
        nn.init.kaiming_normal_(trunk.conv1.weight, mode="fan_out", nonlinearity="relu")
        trunk.maxpool = FramesMaxPool3d((k, 3, 3), (1, 2, 2), (k // 2, 1, 1), num_frames=num_frames)
        super().__init__(trunk, num_frames=num_frames, partial_bn=partial_bn,
                         frozen_stages=frozen_stages)
        self.add_classifier(self.backbone.feat_dim, num_classes, dropout)
        self.freeze()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Clips ``(N, T, C, H, W)`` -> logits ``(N, num_classes)`` (global average pool, fc)."""
        n = x.shape[0]
        features = self.backbone.forward_features(x.flatten(0, 1))  # (N*T', C, h, w)
        pooled = features.mean((2, 3)).unflatten(0, (n, -1)).mean(1)
        return self.fc(self.dropout(pooled))
