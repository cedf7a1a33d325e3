"""The speed layer (``models/fast.py``) against the plain models: every fast form computes what
the model file computes, outputs and gradients.

Models are compared in eval mode, BN on its running statistics: with batch statistics of one
small clip, BN cancels nearly equal terms and turns float32 rounding of either form into
percent-level noise, which would compare nothing. Every BN gets random affine parameters and
running statistics, so that no layer at its initial value (a zero-init BN scale, unit
statistics) can hide a form.
"""

import copy

import pytest
import torch
import torch.nn.functional as F

from actionrec.models import fast
from actionrec.models.base import to_channels_last
from actionrec.models.fuse import fold_batchnorms
from actionrec.models.msti import FramesMaxPool3d, MSTITube
from actionrec.models.registry import build_with_input
from actionrec.models.temporal import TemporalConv, TemporalShift, as_clips, as_frames
from tests.conftest import torch_threads
from tests.helpers import randomised
from tests.models.same import assert_same_with_gradients

MODELS = {  # name -> (backbone, options, the fast forms it takes)
    "gst": ("resnet26", {}, {fast.FastGSTBottleneck, fast.FastConv3d}),
    "gst_large": ("resnet18", {}, {fast.FastConv3d}),
    "c3d": ("resnet18", {"groups": 2}, {fast.FastConv3d}), "p3d": ("resnet18", {}, {fast.FastConv3d}),
    "stnet": ("resnet18", {}, {fast.FastConv3d}),
    "msti": ("resnet26", {}, {fast.FastConv3d, fast.FastMSTITube, fast.FastFramesMaxPool3d,
                              fast.FastMSTIBottleneck, fast.FastOverTime}),
    "stm": ("resnet18", {}, {fast.FastCMM, fast.FastOverTime}),
    "tsm": ("resnet18", {}, {fast.FastOverTime}),
}


def passes(model: torch.nn.Module, x: torch.Tensor) -> list[list[torch.Tensor]]:
    """Logits without autograd, logits and every parameter's gradient, logits of the folded
    model (eval mode: the fast forms follow autograd, not the mode)."""
    weights = torch.randn(5, generator=torch.Generator().manual_seed(4))
    model.eval()
    with torch.no_grad():
        results = [[model(x)]]
    out = model(x)
    (out * weights).sum().backward()
    results.append([out.detach()] + [p.grad for p in model.parameters() if p.grad is not None])
    with torch.no_grad():
        results.append([fold_batchnorms(model)(x)])
    return results


@pytest.mark.parametrize("name", MODELS)
def test_accelerated_model_computes_the_plain_model(name):
    backbone, options, forms = MODELS[name]
    torch.manual_seed(0)
    model, x = build_with_input(name, classes=5, frames=4, size=32, backbone=backbone,
                                options=options, generator=torch.Generator().manual_seed(2))
    plain = to_channels_last(randomised(model))
    accelerated = fast.accelerate(copy.deepcopy(plain))
    assert {mixin for mixin in forms if any(isinstance(m, mixin) for m in accelerated.modules())} \
        == forms
    assert list(accelerated.state_dict()) == list(plain.state_dict())
    assert [type(m).__name__ for m in accelerated.modules()] == \
        [type(m).__name__ for m in plain.modules()]
    for ours, ref in zip(passes(accelerated, x), passes(plain, x), strict=True):
        for a, b in zip(ours, ref, strict=True):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4 * b.abs().max().item())


def test_accelerate_is_idempotent():
    model = fast.accelerate(build_with_input("stm", classes=5, frames=4, size=32,
                                             backbone="resnet18")[0])
    types = [type(m) for m in model.modules()]
    assert [type(m) for m in fast.accelerate(model).modules()] == types


