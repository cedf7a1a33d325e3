import pytest
import torch

from actionrec.analysis.paper import build, rows_from
from actionrec.models.pretrained import load_pretrained
from actionrec.models.registry import build_model
from actionrec.models.resnet import ResNet
from actionrec.models.stm import CMM, STMBottleneck
from actionrec.report.flops import count_macs, count_params


@pytest.mark.parametrize("row", rows_from("STM", checked=True), ids=lambda r: r.label)
def test_paper_params_and_macs_within_1_percent(row):
    """STM Tables 8-9 (Something-Something v1), rows in actionrec/analysis/paper.py."""
    with torch.device("meta"):  # counting needs shapes only
        model, clip = build(row)
    assert count_params(model) / 1e6 == pytest.approx(row.params_m, rel=0.01)
    assert count_macs(model, clip) / 1e9 == pytest.approx(row.gmacs, rel=0.01)


def reference_cmm(cmm, x, t, stride):
    """Eq. 2 written frame by frame: H_t = K * F_{t+1} - F_t, zero for the last frame; in a
    stride-s block the restored motion max-pooled s x s (the authors' STM.py)."""
    f = cmm.bn(cmm.reduce(x))
    n = x.shape[0] // t
    out = []
    for clip in f.view(n, t, *f.shape[1:]):
        for i in range(t):
            if i == t - 1:
                h = torch.zeros_like(cmm.motion(clip[i : i + 1]))
            else:
                h = cmm.motion(clip[i + 1 : i + 2]) - clip[i : i + 1]
            out.append(h)
    restored = cmm.restore(torch.cat(out))
    return restored if stride == 1 else torch.nn.functional.max_pool2d(restored, stride, ceil_mode=True)


@pytest.mark.parametrize("stride,channels_last,size", [
    (1, False, 8), (2, False, 8), (1, True, 8), (2, True, 8), (2, False, 7)])
def test_cmm_matches_equation_2(stride, channels_last, size):
    torch.manual_seed(0)
    cmm = CMM(32, 48, num_frames=4, stride=stride).eval()
    x = torch.randn(8, 32, size, size)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    ref = reference_cmm(cmm, x, 4, stride)
    with torch.no_grad():
        torch.testing.assert_close(cmm(x), ref, rtol=1e-4, atol=1e-5)
        base = torch.randn_like(ref).contiguous(memory_format=torch.channels_last)
        torch.testing.assert_close(cmm(x, add_to=base.clone()), base + ref, rtol=1e-4, atol=1e-5)
    side = -(-size // stride)  # the strided 3x3 conv's output size, odd sizes included
    assert ref.shape == (8, 48, side, side)


def test_output_depends_on_frame_order():
    torch.manual_seed(0)
    model = build_model("stm", num_classes=5, num_frames=4, backbone="resnet18").eval()
    x = torch.randn(2, 4, 3, 32, 32)
    with torch.no_grad():
        assert (model(x) - model(x.flip(1))).abs().max() > 1e-3


@pytest.mark.parametrize("options,stm_blocks", [
    ({}, 16),
    ({"stages": [2, 3, 4, 5], "blocks": "first"}, 4),
    ({"stages": [4], "blocks": "first"}, 1),
    ({"stages": [5]}, 3),
])
def test_block_placement_table_7(options, stm_blocks):
    model = build_model("stm", num_classes=5, num_frames=8, **options)
    blocks = [m for m in model.modules() if isinstance(m, STMBottleneck)]
    assert len(blocks) == stm_blocks


def test_module_and_fusion_options():
    cstm = build_model("stm", num_classes=5, num_frames=8, modules="cstm")
    cmm = build_model("stm", num_classes=5, num_frames=8, modules="cmm")
    concat = build_model("stm", num_classes=5, num_frames=8, fusion="concat")
    block = cstm.backbone.layer1[0]
    assert block.cmm is None and block.temporal is not None
    assert cmm.backbone.layer1[0].temporal is None and cmm.backbone.layer1[0].cmm is not None
    assert concat.backbone.layer3[0].fuse.weight.shape == (256, 512, 1, 1)  # 2C -> C
    from actionrec.errors import ActionrecError

    with pytest.raises(ActionrecError, match="fusion=concat needs both modules"):
        build_model("stm", num_classes=5, num_frames=8, modules="cstm", fusion="concat")
    with pytest.raises(ActionrecError, match="stages are the paper's 2..5"):
        build_model("stm", num_classes=5, num_frames=8, stages=[1])


def test_imagenet_init_loads_every_2d_weight():
    imagenet = ResNet(50, num_classes=1000).state_dict()
    model = build_model("stm", num_classes=174, num_frames=8)
    report = load_pretrained(model.backbone, imagenet)
    assert not report.mismatched and set(report.unexpected) == {"fc.weight", "fc.bias"}
    new = {k.split(".")[2] for k in report.missing}
    assert new == {"temporal", "cmm"}, report.missing[:5]
    assert len(report.loaded) == len(imagenet) - 2
    torch.testing.assert_close(model.backbone.layer2[0].conv2.weight, imagenet["layer2.0.conv2.weight"])
    # the new temporal convs keep the paper's init
    assert model.backbone.layer1[0].temporal.weight[0, 0].tolist() == [1.0, 0.0, 0.0]
