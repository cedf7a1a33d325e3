"""TSN / C2D baseline (Wang et al., 2016): a 2D network per frame, average of per-frame scores."""

from __future__ import annotations

import torch

from .base import VideoRecognizer
from .resnet import BlockFactory, default_block, resnet


class TSN(VideoRecognizer):
    """Per-frame backbone -> dropout -> fc -> average consensus over the T frames.

    The baseline of all four papers: STM and GST compare with TSN-ResNet50 ("C2D" in GST's
    Table 2), StNet with TSN on Kinetics. Models that change only the ResNet blocks (TSM, STM, GST
    and its baselines) subclass it and pass a ``block`` factory (``BlockSlot -> module``).
    """

    def __init__(self, num_classes: int, num_frames: int, *, backbone: str = "resnet50",
                 dropout: float = 0.5, partial_bn: bool = False, frozen_stages: int = 0,
                 block: BlockFactory = default_block):
        super().__init__(resnet(backbone, block=block), num_frames=num_frames,
                         partial_bn=partial_bn, frozen_stages=frozen_stages)
        self.add_classifier(self.backbone.feat_dim, num_classes, dropout)
        self.freeze()

    def frame_features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled per-frame features ``(N, T, C)`` (what StNet's Table 1 heads are trained on)."""
        return self.backbone(x.flatten(0, 1)).unflatten(0, x.shape[:2])

    def frame_scores(self, x: torch.Tensor) -> torch.Tensor:
        """Per-frame class scores ``(N, T, num_classes)`` of a clip ``(N, T, C, H, W)``."""
        n, t = x.shape[:2]
        features = self.backbone(x.flatten(0, 1))
        return self.fc(self.dropout(features)).unflatten(0, (n, t))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.frame_scores(x).mean(1)
