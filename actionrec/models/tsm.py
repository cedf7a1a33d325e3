"""TSM: Temporal Shift Module (Lin et al., ICCV 2019), the 2D baseline STM and GST compare with."""

from __future__ import annotations

from .temporal import TemporalShift
from .tsn import TSN


class TSM(TSN):
    """TSN whose every ResNet block shifts 1/``shift_div`` of its channels one frame forward and
    1/``shift_div`` one frame back on the residual branch (residual shift, in every block)."""

    def __init__(self, num_classes: int, num_frames: int, *, backbone: str = "resnet50",
                 dropout: float = 0.5, partial_bn: bool = False, frozen_stages: int = 0,
                 shift_div: int = 8):
        def block(slot):
            return slot.build(shift=TemporalShift(slot.inplanes, num_frames, shift_div))

        super().__init__(num_classes, num_frames, backbone=backbone, dropout=dropout,
                         partial_bn=partial_bn, frozen_stages=frozen_stages, block=block)
