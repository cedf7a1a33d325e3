import pytest
import torch

from actionrec.models.temporal import (
    TemporalConv,
    TemporalShift,
    as_clips,
    as_frames,
    keep_frames,
    temporal_conv,
)
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

    assert_same_with_gradients(lambda *a: temporal_conv(a[0], a[1][..., None], 5, a[2]), reference,
                               (x, kernel, bias))


def test_clip_views_are_free_for_channels_last():
    x = torch.randn(6, 8, 4, 4).contiguous(memory_format=torch.channels_last)
    clips = as_clips(x, 3)
    assert clips.shape == (2, 8, 3, 4, 4) and clips.data_ptr() == x.data_ptr()
    assert clips.is_contiguous(memory_format=torch.channels_last_3d)
    back = as_frames(clips)
    assert back.data_ptr() == x.data_ptr() and torch.equal(back, x)


def test_keep_frames_keeps_every_stride_th_frame_of_each_clip():
    frames = torch.arange(2 * 4.0).view(8, 1, 1, 1).expand(8, 3, 2, 2)
    assert keep_frames(frames, 4, 2)[:, 0, 0, 0].tolist() == [0, 2, 4, 6]
    assert keep_frames(frames, 4, 1) is frames