def test_conv1x1_add_has_gradients():
    cl = torch.channels_last
    x = torch.randn(2, 4, 3, 3).contiguous(memory_format=cl).requires_grad_()
    w = torch.randn(6, 4, 1, 1, requires_grad=True)
    r = torch.randn(2, 6, 3, 3).contiguous(memory_format=cl).requires_grad_()
    out = fast.conv1x1_add(x, w, r)
    ref = r + torch.nn.functional.conv2d(x, w)
    torch.testing.assert_close(out, ref)
    out.sum().backward()
    torch.testing.assert_close(r.grad, torch.ones_like(r))
    torch.testing.assert_close(w.grad, x.sum((0, 2, 3)).expand(6, 4).reshape(6, 4, 1, 1))


def test_folded_gst_bottleneck_copies_no_channel_slice():
    """GST's bottleneck once folded and accelerated, on a channels-last clip: the plain model's
    logits with two copies fewer per block: the paths' inputs are no channel slices. On 2
    threads: on one, PyTorch computes 1x1 convolutions of fewer than 16 frames without oneDNN,
    which copies slices as well."""
    model, x = build_with_input("gst", classes=5, frames=4, size=32, backbone="resnet26",
                                generator=torch.Generator().manual_seed(2))
    model = to_channels_last(randomised(model)).eval()

    def copies(run):
        with torch.profiler.profile() as prof:
            out = run()
        return out, sum(e.count for e in prof.key_averages() if e.key == "aten::copy_")

    with torch.no_grad(), torch_threads(2):
        folded = fold_batchnorms(copy.deepcopy(model))
        ref, plain_copies = copies(lambda: folded(x))
        accelerated = fast.accelerate(folded)
        out, fast_copies = copies(lambda: accelerated(x))
    assert fast_copies <= plain_copies - 2 * 8  # ResNet-26 has 8 bottlenecks
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-4 * max(1.0, ref.abs().max().item()))


@pytest.mark.parametrize("layout", [torch.channels_last, torch.contiguous_format])
def test_fast_tube_integrates_as_eq_8(layout):
    """MSTI's tube with Eq. 8 group by group (in eager inference into the output's slices)
    against the plain tube: without autograd, and outputs and input gradients with it."""
    torch.manual_seed(0)
    plain = randomised(MSTITube(32, num_frames=4)).eval()
    tube = fast.accelerate(copy.deepcopy(plain))
    x = torch.randn(8, 32, 6, 6).contiguous(memory_format=layout)  # 2 clips of 4 frames
    with torch.no_grad():
        out = tube(x)
        torch.testing.assert_close(out, plain(x), rtol=1e-5, atol=1e-5)
    assert out.is_contiguous(memory_format=layout)
    assert_same_with_gradients(tube, plain, (x,))


@pytest.mark.parametrize("layout", [torch.channels_last, torch.contiguous_format])
def test_separable_stem_pool_gives_the_3d_max_pool(layout):
    """MSTI-Net's stem max-pool, separable in eager inference, gives the 3x3x3 max-pool's maxima
    exactly; with autograd it is the 3D pool."""
    pool = fast.accelerate(FramesMaxPool3d((3, 3, 3), (1, 2, 2), (1, 1, 1), num_frames=4))
    x = torch.randn(8, 5, 9, 10).contiguous(memory_format=layout)
    expected = as_frames(F.max_pool3d(as_clips(x, 4), 3, (1, 2, 2), 1))
    with torch.no_grad(), torch.profiler.profile() as prof:
        out = pool(x)
    assert "aten::max_pool3d" not in {e.key for e in prof.key_averages()}
    assert torch.equal(out, expected)
    with torch.profiler.profile() as prof:
        assert torch.equal(pool(x), expected)
    assert "aten::max_pool3d" in {e.key for e in prof.key_averages()}


@pytest.mark.parametrize("layout", [torch.channels_last, torch.contiguous_format])
def test_kept_frames_gradient_keeps_the_layout(layout):
    """Frames 0, 2 of each 4-frame clip, with the slice's values and gradient; the gradient is
    laid out as the input, where PyTorch's slice backward returns a contiguous one. Taken on a
    non-leaf: a leaf's ``.grad`` is re-laid out."""
    x = torch.randn(2 * 4, 3, 5, 6).contiguous(memory_format=layout).requires_grad_()
    frames, grad = x * 1, torch.randn(2 * 2, 3, 5, 6)
    out = fast.keep_frames_in_layout(frames, 4, 2)
    expected = frames.view(2, 4, 3, 5, 6)[:, ::2].flatten(0, 1)
    assert torch.equal(out, expected)
    (ours,) = torch.autograd.grad(out, frames, grad)
    (pytorchs,) = torch.autograd.grad(expected, frames, grad)
    assert torch.equal(ours, pytorchs)
    assert ours.is_contiguous(memory_format=layout)
    assert pytorchs.is_contiguous()  # PyTorch's own layout: what the fast form is for


