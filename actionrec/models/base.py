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
    """Base of the video models on a ResNet trunk (TSN and what derives from it, StNet, MSTI-Net).

    The constructor contract, in the order a subclass's ``__init__`` follows it:

    1. Signature: ``num_classes`` and ``num_frames`` positional, everything else keyword-only with
       the paper's default -- the shared ``backbone``, ``dropout``, ``partial_bn``,
       ``frozen_stages`` and the model's own options. The registry reads options and defaults from
       this signature (``models/registry.py`` gives each a help line). A parent's constructor is
       called with the shared parameters by keyword.
    2. Trunk: build it (``resnet(backbone, block=factory)``; the factory gets one ``BlockSlot``
       per residual block), then call ``VideoRecognizer.__init__(self, trunk, num_frames=...,
       partial_bn=..., frozen_stages=...)`` before assigning any submodule.
    3. Own modules, then the classifier: ``add_classifier`` (TSN's head init) or a documented
       other init.
    4. ``self.freeze()`` last, once every parameter exists.

    A subclass provides ``forward``: clips ``(N, input_frames, 3, H, W)`` -> logits
    ``(N, num_classes)``; overrides ``input_frames`` where a model stacks frames (StNet's
    snippets); and may provide ``frame_features`` -> ``(N, T, C)`` pooled per-frame features (what
    ``actionrec features extract`` writes).

    ``partial_bn`` (TSN, Wang et al. 2016, Sec. 3.2): every BatchNorm of the backbone but the first
    keeps its ImageNet statistics and affine parameters during training.
    ``frozen_stages``: the first k stages get no gradient and keep BN statistics; stage 1 is the
    stem (conv1 + bn1), stages 2..5 are layer1..layer4 (the papers' conv2_x..conv5_x).
    """

    def __init__(self, backbone: ResNet, *, num_frames: int, partial_bn: bool = False,
                 frozen_stages: int = 0):
        super().__init__()
        if num_frames < 1:
            raise ValueError(f"num_frames must be >= 1, got {num_frames}")
        if not 0 <= frozen_stages <= 5:
            raise ValueError(f"frozen_stages must be in [0, 5], got {frozen_stages}")
        self.backbone = backbone
        self.num_frames = num_frames
        self.partial_bn = partial_bn
        self.frozen_stages = frozen_stages

    @property
    def input_frames(self) -> int:
        """Frames per clip the model takes: ``num_frames`` unless it stacks frames (StNet)."""
        return self.num_frames

    def add_classifier(self, in_features: int, num_classes: int, dropout: float, *,
                       uniform: float | None = None) -> None:
        """``dropout`` and ``fc`` with bias 0 and weights N(0, 0.001) (TSN's head init), or
        U(-uniform, uniform) where a model's reference code says so (StNet)."""
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(in_features, num_classes)
        if uniform is None:
            nn.init.normal_(self.fc.weight, 0, 0.001)
        else:
            nn.init.uniform_(self.fc.weight, -uniform, uniform)
        nn.init.zeros_(self.fc.bias)

    def _frozen_modules(self) -> list[nn.Module]:
        b = self.backbone
        stages = [nn.ModuleList([b.conv1, b.bn1]), *b.layers]
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
