"""What every video recognizer built on a ResNet trunk shares: partial BN and frozen stages."""

from __future__ import annotations

import torch
from torch import nn

from .resnet import ResNet


def to_channels_last(module: nn.Module) -> nn.Module:
    """Channels-last memory layout for every 4D (2D conv) and 5D (3D conv) weight, in place; the
    fastest layout for convolutions on CPU (benchmarks/engine_speed.py) and on GPU tensor cores."""
    formats = {4: torch.channels_last, 5: torch.channels_last_3d}

    def convert(t: torch.Tensor) -> torch.Tensor:
        fmt = formats.get(t.dim())
        return t.contiguous(memory_format=fmt) if fmt else t

    return module._apply(convert)


def _batchnorms(module: nn.Module) -> list[nn.Module]:
    return [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


class VideoRecognizer(nn.Module):
    """Base of the video models: a ``backbone`` (ResNet trunk) and the fine-tuning options.

    ``partial_bn`` (TSN, Wang et al. 2016, Sec. 3.2): every BatchNorm of the backbone but the first
    keeps its ImageNet statistics and affine parameters during training.
    ``frozen_stages``: the first k stages get no gradient and keep BN statistics; stage 1 is the
    stem (conv1 + bn1), stages 2..5 are layer1..layer4.

    Subclasses take input ``(N, input_frames, C, H, W)`` and return logits ``(N, num_classes)``;
    ``input_frames`` is ``num_frames`` except where a model stacks frames (StNet's snippets).
    """

    num_frames: int

    @property
    def input_frames(self) -> int:
        return self.num_frames

    def __init__(self, backbone: ResNet, *, partial_bn: bool = False, frozen_stages: int = 0):
        super().__init__()
        if not 0 <= frozen_stages <= 5:
            raise ValueError(f"frozen_stages must be in [0, 5], got {frozen_stages}")
        self.backbone = backbone
        self.partial_bn = partial_bn
        self.frozen_stages = frozen_stages

    def add_classifier(self, in_features: int, num_classes: int, dropout: float) -> None:
        """``dropout`` and ``fc``, the weights N(0, 0.001) and bias 0 (TSN's head init)."""
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(in_features, num_classes)
        nn.init.normal_(self.fc.weight, 0, 0.001)
        nn.init.zeros_(self.fc.bias)

    def _frozen_modules(self) -> list[nn.Module]:
        b = self.backbone
        stages = [nn.ModuleList([b.conv1, b.bn1]), *b.stages]
        return stages[: self.frozen_stages]

    def _fixed_batchnorms(self) -> list[nn.Module]:
        fixed = [bn for m in self._frozen_modules() for bn in _batchnorms(m)]
        if self.partial_bn:
            fixed += _batchnorms(self.backbone)[1:]
        return fixed

    def freeze(self) -> None:
        """Turn off gradients of frozen stages and of the BN layers partial BN fixes."""
        for m in self._frozen_modules():
            m.requires_grad_(False)
        for bn in self._fixed_batchnorms():
            bn.requires_grad_(False)

    def train(self, mode: bool = True):
        super().train(mode)
        if mode:
            for bn in self._fixed_batchnorms():
                bn.eval()
            for m in self._frozen_modules():
                m.eval()
        return self
