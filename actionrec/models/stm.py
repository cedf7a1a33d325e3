"""STM: SpatioTemporal and Motion encoding (Jiang et al., ICCV 2019).

An STM block replaces a ResNet bottleneck (Sec. 3.3, Fig. 3): 1x1 reduce -> CSTM and CMM in
parallel -> element-wise sum -> 1x1 restore, identity shortcut. The network is otherwise a 2D
ResNet on the T frames with TSN's average of per-frame scores at the end (no temporal reduction).

- CSTM (Sec. 3.1, Eq. 1): channel-wise temporal convolution (kernel 3, shift-like init, see
  ``TemporalConv``), then the bottleneck's own 3x3 conv + BN + ReLU (ImageNet-loadable).
- CMM (Sec. 3.2, Eq. 2): see ``CMM``.

Every ImageNet weight keeps its torchvision key (``conv1``, ``bn1``, ``conv2``, ...); only
``temporal``, ``cmm`` and (concat fusion) ``fuse`` are new. Their parameter and MAC counts match
the paper's Tables 8-9 (see tests/models/test_stm.py): the temporal convolution runs before the
3x3 conv, i.e. at the block's input resolution -- with it after the stride, the ordinary-conv
variant of Table 8 would cost 37.6 instead of the paper's 40.6 GMACs.

Options: ``modules`` = both | cstm | cmm (Table 5; without CSTM the 3x3 conv stays, without its
temporal conv), ``fusion`` = sum | concat (Table 6; concat: 2C -> 1x1 -> C), ``temporal_conv`` =
channelwise | ordinary (Table 8), ``stages`` and ``blocks`` = all | first (Table 7: STM blocks in
the listed paper stages 2..5, in every block or only the first of each).

On ResNet-18/34 (not in the paper) the basic block gets the same two modules around its first
3x3 conv: the temporal conv before it and the CMM in parallel from the block input.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .resnet import BasicBlock, Bottleneck, conv1x1
from .temporal import TemporalConv
from .tsn import TSN

PAPER_STAGES = (2, 3, 4, 5)  # conv2_x .. conv5_x = our layer1 .. layer4


class CMM(nn.Module):
    """Channel-wise Motion Module (Sec. 3.2, Eq. 2): ``H_t = K * F_{t+1} - F_t``.

    1x1 conv ``C_in -> C_in / reduction`` + BN; a channel-wise 3x3 conv ``K`` on frame t+1 minus
    frame t; zeros for the last frame (T-1 differences for T frames); 1x1 conv to ``C_out``.

    Stride-2 blocks: the paper does not say how the motion comes out at the CSTM's output size.
    The authors' code (``STM.py``'s Bottleneck, ``tests/parity/stm_author.json``) computes the
    CMM at the block's input resolution and max-pools its output (2x2, stride 2); so do we, so
    that their checkpoints compute here what they computed there. ``ceil_mode`` makes an odd
    size come out as the strided 3x3 conv's (their code is only run on even sizes, where the two
    agree). Random init (Sec. 4.2).

    ``forward(x, add_to)`` returns ``add_to + CMM(x)`` (the STM block's sum fusion).
    """

    def __init__(self, in_channels: int, out_channels: int, num_frames: int, *,
                 reduction: int = 16, stride: int = 1):
        super().__init__()
        mid = max(in_channels // reduction, 1)
        self.num_frames = num_frames
        self.reduce = conv1x1(in_channels, mid)
        self.bn = nn.BatchNorm2d(mid)
        self.motion = nn.Conv2d(mid, mid, 3, 1, 1, groups=mid, bias=False)
        self.restore = conv1x1(mid, out_channels)
        self.pool = nn.MaxPool2d(stride, ceil_mode=True) if stride > 1 else None

    def forward(self, x: torch.Tensor, add_to: torch.Tensor | None = None) -> torch.Tensor:
        out = self.restore(self.differences(x))
        if self.pool is not None:
            out = self.pool(out)
        return out if add_to is None else add_to + out

    def differences(self, x: torch.Tensor) -> torch.Tensor:
        """``K * F_{t+1} - F_t`` of the reduced features, zero for each clip's last frame."""
        f = self.bn(self.reduce(x))
        k = self.motion(f)
        t = self.num_frames
        k, f = k.unflatten(0, (-1, t)), f.unflatten(0, (-1, t))
        diff = k[:, 1:] - f[:, :-1]  # (N, T-1, C, h, w)
        # padded as (N, T, h, w, C): a channels-last input gives a channels-last result
        motion = F.pad(diff.permute(0, 1, 3, 4, 2), [0, 0, 0, 0, 0, 0, 0, 1]).permute(0, 1, 4, 2, 3)
        return motion.flatten(0, 1)


class _STMMixin:
    """The two STM modules and their fusion, shared by the bottleneck and basic variants."""

    def _add_modules(self, temporal_channels: int, cmm_in: int, out: int, stride: int, *,
                     num_frames: int, cstm: bool, cmm: bool, fusion: str, channelwise: bool):
        if not (cstm or cmm):
            raise ValueError("an STM block needs CSTM, CMM or both")
        if fusion not in ("sum", "concat"):
            raise ValueError(f"fusion must be sum or concat, got {fusion!r}")
        if fusion == "concat" and not (cstm and cmm):
            raise ValueError("fusion=concat needs both modules")
        self.temporal = TemporalConv(temporal_channels, num_frames, channelwise=channelwise) \
            if cstm else None
        self.cmm = CMM(cmm_in, out, num_frames, stride=stride) if cmm else None
        self.fuse = conv1x1(2 * out, out) if fusion == "concat" else None

    def _fuse(self, spatiotemporal: torch.Tensor, block_input: torch.Tensor) -> torch.Tensor:
        if self.cmm is None:
            return spatiotemporal
        if self.fuse is None:
            return self.cmm(block_input, add_to=spatiotemporal)
        return self.fuse(torch.cat([spatiotemporal, self.cmm(block_input)], 1))


class STMBottleneck(_STMMixin, Bottleneck):
    """Fig. 3 (bottom): reduce -> [CSTM || CMM] -> sum -> restore -> + identity."""

    def __init__(self, inplanes: int, planes: int, stride: int = 1,
                 downsample: nn.Module | None = None, *, num_frames: int, cstm: bool = True,
                 cmm: bool = True, fusion: str = "sum", channelwise: bool = True):
        super().__init__(inplanes, planes, stride, downsample)
        self._add_modules(planes, planes, planes, stride, num_frames=num_frames, cstm=cstm,
                          cmm=cmm, fusion=fusion, channelwise=channelwise)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        reduced = self.relu(self.bn1(self.conv1(x)))
        st = reduced if self.temporal is None else self.temporal(reduced)
        st = self.relu(self.bn2(self.conv2(st)))
        out = self.bn3(self.conv3(self._fuse(st, reduced)))
        out += identity
        return self.relu(out)


class STMBasicBlock(_STMMixin, BasicBlock):
    """ResNet-18/34 variant (ours): [temporal conv -> 3x3 conv1 || CMM] -> sum -> 3x3 conv2."""

    def __init__(self, inplanes: int, planes: int, stride: int = 1,
                 downsample: nn.Module | None = None, *, num_frames: int, cstm: bool = True,
                 cmm: bool = True, fusion: str = "sum", channelwise: bool = True):
        super().__init__(inplanes, planes, stride, downsample)
        self._add_modules(inplanes, inplanes, planes, stride, num_frames=num_frames, cstm=cstm,
                          cmm=cmm, fusion=fusion, channelwise=channelwise)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        st = x if self.temporal is None else self.temporal(x)
        st = self.relu(self.bn1(self.conv1(st)))
        out = self.bn2(self.conv2(self._fuse(st, x)))
        out += identity
        return self.relu(out)


class STM(TSN):
    """STM network (Jiang et al., ICCV 2019): every ResNet block an STM block, averaged frame scores."""

    def __init__(self, num_classes: int, num_frames: int, *, backbone: str = "resnet50",
                 dropout: float = 0.5, partial_bn: bool = False, frozen_stages: int = 0,
                 modules: str = "both", fusion: str = "sum", temporal_conv: str = "channelwise",
                 stages: list[int] | tuple[int, ...] = PAPER_STAGES, blocks: str = "all"):
        if modules not in ("both", "cstm", "cmm"):
            raise ValueError(f"modules must be both, cstm or cmm, got {modules!r}")
        if temporal_conv not in ("channelwise", "ordinary"):
            raise ValueError(f"temporal_conv must be channelwise or ordinary, got {temporal_conv!r}")
        if blocks not in ("all", "first"):
            raise ValueError(f"blocks must be all or first, got {blocks!r}")
        if not set(stages) <= set(PAPER_STAGES):
            raise ValueError(f"stages are the paper's 2..5, got {list(stages)}")
        options = dict(num_frames=num_frames, cstm=modules != "cmm", cmm=modules != "cstm",
                       fusion=fusion, channelwise=temporal_conv == "channelwise")

        def block(slot):
            if slot.stage not in stages or (blocks == "first" and slot.index > 0):
                return slot.build()
            return slot.build(STMBottleneck if slot.kind is Bottleneck else STMBasicBlock, **options)

        super().__init__(num_classes, num_frames, backbone=backbone, dropout=dropout,
                         partial_bn=partial_bn, frozen_stages=frozen_stages, block=block)
