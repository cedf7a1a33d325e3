import pytest
import torch
import torch.nn.functional as F

from actionrec.analysis.paper import build, rows_for
from actionrec.errors import ActionrecError
from actionrec.models.msti import (
    CrossScaleAttention,
    MSTITube,
    SteppedConv,
    TemporalConv2d,
    clip_average,
)
from actionrec.models.pretrained import load_pretrained
from actionrec.models.registry import build_model
from actionrec.models.resnet import ResNet
from actionrec.models.temporal import as_clips, as_frames
from actionrec.report.flops import count_macs, count_params
from tests.conftest import calibrate_norms
from tests.helpers import randomised
from tests.models.same import assert_same_with_gradients

# Table 3: MSTI-Net (ResNet-50, 16x224x224, Kinetics-400): 16.4M params, 46.3 GFLOPs (MACs).
(TABLE_3,) = rows_for("msti")


def test_params_within_10_percent_of_table_3():
    """Reading 3 of msti.py: one set of CAW weights per branch; per-group weights give +12 %."""
    with torch.device("meta"):  # counting needs shapes only
        assert count_params(build(TABLE_3)[0]) / 1e6 == pytest.approx(TABLE_3.params_m, rel=0.10)
        per_group = count_params(build(TABLE_3, shared_caw=False)[0]) / 1e6
    assert per_group == pytest.approx(18.38, abs=0.01)


def test_macs_within_10_percent_of_table_3_only_at_16_frames_throughout():
    """Reading 5: Table 1's 8-frame stages give 24.7 GMACs; the paper's 46.3 matches the network
    without the (2, 1, 1) stride (43.7). Both are asserted so that a change to either shows."""
    with torch.device("meta"):
        table1 = count_macs(*build(TABLE_3)) / 1e9
        no_stride = count_macs(*build(TABLE_3, temporal_stride=1)) / 1e9
    assert table1 == pytest.approx(24.68, abs=0.01)
    assert no_stride == pytest.approx(TABLE_3.gmacs, rel=0.10)


@pytest.mark.parametrize("variant,spatial_convs,temporal_convs,caw", [
    ("p3d_b", 1, 1, False), ("ms_t", 1, 4, False), ("ms_s", 4, 1, False), ("ms_st", 4, 4, False),
    ("msti", 4, 4, True)])
def test_table_2_variants(variant, spatial_convs, temporal_convs, caw):
    tube = MSTITube(64, num_frames=8, variant=variant)
    assert len(tube.spatial.convs) == spatial_convs and len(tube.temporal.convs) == temporal_convs
    assert (tube.spatial_caw is not None) == caw
    x = torch.randn(16, 64, 6, 6)
    assert tube(x).shape == x.shape


def test_unknown_variant_is_a_clear_error():
    with pytest.raises(ActionrecError, match="variant must be one of p3d_b, ms_t, ms_s, ms_st, msti"):
        build_model("msti", num_classes=4, num_frames=16, variant="ms")


def _impulse_response(branch: SteppedConv, x: torch.Tensor) -> list[torch.Tensor]:
    with torch.no_grad():
        for conv in branch.convs:
            conv[0].weight.uniform_(0.1, 1.0)  # positive: ReLU keeps every reached position
        return [o.abs().sum(1) for o in branch.eval()(x)]


def test_stepped_spatial_branch_has_receptive_fields_1_3_5_7():
    """Eq. 1: S_i = K_i(X_i + S_{i-1}); an impulse in every group spreads 2 more pixels per step."""
    x = torch.zeros(1, 8, 9, 9)
    x[0, :, 4, 4] = 1.0
    outs = _impulse_response(SteppedConv(8, (1, 3, 3), num_frames=1), x)
    for i, out in enumerate(outs):
        rows = (out[0].sum(1) > 0).nonzero().flatten()
        assert rows.tolist() == list(range(4 - i, 5 + i)), i


def test_stepped_temporal_branch_has_receptive_fields_1_3_5_7():
    """Eq. 2 over time: an impulse at frame 4 of 9 reaches frames 4 +- (i - 1) in group i."""
    x = torch.zeros(9, 8, 2, 2)  # one clip of 9 frames
    x[4] = 1.0
    outs = _impulse_response(SteppedConv(8, (3, 1, 1), num_frames=9), x)
    for i, out in enumerate(outs):
        frames = (out.sum((1, 2)) > 0).nonzero().flatten()
        assert frames.tolist() == list(range(4 - i, 5 + i)), i


def test_temporal_conv2d_is_the_3x1x1_conv3d():
    torch.manual_seed(0)
    conv = TemporalConv2d(4, 6, 3, num_frames=5)
    x = torch.randn(10, 8, 3, 3)[:, 2:6]  # a channel slice, as the tube's groups are
    reference = as_frames(F.conv3d(as_clips(x, 5), conv.weight[..., None], padding=(1, 0, 0)))
    torch.testing.assert_close(conv(x), reference)