def test_training_gradients_arrive_in_their_activations_layout():
    """An accelerated channels-last MSTI-Net training step: every module's output gets a
    channels-last gradient. The temporal stride's slice gives the plain stem a contiguous one,
    and the stem's 3D max-pool converts both to compute its backward."""
    model = fast.accelerate(to_channels_last(build_with_input(
        "msti", classes=5, frames=4, size=32, backbone="resnet26")[0])).train()
    checked, mixed = [], []

    def check(module, inputs, out):
        name = type(module).__name__
        if out.requires_grad and not getattr(module, "inplace", False):
            def record(grad):
                checked.append(name)
                if not grad.is_contiguous(memory_format=torch.channels_last):
                    mixed.append((name, tuple(grad.shape), grad.stride()))
            out.register_hook(record)

    for m in model.backbone.modules():
        if isinstance(m, torch.nn.Conv2d | torch.nn.Conv3d | torch.nn.BatchNorm2d
                          | torch.nn.MaxPool3d):
            m.register_forward_hook(check)
    model(torch.randn(1, 4, 3, 32, 32)).sum().backward()
    assert "FramesMaxPool3d" in checked and "FramesConv3d" in checked and len(checked) > 100
    assert not mixed


@pytest.mark.parametrize("batch", [1, 2])
@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last_3d])
@pytest.mark.parametrize("kernel,stride,padding,groups", [
    ((3, 3, 3), (1, 1, 1), (1, 1, 1), 1),  # GST's temporal path, C3D
    ((3, 3, 3), (1, 2, 2), (1, 1, 1), 2),  # a stride-2 block, C3D groups=2
    ((3, 1, 1), (1, 1, 1), (1, 0, 0), 1),  # P3D, StNet's temporal block
    ((3, 1, 1), (1, 1, 1), (1, 0, 0), 8),  # channel-wise (left to F.conv3d)
    ((3, 7, 7), (1, 2, 2), (1, 3, 3), 1),  # MSTI-Net's conv1
])
def test_conv3d_equals_torch_conv3d(batch, layout, kernel, stride, padding, groups):
    """The oneDNN path of ``conv3d`` against ``F.conv3d``: outputs and all three gradients."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(batch, 8, 4, 15, 15, generator=g).contiguous(memory_format=layout)
    w = torch.randn(8 if groups == 8 else 6, 8 // groups, *kernel, generator=g) / 8
    b = torch.randn(w.shape[0], generator=g)
    assert_same_with_gradients(
        lambda *a: fast.conv3d(*a, stride, padding, groups),
        lambda *a: torch.nn.functional.conv3d(a[0], a[1], a[2], stride, padding, 1, groups), (x, w, b))


def test_conv3d_takes_onednn_on_cpu_and_export_keeps_conv3d():
    """The fast path is taken (the profile shows oneDNN, not slow_conv3d) and an exported graph
    (what ``actionrec export`` writes to ONNX) keeps the plain convolution."""
    x, layer = torch.randn(1, 4, 4, 9, 9), fast.accelerate(torch.nn.Conv3d(4, 4, 3, padding=1))
    with torch.profiler.profile() as prof:
        layer(x)
    ops = {e.key for e in prof.key_averages()}
    assert "aten::mkldnn_convolution" in ops and "aten::slow_conv3d_forward" not in ops
    graph = str(torch.export.export(layer, (x,)).graph)
    assert "aten.conv3d" in graph and "mkldnn" not in graph


# clips on each side of each branch of PyTorch's use_mkldnn rule (2.13, 2.14): which kernel ran
@pytest.mark.parametrize("shape,kernel,groups,threads", [
    ((1, 40, 8, 64), (3, 3, 3), 1, 2),  # 20480: im2col
    ((1, 40, 8, 65), (3, 3, 3), 1, 2),  # 20800: oneDNN
    ((1, 8, 4, 15), (3, 5, 5), 1, 2),  # large spatial kernel: oneDNN
    ((1, 8, 4, 15), (3, 3, 5), 1, 2),
    ((1, 8, 4, 15), (3, 3, 3), 2, 2),  # grouped: oneDNN
    ((2, 8, 4, 15), (3, 3, 3), 1, 2),  # batch 2: oneDNN
    ((1, 8, 4, 15), (1, 1, 1), 1, 1),  # pointwise, one thread: im2col
    ((20, 8, 4, 15), (1, 1, 1), 1, 1),
])
def test_torch_takes_im2col_is_pytorchs_rule(shape, kernel, groups, threads):
    """``torch_takes_im2col`` (PyTorch's private kernel choice) says what the profiler shows
    ``F.conv3d`` doing under the running PyTorch, on one thread and two."""
    n, c, t, h = shape
    x, w = torch.randn(n, c, t, h, h), torch.randn(4, c // groups, *kernel)
    with torch_threads(threads), torch.profiler.profile() as prof:
        torch.nn.functional.conv3d(x, w, None, 1, 0, 1, groups)
        predicted = fast.torch_takes_im2col(x, w, [1, 1, 1], [0, 0, 0], groups)
    ops = {e.key for e in prof.key_averages()}
    assert ("aten::slow_conv3d_forward" in ops) == predicted
    assert ("aten::mkldnn_convolution" in ops) != predicted


def test_conv3d_trains_one_clip_on_onednn():
    """With gradients, a clip PyTorch would send to im2col is convolved as two halves of its
    frames, a batch of 2, forward and backward."""
    layer = fast.accelerate(torch.nn.Conv3d(4, 4, 3, padding=1))
    x = torch.randn(1, 4, 4, 9, 9, requires_grad=True)
    with torch.profiler.profile(record_shapes=True) as prof:
        layer(x).sum().backward()
    events = [e for e in prof.events() if e.name in ("aten::mkldnn_convolution",
                                                      "aten::convolution_backward")]
    assert {e.name for e in events} == {"aten::mkldnn_convolution", "aten::convolution_backward"}
    assert all(e.input_shapes[0][0] == 2 for e in events)
    assert "aten::slow_conv3d_forward" not in {e.name for e in prof.events()}


def test_a_pytorch_that_does_not_tell_its_kernel_keeps_the_plain_3d_convolution(monkeypatch):
    """Under a PyTorch without the kernel-choice function the 3D convolutions stay
    ``nn.Conv3d``'s own; the other forms do not depend on it."""
    assert fast.kernel_choice_known()  # the running PyTorch tells
    monkeypatch.delattr(torch._C, "_select_conv_backend")
    fast.kernel_choice_known.cache_clear()
    try:
        assert not fast.kernel_choice_known()
        model = fast.accelerate(build_with_input("msti", classes=5, frames=4, size=32,
                                                 backbone="resnet26")[0])
    finally:
        fast.kernel_choice_known.cache_clear()
    assert not any(isinstance(m, fast.FastConv3d) for m in model.modules())
    assert any(isinstance(m, fast.FastMSTITube) for m in model.modules())


@pytest.mark.parametrize("module", [TemporalShift(16, 8), TemporalConv(16, 8)])
def test_temporal_convolutions_keep_channels_last(module):
    """A channel-wise kernel is contiguous and channels-last at once; read as contiguous, it
    makes PyTorch convert the channels-last frames of one clip and return contiguous ones, so
    the result's layout tells which path ran. The same values as the plain module's."""
    x = torch.randn(8, 16, 5, 6).contiguous(memory_format=torch.channels_last)
    plain = module(x)
    out = fast.accelerate(copy.deepcopy(module))(x)
    assert out.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(out, plain)
