"""2D ResNet-18/34/50/101/152 (He et al., 2016) with torchvision's state-dict keys and shapes.

The blocks take their 3x3 convolution as a factory and an optional parameter-free ``shift`` on the
residual branch, and the network takes a block factory (``BlockSlot -> module``, one call per
residual block), so that the video models can change exactly the part their paper changes while
every ImageNet weight keeps its torchvision key:

- TSM puts a temporal shift on the residual branch (``slot.build(shift=...)``),
- GST replaces the bottleneck's 3x3 conv (``slot.build(conv3x3=...)``),
- STM and MSTI-Net replace the whole bottleneck (``slot.build(OtherBlock, ...)``).

"Stage" is the papers' numbering throughout actionrec (conv{s}_x / res{s}): stage 1 is the stem
(conv1), stages 2..5 are torchvision's ``layer1``..``layer4``. A slot names both (``slot.stage``,
``slot.layer``).

The network works on frames: input ``(N*T, C, H, W)``. ``num_classes=0`` drops the fc layer so
that ``forward`` returns pooled features (what the video heads consume).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import nn

# depth -> (block kind, blocks in layer1..layer4)
DEPTHS = {
    18: ("basic", (2, 2, 2, 2)),
    26: ("bottleneck", (2, 2, 2, 2)),  # not torchvision's: the small 3D nets' CPU configs
    34: ("basic", (3, 4, 6, 3)),
    50: ("bottleneck", (3, 4, 6, 3)),
    101: ("bottleneck", (3, 4, 23, 3)),
    152: ("bottleneck", (3, 8, 36, 3)),
}
STAGE_WIDTHS = (64, 128, 256, 512)

Conv3x3 = Callable[[int, int, int], nn.Module]  # (in_channels, out_channels, stride) -> module


def conv3x3(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)


def conv1x1(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, 1, stride, bias=False)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1,
                 downsample: nn.Module | None = None, conv3x3: Conv3x3 = conv3x3,
                 shift: nn.Module | None = None):
        super().__init__()
        self.shift = shift
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes, 1)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x if self.shift is None else self.shift(x))))
        out = self.bn2(self.conv2(out))
        out += identity  # in place, as torchvision (BN's backward does not need its output)
        return self.relu(out)


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (stride here, as torchvision's ResNet v1.5), 1x1 expand, shortcut."""

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1,
                 downsample: nn.Module | None = None, conv3x3: Conv3x3 = conv3x3,
                 shift: nn.Module | None = None):
        super().__init__()
        self.shift = shift
        self.conv1 = conv1x1(inplanes, planes)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = conv3x3(planes, planes, stride)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = conv1x1(planes, planes * self.expansion)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x if self.shift is None else self.shift(x))))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        out += identity
        return self.relu(out)


BLOCKS = {"basic": BasicBlock, "bottleneck": Bottleneck}


class BlockSlot(NamedTuple):
    """The place of one residual block in the trunk: what a block factory is given."""

    kind: type  # BasicBlock or Bottleneck: the block the depth calls for
    inplanes: int
    planes: int  # width of the block's middle; its output has planes * kind.expansion channels
    stride: int  # 2 in the first block of layer2..layer4, else 1
    downsample: nn.Module | None  # the projection shortcut of the first block of a layer
    layer: int  # 1..4: torchvision's layer1..layer4
    index: int  # position in the layer, 0 first

    @property
    def stage(self) -> int:
        """The papers' stage number: conv{stage}_x, 2..5."""
        return self.layer + 1

    def build(self, cls: type | None = None, **kwargs) -> nn.Module:
        """``cls`` (default: the standard block) at this slot, with ``kwargs`` of its own."""
        return (cls or self.kind)(self.inplanes, self.planes, self.stride, self.downsample, **kwargs)


BlockFactory = Callable[[BlockSlot], nn.Module]


def default_block(slot: BlockSlot) -> nn.Module:
    return slot.build()


class ResNet(nn.Module):
    """ResNet trunk; ``in_channels`` other than 3 serves stacked frames (StNet's super-images)."""

    def __init__(self, depth: int = 50, *, num_classes: int = 0, in_channels: int = 3,
                 block: BlockFactory = default_block):
        super().__init__()
        if depth not in DEPTHS:
            raise ValueError(f"ResNet depth must be one of {sorted(DEPTHS)}, got {depth}")
        kind, counts = DEPTHS[depth]
        cls = BLOCKS[kind]
        self.depth = depth
        self.conv1 = nn.Conv2d(in_channels, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        inplanes = 64
        for layer, (planes, blocks) in enumerate(zip(STAGE_WIDTHS, counts, strict=True), start=1):
            stride = 1 if layer == 1 else 2
            downsample = None
            if stride != 1 or inplanes != planes * cls.expansion:
                downsample = nn.Sequential(conv1x1(inplanes, planes * cls.expansion, stride),
                                           nn.BatchNorm2d(planes * cls.expansion))
            modules = [block(BlockSlot(cls, inplanes, planes, stride, downsample, layer, 0))]
            inplanes = planes * cls.expansion
            modules += [block(BlockSlot(cls, inplanes, planes, 1, None, layer, i))
                        for i in range(1, blocks)]
            setattr(self, f"layer{layer}", nn.Sequential(*modules))
        self.feat_dim = inplanes
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(inplanes, num_classes) if num_classes else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """torchvision's initialisation: Kaiming-normal convs (fan-out), BN weight 1, bias 0."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d | nn.Conv3d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d | nn.BatchNorm3d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    @property
    def layers(self) -> list[nn.Module]:
        """``layer1``..``layer4``: the papers' stages 2..5."""
        return [self.layer1, self.layer2, self.layer3, self.layer4]

    def stem(self, x: torch.Tensor) -> torch.Tensor:
        return self.maxpool(self.relu(self.bn1(self.conv1(x))))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Feature map after layer4: ``(B, feat_dim, H/32, W/32)``."""
        x = self.stem(x)
        for layer in self.layers:
            x = layer(x)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.avgpool(self.forward_features(x)).flatten(1)
        return x if self.fc is None else self.fc(x)


def parse_depth(name_or_depth: str | int) -> int:
    """``"resnet50"`` or ``50`` -> 50."""
    text = str(name_or_depth).lower().removeprefix("resnet")
    if not text.isdigit() or int(text) not in DEPTHS:
        raise ValueError(f"unknown backbone {name_or_depth!r}; expected one of "
                         + ", ".join(f"resnet{d}" for d in DEPTHS))
    return int(text)


def resnet(name_or_depth: str | int, **kwargs) -> ResNet:
    """``resnet("resnet50")`` or ``resnet(50)``."""
    return ResNet(parse_depth(name_or_depth), **kwargs)