@pytest.mark.parametrize("shared", [True, False])
def test_caw_equals_eq_4_to_7_at_full_resolution(shared):
    """The pooled form equals Eq. 4-7 computed literally: three 1x1x1 convs on the full maps,
    global average pooling, FC, sigmoid, channel-wise re-weighting."""
    torch.manual_seed(0)
    caw = CrossScaleAttention(6, num_frames=4, shared=shared)
    own = [torch.randn(8, 6, 5, 5) for _ in range(4)]  # 2 clips of 4 frames
    other = [torch.randn(8, 6, 5, 5) for _ in range(4)]

    def conv(layer, x):  # the linear layer as the 1x1x1 conv of Eq. 4
        return F.conv3d(as_clips(x, 4), layer.weight[..., None, None, None])

    expected, previous = [], None
    for i in range(4):
        k = 0 if shared else i
        u = conv(caw.own[k], own[i]) + conv(caw.other[k], other[i])
        if previous is not None:
            u = u + conv(caw.previous[0 if shared else i - 1], previous)
        a = torch.sigmoid(caw.fc[k](u.mean((2, 3, 4))))  # Eq. 5-6
        previous = own[i] * a.repeat_interleave(4, 0)[:, :, None, None]  # Eq. 7
        expected.append(previous)
    pooled = [[clip_average(x, 4) for x in groups] for groups in (own, other)]
    for x, a, want in zip(own, caw(*pooled), expected, strict=True):
        torch.testing.assert_close(x * a, want)


@pytest.mark.parametrize("layout", [torch.channels_last, torch.contiguous_format])
def test_tube_sums_eq_8_as_written(layout):
    """The tube's Eq. 8 against ``concat(a_i S_i) + concat(b_i T_i)`` written out from its
    parts: without autograd, and outputs and the gradients of the input with it."""
    torch.manual_seed(0)
    tube = randomised(MSTITube(32, num_frames=4)).eval()
    x = torch.randn(8, 32, 6, 6).contiguous(memory_format=layout)  # 2 clips of 4 frames

    def reference(x):
        s, t = tube.spatial(x), tube.temporal(x)
        ps, pt = ([clip_average(g, 4) for g in groups] for groups in (s, t))
        a, b = tube.spatial_caw(ps, pt), tube.temporal_caw(pt, ps)
        return (torch.cat([si * ai for si, ai in zip(s, a, strict=True)], 1)
                + torch.cat([ti * bi for ti, bi in zip(t, b, strict=True)], 1))

    with torch.no_grad():
        torch.testing.assert_close(tube(x), reference(x), rtol=1e-5, atol=1e-5)
    assert_same_with_gradients(tube, reference, (x,))


def test_output_depends_on_frame_order_and_the_spatial_only_control_does_not():
    torch.manual_seed(0)
    clip = torch.randn(2, 8, 3, 32, 32)
    reversed_clip = clip.flip(1)
    # temporal stride 1: keeping every second frame would differ under reversal by itself
    small = {"num_classes": 5, "num_frames": 8, "backbone": "resnet26", "temporal_stride": 1}
    model = build_model("msti", **small)
    control = build_model("msti", **small, temporal_kernel=1)
    for m in (model, control):  # trained-like BN: the zero-initialised bn3 would hide every tube
        torch.nn.init.normal_(m.fc.weight)
        calibrate_norms(m, torch.randn(4, 8, 3, 32, 32))
    with torch.no_grad():
        logits = model(clip)
        scale = logits.abs().max()
        assert (logits - model(reversed_clip)).abs().max() > 1e-2 * scale
        torch.testing.assert_close(control(clip), control(reversed_clip), atol=1e-5 * scale,
                                   rtol=1e-4)
        # the tubes are seen: their temporal branches alone move the logits
        for tube in (m for m in model.modules() if isinstance(m, MSTITube)):
            for conv in tube.temporal.convs:
                conv[0].weight.zero_()
        assert (logits - model(clip)).abs().max() > 1e-2 * scale


def test_imagenet_weights_inflate_into_the_trunk_and_the_tube_starts_random():
    torch.manual_seed(0)
    imagenet = ResNet(50, num_classes=1000).state_dict()
    model = build_model("msti", num_classes=10, num_frames=8)
    report = load_pretrained(model.backbone, imagenet)
    assert report.adapted == ["conv1.weight"]  # 7x7 -> 3x7x7, I3D-style
    assert "layer1.0.conv1.weight" in report.loaded and "layer4.2.bn3.weight" in report.loaded
    assert "layer2.0.downsample.0.weight" in report.loaded
    assert sorted({k.split(".")[2] for k in report.unexpected if k.startswith("layer")}) == \
        ["bn2", "conv2"]  # the 3x3 convs the tube replaces
    assert report.missing and all(".tube." in k for k in report.missing)
    torch.testing.assert_close(model.backbone.layer3[1].conv3.weight,
                               imagenet["layer3.1.conv3.weight"])
    # a static clip: the inflated conv1 gives the 2D conv1's response on the inner frames
    frame = torch.randn(1, 3, 32, 32)
    clip = frame.expand(8, -1, -1, -1)
    with torch.no_grad():
        out = model.backbone.conv1(clip)
        torch.testing.assert_close(out[3], F.conv2d(frame, imagenet["conv1.weight"], stride=2,
                                                    padding=3)[0], rtol=1e-4, atol=1e-4)


def test_grad_cam_gives_a_map_per_frame_of_conv5():
    from actionrec.analysis.cam import grad_cam

    torch.manual_seed(0)
    model = build_model("msti", num_classes=3, num_frames=8, backbone="resnet26")
    maps, k = grad_cam(model, torch.randn(8, 3, 64, 64), class_index=1)
    assert maps.shape == (4, 2, 2) and k == 1  # 8 frames -> 4 after the temporal stride
    assert maps.max() == pytest.approx(1.0)
