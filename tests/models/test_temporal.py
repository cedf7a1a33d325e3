import pytest
import torch

from actionrec.models.temporal import (
    Conv3d,
    TemporalConv,
    TemporalShift,
    as_clips,
    as_frames,
    conv3d,
    keep_frames,
    temporal_conv,
    torch_takes_im2col,
)
from tests.conftest import torch_threads
from tests.models.same import assert_same_with_gradients


def reference_shift(x, t, fold_div):
    """TSM's definition with slices (Lin et al.'s reference code, written out of place)."""
    nt, c, h, w = x.shape
    x = x.view(nt // t, t, c, h, w)
    fold = c // fold_div
    out = torch.zeros_like(x)
    out[:, :-1, :fold] = x[:, 1:, :fold]
    out[:, 1:, fold : 2 * fold] = x[:, :-1, fold : 2 * fold]
    out[:, :, 2 * fold :] = x[:, :, 2 * fold :]
    return out.view(nt, c, h, w)


@pytest.mark.parametrize("channels_last", [False, True])
def test_shift_is_exactly_tsm(channels_last):
    x = torch.randn(2 * 4, 16, 5, 6)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    out = TemporalShift(16, num_frames=4, fold_div=8)(x)
    assert torch.equal(out, reference_shift(x, 4, 8))
    if channels_last:
        assert out.is_contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize("channelwise", [True, False])
def test_cstm_init_is_a_quarter_shift_each_way(channelwise):
    conv = TemporalConv(16, num_frames=4, channelwise=channelwise)
    x = torch.randn(8, 16, 3, 3)
    out = conv(x).view(2, 4, 16, 3, 3)
    clips = x.view(2, 4, 16, 3, 3)
    torch.testing.assert_close(out[:, 1:, :4], clips[:, :-1, :4])  # [1,0,0]: previous frame
    assert torch.all(out[:, 0, :4] == 0)
    torch.testing.assert_close(out[:, :, 4:12], clips[:, :, 4:12])  # [0,1,0]: unchanged
    torch.testing.assert_close(out[:, :-1, 12:], clips[:, 1:, 12:])  # [0,0,1]: next frame
    assert conv.weight.shape == ((16, 1, 3) if channelwise else (16, 16, 3))


def test_channelwise_conv_matches_conv1d_definition():
    """Eq. 1: reshape to (NHW, C, T) and apply a depthwise Conv1d."""
    conv = TemporalConv(6, num_frames=5)
    with torch.no_grad():
        conv.weight.normal_()
    x = torch.randn(10, 6, 4, 4)
    seq = x.view(2, 5, 6, 4, 4).permute(0, 3, 4, 2, 1).reshape(-1, 6, 5)
    ref = torch.nn.functional.conv1d(seq, conv.weight, padding=1, groups=6)
    ref = ref.view(2, 4, 4, 6, 5).permute(0, 4, 3, 1, 2).reshape(10, 6, 4, 4)
    torch.testing.assert_close(conv(x), ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("batch", [1, 2])
@pytest.mark.parametrize("kernel_shape", [(6, 1, 3), (6, 6, 3), (4, 6, 1)])
def test_temporal_conv_equals_torch_conv3d(batch, kernel_shape):
    """The (k, 1) 2D form against the (k, 1, 1) ``F.conv3d`` on the clip: outputs and the
    gradients of input, kernel and bias (channel-wise, ordinary, and MSTI-Net's k = 1)."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(batch * 5, 6, 7, 9, generator=g).contiguous(memory_format=torch.channels_last)
    kernel, bias = torch.randn(*kernel_shape, generator=g), torch.randn(kernel_shape[0], generator=g)
    groups, pad = 6 // kernel_shape[1], kernel_shape[2] // 2

    def reference(x, kernel, bias):
        out = torch.nn.functional.conv3d(as_clips(x, 5), kernel[..., None, None], bias,
                                         padding=(pad, 0, 0), groups=groups)
        return as_frames(out)

    assert_same_with_gradients(lambda *a: temporal_conv(a[0], a[1], 5, a[2]), reference,
                               (x, kernel, bias))


@pytest.mark.parametrize("module", [TemporalShift(16, 8), TemporalConv(16, 8)])
def test_temporal_conv_keeps_channels_last(module):
    """A channel-wise kernel is contiguous and channels-last at once; read as contiguous, it
    makes PyTorch convert the channels-last frames of one clip and return contiguous ones (20x
    slower in training), so the result's layout tells which path ran."""
    x = torch.randn(8, 16, 5, 6).contiguous(memory_format=torch.channels_last)
    assert module(x).is_contiguous(memory_format=torch.channels_last)


def test_clip_views_are_free_for_channels_last():
    x = torch.randn(6, 8, 4, 4).contiguous(memory_format=torch.channels_last)
    clips = as_clips(x, 3)
    assert clips.shape == (2, 8, 3, 4, 4) and clips.data_ptr() == x.data_ptr()
    assert clips.is_contiguous(memory_format=torch.channels_last_3d)
    back = as_frames(clips)
    assert back.data_ptr() == x.data_ptr() and torch.equal(back, x)


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
        lambda *a: conv3d(*a, stride, padding, groups),
        lambda *a: torch.nn.functional.conv3d(a[0], a[1], a[2], stride, padding, 1, groups), (x, w, b))


def test_conv3d_takes_onednn_on_cpu_and_export_keeps_conv3d():
    """The fast path is taken (the profile shows oneDNN, not slow_conv3d) and an exported graph
    (what ``actionrec export`` writes to ONNX) keeps the plain convolution."""
    x, layer = torch.randn(1, 4, 4, 9, 9), Conv3d(4, 4, 3, padding=1)
    with torch.profiler.profile() as prof:
        layer(x)
    ops = {e.key for e in prof.key_averages()}
    assert "aten::mkldnn_convolution" in ops and "aten::slow_conv3d_forward" not in ops
    graph = str(torch.export.export(layer, (x,)).graph)
    assert "aten.conv3d" in graph and "mkldnn" not in graph


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
    """``torch_takes_im2col`` says what the profiler shows ``F.conv3d`` doing (a PyTorch upgrade
    that changes its rule fails here)."""
    n, c, t, h = shape
    x, w = torch.randn(n, c, t, h, h), torch.randn(4, c // groups, *kernel)
    with torch_threads(threads), torch.profiler.profile() as prof:
        torch.nn.functional.conv3d(x, w, None, 1, 0, 1, groups)
        predicted = torch_takes_im2col(x, w, [1, 1, 1], groups)
    ops = {e.key for e in prof.key_averages()}
    assert ("aten::slow_conv3d_forward" in ops) == predicted
    assert ("aten::mkldnn_convolution" in ops) != predicted


def test_conv3d_trains_one_clip_on_onednn():
    """With gradients, a clip PyTorch would send to im2col is convolved as two halves of its
    frames, a batch of 2, forward and backward."""
    layer = Conv3d(4, 4, 3, padding=1)
    x = torch.randn(1, 4, 4, 9, 9, requires_grad=True)
    with torch.profiler.profile(record_shapes=True) as prof:
        layer(x).sum().backward()
    events = [e for e in prof.events() if e.name in ("aten::mkldnn_convolution",
                                                      "aten::convolution_backward")]
    assert {e.name for e in events} == {"aten::mkldnn_convolution", "aten::convolution_backward"}
    assert all(e.input_shapes[0][0] == 2 for e in events)
    assert "aten::slow_conv3d_forward" not in {e.name for e in prof.events()}


def test_keep_frames_keeps_every_stride_th_frame_of_each_clip():
    frames = torch.arange(2 * 4.0).view(8, 1, 1, 1).expand(8, 3, 2, 2)
    assert keep_frames(frames, 4, 2)[:, 0, 0, 0].tolist() == [0, 2, 4, 6]
    assert keep_frames(frames, 4, 1) is frames
