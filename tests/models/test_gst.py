import random

import pytest
import torch
import torch.nn.functional as F

from actionrec.analysis.paper import build, rows_from
from actionrec.models.gst import C3DConv, GSTConv, P3DConv
from actionrec.models.pretrained import load_pretrained
from actionrec.models.registry import build_model
from actionrec.models.resnet import ResNet
from actionrec.report.flops import count_macs, count_params
from tests.models.same import assert_same_with_gradients


@pytest.mark.parametrize("row", rows_from("GST Table 2", checked=True), ids=lambda r: r.label)
def test_table_2_params_within_1_percent(row):
    """GST Table 2 (ResNet-50, 174 classes, 8 frames), rows in actionrec/analysis/paper.py."""
    with torch.device("meta"):  # counting needs shapes only
        model, _ = build(row)
    assert count_params(model) / 1e6 == pytest.approx(row.params_m, rel=0.01)


def test_plain_readings_of_c3d_and_p3d():
    """The paper prints 42.5M and 29.4M; the plain readings (docstring of gst.py) give these."""
    c3d = count_params(build_model("c3d", num_classes=174, num_frames=8)) / 1e6
    p3d = count_params(build_model("p3d", num_classes=174, num_frames=8)) / 1e6
    assert c3d == pytest.approx(46.50, abs=0.01) and p3d == pytest.approx(27.65, abs=0.01)


@pytest.mark.parametrize("row", [r for r in rows_from("GST", checked=True) if r.gmacs], ids=lambda r: r.label)
def test_table_3_macs_within_2_percent(row):
    with torch.device("meta"):
        model, clip = build(row)
    assert count_macs(model, clip) / 1e9 == pytest.approx(row.gmacs, rel=0.02)


def conv_params(module):
    return sum(p.numel() for n, p in module.named_parameters() if "bn" not in n)


@pytest.mark.parametrize("seed", range(6))
def test_table_1_formulas(seed):
    rng = random.Random(seed)
    ci, co = 8 * rng.randint(1, 16), 8 * rng.randint(1, 16)
    alpha = rng.choice([0.5, 0.25, 0.125])
    h = w = t = 3
    assert conv_params(torch.nn.Conv2d(ci, co, 3, bias=False)) == h * w * ci * co  # C2D
    assert conv_params(C3DConv(ci, co, 1, 4)) == t * h * w * ci * co
    assert conv_params(C3DConv(ci, co, 1, 4, groups=2)) == t * h * w * ci * co / 2
    assert conv_params(P3DConv(ci, ci, 1, 4)) == (h * w + t) * ci * ci  # C_i = C_o
    large = (1 - alpha + alpha * t) * h * w * ci * co
    assert conv_params(GSTConv(ci, co, 1, 4, alpha=alpha, beta=1.0)) == pytest.approx(large)
    assert conv_params(GSTConv(ci, co, 1, 4, alpha=alpha)) == pytest.approx(large / 2)


@pytest.mark.parametrize("backbone", ["resnet18", "resnet34", "resnet50", "resnet101"])
def test_alpha_and_beta_reach_every_depth(backbone):
    model = build_model("gst", num_classes=5, num_frames=4, backbone=backbone, alpha=0.125)
    gst = [m for m in model.modules() if isinstance(m, GSTConv)]
    n_3x3 = {"resnet18": 16, "resnet34": 32, "resnet50": 16, "resnet101": 33}[backbone]
    assert len(gst) == n_3x3
    assert all(m.temporal_out == max(1, round((m.temporal_out + m.spatial_out) / 8)) for m in gst)
    spatial = {id(m.spatial) for m in gst}
    plain_3x3 = [n for n, m in model.backbone.named_modules() if isinstance(m, torch.nn.Conv2d)
                 and m.kernel_size == (3, 3) and id(m) not in spatial]
    assert not plain_3x3  # every 3x3 conv became a GST module


