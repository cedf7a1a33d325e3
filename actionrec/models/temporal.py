"""Temporal operators on frame-batched feature maps ``(N*T, C, H, W)``.

2D video networks keep time folded into the batch; these operators unfold it, mix information
across the T frames of each clip, and fold it back. None of them writes into slices in place, so
tracing and ONNX export keep them dynamic (the TSM export bug was such an in-place slice copy).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def as_clips(x: torch.Tensor, num_frames: int) -> torch.Tensor:
    """``(N*T, C, H, W)`` -> ``(N, C, T, H, W)`` without copying: for a channels-last input the
    result is a channels-last-3d tensor, the layout 3D convolutions are fastest in."""
    nt, c, h, w = x.shape
    return x.view(nt // num_frames, num_frames, c, h, w).transpose(1, 2)


def as_frames(x: torch.Tensor) -> torch.Tensor:
    """``(N, C, T, H, W)`` -> ``(N*T, C, H, W)`` (a view when the memory order allows it)."""
    n, c, t, h, w = x.shape
    return x.transpose(1, 2).reshape(n * t, c, h, w)


def keep_frames(x: torch.Tensor, num_frames: int, stride: int) -> torch.Tensor:
    """Frames ``0, stride, 2 stride, ...`` of each clip of frames ``(N*T, C, H, W)`` (a view)."""
    return x if stride == 1 else x.unflatten(0, (-1, num_frames))[:, ::stride].flatten(0, 1)


def tap_kernel(taps: torch.Tensor, channelwise: bool = True) -> torch.Tensor:
    """One-hot temporal kernels: channel ``c`` reads frame ``t + taps[c] - 1`` (tap 0: previous,
    1: same, 2: next). Shape ``(C, 1, 3)`` (channel-wise) or ``(C, C, 3)`` (diagonal, ordinary)."""
    c = len(taps)
    kernel = torch.zeros(c, 1 if channelwise else c, 3)
    rows = torch.arange(c)
    kernel[rows, torch.zeros_like(rows) if channelwise else rows, taps] = 1.0
    return kernel


def quarter_taps(channels: int) -> torch.Tensor:
    """STM's CSTM init (Sec. 4.2): first quarter [1, 0, 0], last quarter [0, 0, 1], rest [0, 1, 0]."""
    taps = torch.ones(channels, dtype=torch.long)
    quarter = channels // 4
    taps[:quarter], taps[channels - quarter :] = 0, 2
    return taps


def shift_taps(channels: int, fold_div: int) -> torch.Tensor:
    """TSM: the first 1/fold_div of channels read the next frame, the second the previous one."""
    if not 2 <= fold_div <= channels:
        raise ValueError(f"shift_div must be in [2, {channels}] (two folds of 1/shift_div of "
                         f"{channels} channels), got {fold_div}")
    taps = torch.ones(channels, dtype=torch.long)
    fold = channels // fold_div
    taps[:fold], taps[fold : 2 * fold] = 2, 0
    return taps


def temporal_conv(x: torch.Tensor, kernel: torch.Tensor, num_frames: int,
                  bias: torch.Tensor | None = None) -> torch.Tensor:
    """Temporal convolution of frames ``(N*T, C, H, W)`` with ``kernel`` ``(C_out, C/g, k, 1)``
    (odd ``k``), zero-padded at the clip ends: a 2D convolution with a (k, 1) kernel on the
    zero-copy view ``(N, C, T, H*W)``, the same sums as the (k, 1, 1) 3D convolution."""
    groups = x.shape[1] // kernel.shape[1]
    h, w = x.shape[-2:]
    out = F.conv2d(as_clips(x, num_frames).flatten(3), kernel, bias,
                   padding=(kernel.shape[-2] // 2, 0), groups=groups)
    return as_frames(out.unflatten(3, (h, w)))


class OverTime:
    """Mixin of the modules that convolve their clips' ``num_frames`` frames over time."""

    def over_time(self, x: torch.Tensor, kernel: torch.Tensor,
                  bias: torch.Tensor | None = None) -> torch.Tensor:
        """``temporal_conv`` of ``x`` with the ``(C_out, C/g, k, 1)`` ``kernel``."""
        return temporal_conv(x, kernel, self.num_frames, bias)


class TemporalConv(OverTime, nn.Module):
    """A temporal convolution (kernel 3, no bias) over the T frames at every pixel: STM's CSTM
    fusion (Sec. 3.1, Eq. 1). ``channelwise`` (the paper's choice): one kernel per channel
    (``groups=C``); otherwise an ordinary C -> C temporal convolution (Table 8's alternative).

    Initialisation (Sec. 4.2): kernels of the first quarter of the channels are ``[1, 0, 0]``,
    of the last quarter ``[0, 0, 1]``, of the middle half ``[0, 1, 0]`` -- at init the operator
    is a temporal shift of a quarter of the channels each way. The ordinary conv gets the same
    kernels on its diagonal and zeros elsewhere, so both variants start as the same function.
    """

    def __init__(self, channels: int, num_frames: int, *, channelwise: bool = True):
        super().__init__()
        self.num_frames = num_frames
        self.channelwise = channelwise
        self.weight = nn.Parameter(tap_kernel(quarter_taps(channels), channelwise))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.over_time(x, self.weight[..., None])

    def extra_repr(self) -> str:
        kind = "channelwise" if self.channelwise else "ordinary"
        return f"{self.weight.shape[0]}, num_frames={self.num_frames}, {kind}"


class TemporalShift(OverTime, nn.Module):
    """TSM's shift (Lin et al., ICCV 2019): 1/``fold_div`` of the channels takes the next frame's
    values, another 1/``fold_div`` the previous frame's, the rest stay; zero at the clip ends.

    Computed as a channel-wise temporal convolution with fixed one-hot kernels (a non-persistent
    buffer: the state dict keeps torchvision's keys): exact, and it exports as one Conv node.
    """

    def __init__(self, channels: int, num_frames: int, fold_div: int = 8):
        super().__init__()
        self.num_frames, self.fold_div = num_frames, fold_div
        self.register_buffer("kernel", tap_kernel(shift_taps(channels, fold_div)), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.over_time(x, self.kernel[..., None])

    def extra_repr(self) -> str:
        return f"{self.kernel.shape[0]}, num_frames={self.num_frames}, fold_div={self.fold_div}"
