"""The speed layer: ``accelerate(model)`` gives a built model's modules faster forms of the same
sums, so that the model files compute their papers as written and the speed lives here.

Each form is a mixin put in front of a module's class (``_swap``): parameters, state-dict keys,
the module tree and the results stay the plain model's (``tests/models/test_fast_paths.py``
checks outputs and gradients of every form against the plain model). A form that writes into
preallocated tensors or picks a kernel by hand runs only in eager mode and falls back to the
plain computation where a graph is captured (tracing, ``torch.compile``, ONNX export). The
engine applies the transform where a model is trained, tested, served or benchmarked.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import nn

from .gst import GSTConv
from .msti import FramesMaxPool3d, MSTIBottleneck, MSTITube
from .resnet import Bottleneck
from .stm import CMM
from .temporal import OverTime, keep_frames


def capturing() -> bool:
    """Whether a graph is being captured (tracing, ``torch.compile``, ONNX export)."""
    return (torch.jit.is_tracing() or torch.compiler.is_compiling()
            or torch.onnx.is_in_onnx_export())


def eager_inference() -> bool:
    """No autograd and no graph being captured: where a form that writes into preallocated
    tensors may run."""
    return not (torch.is_grad_enabled() or capturing())


def torch_takes_im2col(x: torch.Tensor, weight: torch.Tensor, stride: list[int],
                       padding: list[int], groups: int) -> bool:
    """Whether PyTorch computes this ``F.conv3d`` with its im2col kernel (``slow_conv3d``), as
    PyTorch itself answers (``torch._C._select_conv_backend``, its kernel choice, which its own
    tests call)."""
    return torch._C._select_conv_backend(
        x, weight, None, stride, padding, [1, 1, 1], False, [0, 0, 0], groups, None
    ) == torch._C._ConvBackend.Slow3d


@functools.cache
def kernel_choice_known() -> bool:
    """Whether the running PyTorch answers ``torch_takes_im2col``; where it does not (a release
    without that function), the 3D convolutions stay plain."""
    probe = torch.zeros(1, 1, 1, 1, 1)
    try:
        torch_takes_im2col(probe, probe, [1, 1, 1], [0, 0, 0], 1)
    except (AttributeError, TypeError, RuntimeError):
        return False
    return True


def conv3d(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None,
           stride=1, padding=0, groups: int = 1) -> torch.Tensor:
    """``F.conv3d`` (zero padding given as sizes, no dilation); a single float32 clip on the CPU
    is kept off PyTorch's im2col path (``slow_conv3d``), which PyTorch takes for a 3D convolution
    of batch 1 unless its own choice (``torch_takes_im2col``) is oneDNN. For the
    convolutions it would send there: without gradients oneDNN is called directly; with gradients
    (autograd's backward of that call would pick im2col again) the clip's output frames are
    computed in two halves as a batch of 2 (``_time_halves``), which PyTorch sends to oneDNN both
    ways. Everything else stays with ``F.conv3d``, where the halves would cost more
    (``python benchmarks/conv_forms.py`` prints the forms). Captured graphs keep ``F.conv3d``,
    whose export every runtime knows, and autocast regions its bf16 kernels."""
    stride, padding = _triple(stride), _triple(padding)
    if (x.shape[0] != 1 or x.device.type != "cpu"
            or x.dtype != torch.float32 or weight.dtype != torch.float32
            or torch.is_autocast_enabled("cpu")
            or not (torch.backends.mkldnn.is_available() and torch.backends.mkldnn.enabled)
            or capturing() or not torch_takes_im2col(x, weight, stride, padding, groups)):
        return F.conv3d(x, weight, bias, stride, padding, 1, groups)
    if not (torch.is_grad_enabled()
            and any(t is not None and t.requires_grad for t in (x, weight, bias))):
        return torch.mkldnn_convolution(x, weight, bias, padding, stride, [1, 1, 1], groups)
    t_out = x.shape[2] + 2 * padding[0] - weight.shape[2] + 1
    if stride[0] == 1 and t_out % 2 == 0:
        return _time_halves(x, weight, bias, stride, padding, groups)
    return F.conv3d(x, weight, bias, stride, padding, 1, groups)


def _time_halves(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                 stride: list[int], padding: list[int], groups: int) -> torch.Tensor:
    """A temporal-stride-1 3D convolution of one clip whose output frames ``[0, a)`` and ``[a,
    2a)`` are computed as a batch of two: each half's input frames, the temporal zero padding
    made explicit. Same sums as one convolution; a channels-last-3d result is one, as a view."""
    kt, pt = weight.shape[2], padding[0]
    half = (x.shape[2] + 2 * pt - kt + 1) // 2
    padded = F.pad(x, (0, 0, 0, 0, pt, pt))
    pieces = torch.cat([padded[:, :, : half + kt - 1], padded[:, :, half:]])
    out = F.conv3d(pieces, weight, bias, [1] + stride[1:], [0] + padding[1:], 1, groups)
    return out.transpose(0, 1).flatten(1, 2).unsqueeze(0)


class FastConv3d:
    """A 3D convolution computed by ``conv3d``."""

    def _conv_forward(self, x: torch.Tensor, weight: torch.Tensor,
                      bias: torch.Tensor | None) -> torch.Tensor:
        return conv3d(x, weight, bias, self.stride, self.padding, self.groups)


def _plain_sized(conv: nn.Conv3d) -> bool:
    """Zero padding given as sizes, no dilation, under a PyTorch whose rule is known."""
    return (conv.padding_mode == "zeros" and isinstance(conv.padding, tuple)
            and tuple(conv.dilation) == (1, 1, 1) and kernel_choice_known())


def conv1x1_add(x: torch.Tensor, weight: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
    """``residual + conv1x1(x)``. On channels-last tensors both are (pixels x channels) matrices,
    so this is one ``addmm`` that reads ``residual`` once instead of a convolution and an add; it
    accumulates into ``residual`` in place when autograd does not need ``residual`` (inference)."""
    channels_last = torch.channels_last
    if not (x.is_contiguous(memory_format=channels_last)
            and residual.is_contiguous(memory_format=channels_last)):
        return residual + F.conv2d(x, weight)
    n, c, h, w = x.shape
    acc = residual.permute(0, 2, 3, 1).reshape(-1, residual.shape[1])
    pixels, kernel = x.permute(0, 2, 3, 1).reshape(-1, c), weight.flatten(1).t()
    if torch.is_grad_enabled() and (residual.requires_grad or x.requires_grad):
        acc = torch.addmm(acc, pixels, kernel)
    else:  # in place: autocast does not cast for in-place ops, so match the residual's dtype
        acc = acc.addmm_(pixels.to(acc.dtype), kernel.to(acc.dtype))
    return acc.view(n, h, w, -1).permute(0, 3, 1, 2)


class FastCMM:
    """STM's CMM with its sum fusion: the restoring 1x1 conv and the sum as one ``conv1x1_add``."""

    def forward(self, x: torch.Tensor, add_to: torch.Tensor | None = None) -> torch.Tensor:
        if add_to is None:
            return super().forward(x, add_to)
        return conv1x1_add(self.differences(x), self.restore.weight, add_to)


class FastGSTBottleneck:
    """A bottleneck around a GST module with split inputs, once bn1 is folded into conv1
    (``fuse.fold_batchnorms``) and on a channels-last clip: conv1 as two convolutions, one per
    group's inputs (its weight rows split: views), so that neither group is a channel slice of a
    channels-last tensor, which each path's convolution would copy."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (isinstance(self.bn1, nn.Identity) and self.conv1.bias is not None
                and x.is_contiguous(memory_format=torch.channels_last)):
            return super().forward(x)
        gst = self.conv2
        identity = x if self.downsample is None else self.downsample(x)
        w, b, k = self.conv1.weight, self.conv1.bias, gst.split
        groups = (self.relu(F.conv2d(x, w[:k], b[:k])), self.relu(F.conv2d(x, w[k:], b[k:])))
        out = self.relu(self.bn2(gst.paths(*groups)))
        out = self.bn3(self.conv3(out))
        out += identity
        return self.relu(out)


def _split_gst(block: Bottleneck) -> bool:
    return isinstance(block.conv2, GSTConv) and block.conv2.split is not None


class FastMSTITube:
    """Eq. 8 group by group, ``X*_i = a_i S_i + b_i T_i``: one pass per group for what two
    re-weightings, two concatenations and a sum do; in eager inference written straight into
    the channel slices of ``X*``."""

    def integrate(self, s: list[torch.Tensor], a: list[torch.Tensor], t: list[torch.Tensor],
                  b: list[torch.Tensor]) -> torch.Tensor:
        if not eager_inference():
            return torch.cat([torch.addcmul(si * ai, ti, bi)
                              for si, ai, ti, bi in zip(s, a, t, b, strict=True)], 1)
        first = s[0]
        out = torch.empty((first.shape[0], sum(g.shape[1] for g in s), *first.shape[2:]),
                          dtype=first.dtype, device=first.device, memory_format=layout(first))
        for o, si, ai, ti, bi in zip(out.split([g.shape[1] for g in s], 1), s, a, t, b,
                                     strict=True):
            torch.mul(si, ai, out=o).addcmul_(ti, bi)
        return out


class FastFramesMaxPool3d:
    """MSTI-Net's stem max-pool (temporal kernel 3, stride 1, padding 1) in eager inference made
    separable: the 2D max-pool of each frame, then the max over each output's temporal window;
    the same maxima. With autograd the 3D pool stays (its backward is the faster one)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not eager_inference():
            return super().forward(x)
        kernel, stride, padding = (_triple(v)[1:] for v in (self.kernel_size, self.stride, self.padding))
        y = F.max_pool2d(x, kernel, stride, padding)
        v = y.permute(0, 2, 3, 1).unflatten(0, (-1, self.num_frames))  # (N, T, h, w, C)
        pairs = torch.maximum(v[:, :-1], v[:, 1:])  # of frames t and t + 1
        inner = torch.maximum(pairs[:, :-1], pairs[:, 1:])  # of t - 1, t, t + 1
        return torch.cat([pairs[:, :1], inner, pairs[:, -1:]], 1).flatten(0, 1).permute(0, 3, 1, 2)


class FastMSTIBottleneck:
    """MSTI's temporal stride with autograd: the kept frames' gradient laid out as the input
    (``keep_frames_in_layout``)."""

    def kept_frames(self, x: torch.Tensor) -> torch.Tensor:
        if not (torch.is_grad_enabled() and x.requires_grad) or capturing():
            return super().kept_frames(x)
        return keep_frames_in_layout(x, self.num_frames, self.temporal_stride)


def keep_frames_in_layout(x: torch.Tensor, num_frames: int, stride: int) -> torch.Tensor:
    """``temporal.keep_frames`` whose gradient keeps the input's memory layout."""
    return _KeepFrames.apply(x, num_frames, stride)


class _KeepFrames(torch.autograd.Function):
    """``temporal.keep_frames`` whose backward scatters into zeros laid out as the input, where
    PyTorch's slice backward returns a contiguous tensor: every gradient behind it would then
    meet a channels-last activation, and MSTI-Net's stem max-pool convert both to compute its
    backward."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, num_frames: int, stride: int) -> torch.Tensor:
        ctx.num_frames, ctx.stride, ctx.shape, ctx.layout = num_frames, stride, x.shape, layout(x)
        return keep_frames(x, num_frames, stride)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        out = torch.empty(ctx.shape, dtype=grad.dtype, device=grad.device,
                          memory_format=ctx.layout).zero_()
        keep_frames(out, ctx.num_frames, ctx.stride).copy_(grad)
        return out, None, None


class FastOverTime:
    """A temporal convolution whose kernel is given the input's layout in strides that say so: a
    channel-wise ``(C, 1, k, 1)`` kernel is contiguous and channels-last at once, and PyTorch,
    reading it as contiguous, converts a channels-last clip of batch 1 and computes on it in the
    slower layout, its result contiguous."""

    def over_time(self, x: torch.Tensor, kernel: torch.Tensor,
                  bias: torch.Tensor | None = None) -> torch.Tensor:
        if layout(x) is torch.channels_last:
            kernel = kernel.clone(memory_format=torch.channels_last)
        return super().over_time(x, kernel, bias)


def _separable(pool: FramesMaxPool3d) -> bool:
    kernel, stride, padding, dilation = (_triple(v) for v in (pool.kernel_size, pool.stride,
                                                               pool.padding, pool.dilation))
    return ((kernel[0], stride[0], padding[0]) == (3, 1, 1) and dilation == [1, 1, 1]
            and not (pool.ceil_mode or pool.return_indices) and pool.num_frames >= 2)


def _triple(v) -> list[int]:
    return list(v) if isinstance(v, tuple | list) else [v] * 3


def layout(x: torch.Tensor) -> torch.memory_format:
    """``channels_last`` for a channels-last 4D tensor, else ``contiguous_format``."""
    return (torch.channels_last if x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last)
            else torch.contiguous_format)


# (plain class, the fast form's mixin, whether a module of that class takes it)
FORMS = (
    (nn.Conv3d, FastConv3d, _plain_sized),
    (OverTime, FastOverTime, lambda m: True),
    (CMM, FastCMM, lambda m: m.pool is None and m.restore.bias is None),
    (Bottleneck, FastGSTBottleneck, _split_gst),
    (MSTITube, FastMSTITube, lambda m: True),
    (MSTIBottleneck, FastMSTIBottleneck, lambda m: m.temporal_stride > 1),
    (FramesMaxPool3d, FastFramesMaxPool3d, _separable),
)


def _swap(module: nn.Module, mixin: type) -> None:
    """``module`` becomes an instance of ``mixin`` put in front of its own class (same name)."""
    cls = type(module)
    if issubclass(cls, mixin):
        return
    module.__class__ = _mixed(mixin, cls)


@functools.cache
def _mixed(mixin: type, cls: type) -> type:
    return type(cls.__name__, (mixin, cls), {"__qualname__": cls.__qualname__})


def accelerate(model: nn.Module) -> nn.Module:
    """``model`` with every module that has a fast form given it (in place; idempotent). The
    model trains, folds (``fuse.fold_batchnorms``) and exports as before."""
    for module in model.modules():
        for plain, mixin, takes in FORMS:
            if isinstance(module, plain) and takes(module):
                _swap(module, mixin)
    return model
