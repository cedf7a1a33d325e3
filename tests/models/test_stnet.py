import pytest
import torch

from actionrec.analysis.paper import build, rows_from
from actionrec.errors import ActionrecError
from actionrec.models.heads import TemporalXception
from actionrec.models.pretrained import load_pretrained
from actionrec.models.registry import build_model
from actionrec.models.resnet import ResNet
from actionrec.models.stnet import TemporalBlock
from actionrec.report.flops import count_macs, count_params


@pytest.mark.parametrize("row", rows_from("StNet Table 3", checked=True), ids=lambda r: r.label)
def test_paper_params_and_macs_within_1_percent(row):
    """Table 3: 400 classes, T=25 super-images of 15 channels at 256x256."""
    with torch.device("meta"):  # counting needs shapes only
        model, clip = build(row)
    assert clip.shape == (1, 25 * 5, 3, 256, 256)
    assert count_params(model) / 1e6 == pytest.approx(row.params_m, rel=0.01)
    assert count_macs(model, clip) / 1e9 == pytest.approx(row.gmacs, rel=0.01)


@pytest.mark.parametrize("row", rows_from("StNet Table 1", checked=True), ids=lambda r: r.label)
def test_table_1_heads_within_2_percent(row):
    """TXB, LSTM, GRU on 25 x 1536-d features, 400 classes."""
    model, features = build(row)
    assert count_params(model) / 1e6 == pytest.approx(row.params_m, rel=0.02)
    assert model(torch.randn(2, *features.shape[1:])).shape == (2, 400)


def test_ordinary_temporal_conv_head_as_described():
    model = build_model("temporal_conv", num_classes=400, num_frames=25, in_features=1536)
    assert count_params(model) / 1e6 == pytest.approx(8.28, abs=0.01)  # paper prints 9.6M


@pytest.mark.parametrize("ablation", [{"bn": False}, {"channelwise": False}, {"temporalwise": False},
                                      {"short": False}, {"long": False}])
def test_txb_ablations(ablation):
    full = TemporalXception(64, 32)
    ablated = TemporalXception(64, 32, **ablation)
    assert count_params(ablated) < count_params(full)
    assert ablated(torch.randn(3, 7, 64)).shape == (3, 32)
    with pytest.raises(ValueError, match="needs the short branch, the long branch or both"):
        TemporalXception(64, 32, short=False, long=False)


def test_txb_long_branch_has_receptive_field_5():
    txb = TemporalXception(4, 4, short=False).eval()
    txb.long[3] = torch.nn.Identity()  # the convolutions' reach, without ReLU cutting paths
    x = torch.zeros(1, 9, 4)
    base = txb.long(txb.bn_in(x.transpose(1, 2)))
    x[0, 0] = 1.0
    changed = (txb.long(txb.bn_in(x.transpose(1, 2))) - base).abs().sum(1)[0]
    assert changed[:3].gt(0).all() and changed[3:].eq(0).all()  # frames 0..2 see frame 0


def test_temporal_block_init_and_residual():
    block = TemporalBlock(8, num_frames=3).eval()
    assert torch.all(block.conv.weight == 1 / 24) and torch.all(block.conv.bias == 0)
    x = torch.randn(6, 8, 2, 2)
    out = block(x)
    clips = x.view(2, 3, 8, 2, 2)
    window = torch.nn.functional.pad(clips, (0, 0, 0, 0, 0, 0, 1, 1)).unfold(1, 3, 1)
    average = window.sum((-1, 2), keepdim=False) / 24  # mean over channels and the 3 frames
    expected = clips + torch.relu(average)[:, :, None]
    torch.testing.assert_close(out, expected.view(6, 8, 2, 2), rtol=1e-4, atol=1e-5)


def test_super_image_conv1_from_imagenet():
    imagenet = ResNet(50, num_classes=1000).state_dict()
    model = build_model("stnet", num_classes=400, num_frames=7)
    report = load_pretrained(model.backbone, imagenet)
    assert report.adapted == ["conv1.weight"] and not report.missing and not report.mismatched
    torch.testing.assert_close(model.backbone.conv1.weight[:, 3:6], imagenet["conv1.weight"] / 5)


def test_table_2_variants_and_order_sensitivity():
    torch.manual_seed(0)
    x = torch.randn(2, 4 * 5, 3, 32, 32)
    for options, order_matters in (({"n": 1, "temporal_blocks": False, "head": "avg"}, False),
                                   ({"temporal_blocks": False, "head": "avg"}, True),
                                   ({"head": "avg"}, True), ({}, True)):
        model = build_model("stnet", num_classes=5, num_frames=4, backbone="resnet18",
                            **options).eval()
        clip = x[:, : model.input_frames]
        with torch.no_grad():
            diff = (model(clip) - model(clip.flip(1))).abs().max().item()
        assert (diff > 1e-4) if order_matters else (diff < 1e-5), (options, diff)
    with pytest.raises(ActionrecError, match="head must be txb or avg"):
        build_model("stnet", num_classes=5, num_frames=4, head="lstm")


@pytest.mark.parametrize("head", ["txb", "avg"])
def test_fc_init_follows_the_reference_code(head):
    """U(-1/sqrt(C), 1/sqrt(C)) with C the backbone's pooled width, bias 0 (stnet.py)."""
    torch.manual_seed(0)
    model = build_model("stnet", num_classes=50, num_frames=2, head=head)
    bound = 2048 ** -0.5
    w = model.fc.weight
    assert model.fc.in_features == (1024 if head == "txb" else 2048)
    assert not model.fc.bias.any() and w.abs().max() <= bound
    assert w.std().item() == pytest.approx(bound / 3 ** 0.5, rel=0.05)  # uniform, not N(0, 0.001)
