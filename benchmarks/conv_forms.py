"""3D convolutions of our models in their forms: 2D convs where the kernel allows, PyTorch's
``F.conv3d`` and our ``fast.conv3d`` (oneDNN called directly).

    python benchmarks/conv_forms.py [--frames 8] [--batch 1 2] [--train]

Times the same convolution in each form, channels-last, in one run, after checking they agree
(``--train``: forward and backward, the gradients of the input and the weights):

- spatial (1, 3, 3): ``Conv2d`` 3x3 on ``(N*T, C, H, W)`` frames vs ``Conv3d`` on the clip
  ``(N, C, T, H, W)`` -- GST-ResNet50's spatial paths (alpha = 1/4, beta = 1/2) and MSTI-Net's
  multi-scale spatial groups;
- temporal (3, 1, 1): ``Conv2d`` with a (3, 1) kernel on the view ``(N, C, T, H*W)`` vs ``Conv3d`` --
  MSTI-Net's multi-scale temporal groups, STM-ResNet50's channel-wise CSTM conv, P3D-ResNet50's
  dense temporal convs and TSM's shift;
- full (3, 3, 3): GST-ResNet50's temporal paths (no 2D form).

At batch 1 (one video: inference) PyTorch sends stride-1 3D convolutions to its im2col path
(``slow_conv3d``): ``F.conv3d`` is up to 16x slower than ``conv3d`` at GST's shapes and up to 7x
slower than the 2D forms; ``conv3d`` is about as fast as the 2D forms. At batch 2 all are about
equal. In training at batch 1 ``conv3d`` computes the clip as two halves of its frames where
PyTorch would take im2col: 7x faster than ``F.conv3d`` at GST's res2 (57 vs 8.3 ms).
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F

from actionrec.analysis.benchmark import time_call
from actionrec.models.fast import conv3d
from actionrec.models.temporal import as_clips
from actionrec.runtime import tune_allocator

# (layer, kind, input channels, output channels, input size, stride, groups)
LAYERS = [("GST-R50 " + s, "spatial", *rest, 1) for s, *rest in [
    ("res2", 32, 48, 56, 1), ("res3.0", 64, 96, 56, 2), ("res3", 64, 96, 28, 1),
    ("res4.0", 128, 192, 28, 2), ("res4", 128, 192, 14, 1), ("res5.0", 256, 384, 14, 2),
    ("res5", 256, 384, 7, 1)]]
LAYERS += [(f"MSTI-R50 conv{i + 2}_x", kind, c, c, size, 1, 1)
           for kind in ("spatial", "temporal")
           for i, (c, size) in enumerate([(16, 56), (32, 28), (64, 14), (128, 7)])]
LAYERS += [(f"STM-R50 res{i + 2}", "temporal", c, c, size, 1, c)
           for i, (c, size) in enumerate([(64, 56), (128, 28), (256, 14), (512, 7)])]
LAYERS += [(f"P3D-R50 res{i + 2}", "temporal", c, c, size, 1, 1)  # after each 3x3 conv
           for i, (c, size) in enumerate([(64, 56), (128, 28), (256, 14), (512, 7)])]
LAYERS += [(f"TSM-R50 res{i + 2}", "temporal", c, c, size, 1, c)  # the shift, on block inputs
           for i, (c, size) in enumerate([(256, 56), (512, 28), (1024, 14), (2048, 7)])]
LAYERS += [("GST-R50 " + s, "full", *rest, 1) for s, *rest in [
    ("res2", 32, 16, 56, 1), ("res3.0", 64, 32, 56, 2), ("res3", 64, 32, 28, 1),
    ("res4", 128, 64, 14, 1), ("res5", 256, 128, 7, 1)]]


def forms(kind: str, x: torch.Tensor, w: torch.Tensor, stride: int, frames: int, groups: int):
    """{form: (closure, its weight tensor)} for the convolution, every output in the 3D layout
    ``(N, C, T, H, W)``; the 2D form is None for a full 3x3x3 kernel. Weights are leaves that
    require gradients when ``x`` does."""
    clips = as_clips(x, frames)

    def leaf(t: torch.Tensor) -> torch.Tensor:
        return t.detach().requires_grad_(x.requires_grad)

    if kind == "full":
        w3d = leaf(w[:, :, None].expand(-1, -1, 3, -1, -1)
                   .contiguous(memory_format=torch.channels_last_3d))
        two, w2d, pad = None, None, (1, 1, 1)
    elif kind == "spatial":
        w2d = leaf(w.contiguous(memory_format=torch.channels_last))
        w3d = leaf(w[:, :, None].contiguous(memory_format=torch.channels_last_3d))
        pad = (0, 1, 1)
        n = x.shape[0] // frames

        def two():
            out = F.conv2d(x, w2d, stride=stride, padding=1)
            return out.unflatten(0, (n, frames)).transpose(1, 2)
    else:
        w2d = leaf(w[..., :1].contiguous(memory_format=torch.channels_last))  # (O, I/g, 3, 1)
        w3d = leaf(w[..., None, :1].contiguous(memory_format=torch.channels_last_3d))
        view = clips.flatten(3)  # (N, C, T, H*W), zero-copy
        pad = (1, 0, 0)

        def two():
            return F.conv2d(view, w2d, padding=(1, 0), groups=groups).unflatten(3, x.shape[-2:])
    stride3 = (1, stride, stride)
    return {"2D form": (two, w2d),
            "F.conv3d": (lambda: F.conv3d(clips, w3d, None, stride3, pad, 1, groups), w3d),
            "conv3d": (lambda: conv3d(clips, w3d, None, stride3, pad, groups), w3d)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--frames", type=int, default=8)
    p.add_argument("--batch", type=int, nargs="+", default=[1, 2])
    p.add_argument("--train", action="store_true", help="forward and backward")
    args = p.parse_args()
    tune_allocator()
    torch.manual_seed(0)
    for batch in args.batch:
        table(batch, args.frames, args.train)


def timed(fn, weight: torch.Tensor, x: torch.Tensor, train: bool):
    """The form's output (inference) or the gradients of ``x`` and ``weight`` for a fixed
    upstream gradient (``train``)."""
    if not train:
        return fn
    grad = torch.cos(fn().detach())
    return lambda: torch.autograd.grad(fn(), (x, weight), grad)


def table(batch: int, frames: int, train: bool) -> None:
    print(f"batch {batch} x {frames} frames, channels-last, ms per "
          f"{'forward + backward' if train else 'forward'}")
    names = ("2D form", "F.conv3d", "conv3d")
    print(f"{'layer':<22} {'kind':<9} {'C_in':>5} {'C_out':>5} {'size':>5} {'stride':>6} "
          + " ".join(f"{n:>8}" for n in names) + f" {'F.conv3d / conv3d':>18}")
    totals = {}
    for name, kind, cin, cout, size, stride, groups in LAYERS:
        x = torch.randn(batch * frames, cin, size, size).contiguous(memory_format=torch.channels_last)
        x.requires_grad_(train)
        w = torch.randn(cout, cin // groups, 3, 3) / (cin // groups * 3) ** 0.5
        fns = {form: timed(fn, weight, x, train) for form, (fn, weight) in
               forms(kind, x, w, stride, frames, groups).items() if fn is not None}
        with torch.set_grad_enabled(train):
            ref = fns["F.conv3d"]()
            times = {}
            for form, fn in fns.items():
                out = fn()
                if train:  # the 2D form's weight gradient has the 2D kernel's shape
                    out = [o.reshape(r.shape) for o, r in zip(out, ref, strict=True)]
                torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-3)
                times[form] = time_call(fn, min_time=0.5) * 1e3
        model = name.split()[0]
        acc = totals.setdefault(model, dict.fromkeys(names, 0.0))
        for form, t in times.items():
            acc[form] += t
        cells = " ".join(f"{times[n]:>8.2f}" if n in times else f"{'-':>8}" for n in names)
        print(f"{name:<22} {kind:<9} {cin:>5} {cout:>5} {size:>5} {stride:>6} {cells} "
              f"{times['F.conv3d'] / times['conv3d']:>18.2f}")
    for model, acc in totals.items():
        cells = " ".join(f"{acc[n]:>8.2f}" for n in names)
        print(f"{model + ' all':<61} {cells} {acc['F.conv3d'] / acc['conv3d']:>18.2f}")


if __name__ == "__main__":
    main()