def test_spatial_and_temporal_paths_see_their_channel_groups():
    conv = GSTConv(8, 8, 1, num_frames=2, alpha=0.25).eval()
    x = torch.randn(4, 8, 5, 5)
    base = conv(x)
    x2 = x.clone()
    x2[:, 4:] += 1.0  # only the temporal group's inputs change
    out = conv(x2)
    torch.testing.assert_close(out[:, :6], base[:, :6])  # spatial outputs untouched
    assert (out[:, 6:] - base[:, 6:]).abs().max() > 1e-3
    assert conv(x[:2].repeat(2, 1, 1, 1)).shape == (4, 8, 5, 5)


@pytest.mark.parametrize("stride", [1, 2])
def test_gst_conv_equals_eq_2_with_gradients(stride):
    """The module (split channels, oneDNN forms) against Eq. 2 written with slices, ``F.conv2d``
    and ``F.conv3d``: outputs and the gradients of input and both kernels, one channels-last clip."""
    torch.manual_seed(0)
    conv = GSTConv(8, 8, stride, num_frames=4)
    x = torch.randn(4, 8, 6, 6).contiguous(memory_format=torch.channels_last)

    def reference(x, ws, wt):
        s = F.conv2d(x[:, :4], ws, stride=stride, padding=1)
        clip = x[:, 4:].unflatten(0, (1, 4)).transpose(1, 2)
        t = F.conv3d(clip, wt, stride=(1, stride, stride), padding=1)
        return torch.cat([s, t.transpose(1, 2).flatten(0, 1)], 1)

    def ours(x, ws, wt):
        return torch.func.functional_call(conv, {"spatial.weight": ws, "temporal.weight": wt}, (x,))

    assert_same_with_gradients(ours, reference, (x, conv.spatial.weight, conv.temporal.weight))


def test_stride_is_spatial_only():
    model = build_model("gst", num_classes=5, num_frames=4, backbone="resnet18")
    scores = model.frame_scores(torch.randn(2, 4, 3, 64, 64))
    assert scores.shape == (2, 4, 5)  # per-frame scores kept for analysis (Fig. 5)


def test_output_depends_on_frame_order_c2d_does_not():
    torch.manual_seed(0)
    x = torch.randn(2, 4, 3, 32, 32)
    for name, changes in (("gst", True), ("c3d", True), ("p3d", True), ("c2d", False)):
        model = build_model(name, num_classes=5, num_frames=4, backbone="resnet18").eval()
        with torch.no_grad():
            diff = (model(x) - model(x.flip(1))).abs().max().item()
        assert (diff > 1e-3) if changes else (diff < 1e-5), (name, diff)


@pytest.mark.parametrize("name,options", [("gst", {}), ("gst_large", {}), ("c3d", {"groups": 2}),
                                          ("p3d", {})])
def test_imagenet_init(name, options):
    imagenet = ResNet(50, num_classes=1000).state_dict()
    model = build_model(name, num_classes=174, num_frames=8, **options)
    report = load_pretrained(model.backbone, imagenet)
    assert not report.mismatched and set(report.unexpected) == {"fc.weight", "fc.bias"}
    block = model.backbone.layer3[2].conv2
    w2d = imagenet["layer3.2.conv2.weight"]
    if name.startswith("gst"):
        assert all(".temporal." in k for k in report.missing)  # only the temporal path is new
        spatial_slice = w2d[: block.spatial_out, : block.spatial.in_channels]
        torch.testing.assert_close(block.spatial.weight, spatial_slice)
    elif name == "c3d":
        assert not report.missing
        out_half, in_half = w2d.shape[0] // 2, w2d.shape[1] // 2
        torch.testing.assert_close(block.conv.weight[out_half:, :, 1], w2d[out_half:, in_half:] / 3)
    else:
        assert all(".temporal." in k or ".conv2.bn." in k for k in report.missing)
        torch.testing.assert_close(block.spatial.weight, w2d)
