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
    taps = torch.ones(channels, dtype=torch.long)
    fold = channels // fold_div
    taps[:fold], taps[fold : 2 * fold] = 2, 0
    return taps


def conv3d(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None,
           stride=1, padding=0, groups: int = 1) -> torch.Tensor:
    """``F.conv3d``; a single float32 clip on the CPU is sent straight to oneDNN.

    PyTorch 2.13 computes a 3D convolution of batch 1 at stride 1 with its im2col path
    (``slow_conv3d``): 10x slower than oneDNN at GST's res2 temporal path (21 vs 2.2 ms, 2
    threads), up to 7.5x at MSTI-Net's tube shapes. From batch 2 on, and for channel-wise
    kernels, it already uses oneDNN and is a little faster than this direct call, so those stay
    with it (``python benchmarks/conv_forms.py`` prints all three forms). Traced, exported and
    compiled graphs keep ``F.conv3d``, whose export every runtime knows, and autocast regions
    its bf16 kernels.
    """
    if (x.shape[0] != 1 or groups == x.shape[1] or x.device.type != "cpu"
            or x.dtype != torch.float32 or weight.dtype != torch.float32
            or torch.is_autocast_enabled("cpu")
            or not (torch.backends.mkldnn.is_available() and torch.backends.mkldnn.enabled)
            or torch.jit.is_tracing() or torch.compiler.is_compiling()
            or torch.onnx.is_in_onnx_export()):
        return F.conv3d(x, weight, bias, stride, padding, 1, groups)
    return torch.mkldnn_convolution(x, weight, bias, _triple(padding), _triple(stride),
                                    [1, 1, 1], groups)


def _triple(v) -> list[int]:
    return list(v) if isinstance(v, tuple | list) else [v] * 3


class Conv3d(nn.Conv3d):
    """``nn.Conv3d`` (same parameters and keys; zero padding given as sizes) computed by
    ``conv3d``."""

    def _conv_forward(self, x, weight, bias):
        return conv3d(x, weight, bias, self.stride, self.padding, self.groups)


def temporal_conv(x: torch.Tensor, kernel: torch.Tensor, num_frames: int) -> torch.Tensor:
    """Kernel-3 temporal convolution of frames ``(N*T, C, H, W)`` with ``kernel`` ``(C, C/g, 3)``,
    zero-padded at the clip ends; a 3D convolution on a zero-copy ``(N, C, T, H, W)`` view."""
    groups = x.shape[1] // kernel.shape[1]
    out = F.conv3d(as_clips(x, num_frames), kernel[..., None, None], padding=(1, 0, 0), groups=groups)
    return as_frames(out)


class TemporalConv(nn.Module):
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
        return temporal_conv(x, self.weight, self.num_frames)

    def extra_repr(self) -> str:
        kind = "channelwise" if self.channelwise else "ordinary"
        return f"{self.weight.shape[0]}, num_frames={self.num_frames}, {kind}"


class TemporalShift(nn.Module):
    """TSM's shift (Lin et al., ICCV 2019): 1/``fold_div`` of the channels takes the next frame's
    values, another 1/``fold_div`` the previous frame's, the rest stay; zero at the clip ends.

    Computed as a channel-wise temporal convolution with fixed one-hot kernels (a non-persistent
    buffer: the state dict keeps torchvision's keys): exact, it keeps the channels-last layout and
    exports as one Conv node, where concatenating shifted slices leaves the result in a layout
    the next convolution has to convert (no benchmark here times the two).
    """

    def __init__(self, channels: int, num_frames: int, fold_div: int = 8):
        super().__init__()
        self.num_frames, self.fold_div = num_frames, fold_div
        self.register_buffer("kernel", tap_kernel(shift_taps(channels, fold_div)), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return temporal_conv(x, self.kernel, self.num_frames)

    def extra_repr(self) -> str:
        return f"{self.kernel.shape[0]}, num_frames={self.num_frames}, fold_div={self.fold_div}"
