import pytest
import torch

from actionrec.errors import ActionrecError
from actionrec.models.registry import build_model, describe_models


def tiny_tsn(**kw):
    torch.manual_seed(0)
    return build_model("tsn", num_classes=5, num_frames=4, backbone="resnet18", **kw)


def test_average_consensus_ignores_frame_order():
    model = tiny_tsn().eval()
    x = torch.randn(2, 4, 3, 32, 32)
    out = model(x)
    assert out.shape == (2, 5)
    torch.testing.assert_close(model(x.flip(1)), out, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(model.frame_scores(x).mean(1), out)


def test_partial_bn_keeps_all_but_the_first_bn_fixed():
    model = tiny_tsn(partial_bn=True).train()
    bns = [m for m in model.backbone.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert bns[0].training and bns[0].weight.requires_grad
    assert all(not bn.training and not bn.weight.requires_grad for bn in bns[1:])
    before = bns[5].running_mean.clone()
    first = bns[0].running_mean.clone()
    model(torch.randn(2, 4, 3, 32, 32))
    torch.testing.assert_close(bns[5].running_mean, before)
    assert not torch.equal(bns[0].running_mean, first)


def test_frozen_stages():
    model = tiny_tsn(frozen_stages=2).train()
    b = model.backbone
    assert not b.conv1.weight.requires_grad and not b.layer1[0].conv1.weight.requires_grad
    assert b.layer2[0].conv1.weight.requires_grad and model.fc.weight.requires_grad
    assert not b.layer1[0].bn1.training and b.layer2[0].bn1.training


def test_registry_errors_and_listing():
    with pytest.raises(ActionrecError, match="unknown model 'nope'; registered: .*tsn"):
        build_model("nope", num_classes=2, num_frames=2)
    with pytest.raises(ActionrecError, match="model 'tsn' has no option alpha; its options: backbone="):
        build_model("tsn", num_classes=2, num_frames=2, alpha=1)
    assert "partial_bn=False" in describe_models()
