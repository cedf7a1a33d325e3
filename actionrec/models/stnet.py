"""StNet: local and global spatial-temporal modeling (He et al., AAAI 2019, Sec. 3, Fig. 2-3).

- Super-images: T segments of N consecutive RGB frames, stacked on the channel axis (``T x 3N x H
  x W``); a 2D ResNet with a 3N-channel conv1, initialised from the ImageNet conv1 the I3D way
  (repeated over the N frames and divided by N).
- Temporal modeling blocks after res3 and res4 (``layer2``, ``layer3``): Conv3d(C, C, (3, 1, 1))
  -> BN3d -> ReLU over the T feature maps, conv weights 1/(3C), bias 0, BN3d the identity. With
  that initialisation the block's output is the same for every channel (the average over the
  window), so without a shortcut it would erase the ImageNet features; as the authors' reference
  code does, we add the block's input back (``x + ReLU(BN(conv(x)))``).
- Head: the temporal Xception block over the T pooled features, max over T, fc (``head=txb``), or
  TSN's average of per-super-image scores (``head=avg``, Table 2's "no TXB" rows).
- fc init: the paper gives none, so we take the authors' reference code's rather than TSN's
  N(0, 0.001): weights U(-1/sqrt(C), 1/sqrt(C)) with C the backbone's pooled width (2048 on
  ResNet-50, also for the TXB head's 1024 inputs), bias 0. The dropout before the fc is ours.
- ``n``, the frames per super-image, is the data's snippet length: configs set it once, as
  ``data.snippet_len`` (``engine/build.py`` passes it on).

``n=1, temporal_blocks=false, head=avg`` is TSN; Table 2's four rows are the combinations of
``n`` in (1, 5), ``temporal_blocks`` and ``head``. Counts (400 classes, T=25, 15x256x256):
StNet-R50 33.16M params / 189.27 GMACs (paper 33.16M / 189.29G), R101 52.15M / 310.48G (52.15M /
310.50G).
"""

from __future__ import annotations

import torch
from torch import nn

from .base import VideoRecognizer
from .heads import TemporalXception
from .resnet import resnet
from .temporal import as_clips, as_frames


class TemporalBlock(nn.Module):
    """``x + ReLU(BN3d(Conv3d_(3,1,1)(x)))`` over the T feature maps of each clip."""

    def __init__(self, channels: int, num_frames: int):
        super().__init__()
        self.num_frames = num_frames
        self.conv = nn.Conv3d(channels, channels, (3, 1, 1), padding=(1, 0, 0))
        self.bn = nn.BatchNorm3d(channels)
        self.relu = nn.ReLU(inplace=True)
        nn.init.constant_(self.conv.weight, 1.0 / (3 * channels))
        nn.init.zeros_(self.conv.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.relu(self.bn(self.conv(as_clips(x, self.num_frames))))
        return x + as_frames(y)


class StNet(VideoRecognizer):
    """StNet: super-images, temporal modeling blocks, temporal Xception head."""

    def __init__(self, num_classes: int, num_frames: int, *, backbone: str = "resnet50",
                 dropout: float = 0.5, partial_bn: bool = False, frozen_stages: int = 0,
                 n: int = 5, temporal_blocks: bool = True, head: str = "txb"):
        if head not in ("txb", "avg"):
            raise ValueError(f"head must be txb or avg, got {head!r}")
        if n < 1:
            raise ValueError(f"n (frames per super-image) must be >= 1, got {n}")
        super().__init__(resnet(backbone, in_channels=3 * n), num_frames=num_frames,
                         partial_bn=partial_bn, frozen_stages=frozen_stages)
        self.n = n
        widths = [self.backbone.layer2[-1], self.backbone.layer3[-1]]
        channels = [m.conv3.out_channels if hasattr(m, "conv3") else m.conv2.out_channels
                    for m in widths]
        self.temporal = nn.ModuleList(TemporalBlock(c, num_frames) for c in channels) \
            if temporal_blocks else None
        self.txb = TemporalXception(self.backbone.feat_dim) if head == "txb" else None
        self.add_classifier(self.txb.out_channels if self.txb else self.backbone.feat_dim,
                            num_classes, dropout, uniform=self.backbone.feat_dim ** -0.5)
        self.freeze()

    @property
    def input_frames(self) -> int:
        return self.num_frames * self.n

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Feature maps after res5 of the T super-images ``(N*T, C, h, w)`` of a clip
        ``(N, T*n, 3, H, W)``."""
        b = self.backbone
        n = x.shape[0]
        x = b.stem(x.reshape(n * self.num_frames, 3 * self.n, *x.shape[-2:]))
        x = b.layer1(x)
        x = b.layer2(x)
        if self.temporal is not None:
            x = self.temporal[0](x)
        x = b.layer3(x)
        if self.temporal is not None:
            x = self.temporal[1](x)
        return b.layer4(x)

    def frame_features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled features of the T super-images ``(N, T, C)`` (the TXB's input)."""
        return self.features(x).mean((2, 3)).view(x.shape[0], self.num_frames, -1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = self.frame_features(x)
        if self.txb is None:
            return self.fc(self.dropout(pooled)).mean(1)
        return self.fc(self.dropout(self.txb(pooled)))
