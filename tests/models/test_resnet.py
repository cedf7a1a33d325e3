import pytest
import torch

from actionrec.models.resnet import ResNet, resnet

# torchvision's ImageNet ResNets: parameters and state-dict entries
TORCHVISION = {18: (11_689_512, 122), 34: (21_797_672, 218), 50: (25_557_032, 320),
               101: (44_549_160, 626), 152: (60_192_808, 932)}


@pytest.mark.parametrize("depth", sorted(TORCHVISION))
def test_matches_torchvision_sizes_and_keys(depth):
    model = resnet(f"resnet{depth}", num_classes=1000)
    params, entries = TORCHVISION[depth]
    assert sum(p.numel() for p in model.parameters()) == params
    state = model.state_dict()
    assert len(state) == entries
    assert {"conv1.weight", "bn1.running_var", "layer1.0.conv1.weight", "layer2.0.downsample.0.weight",
            "layer2.0.downsample.1.num_batches_tracked", "layer4.1.bn2.bias", "fc.weight"} <= set(state)
    assert state["fc.weight"].shape == (1000, 512 if depth < 50 else 2048)
    if depth >= 50:
        assert state["layer1.0.conv3.weight"].shape == (256, 64, 1, 1)
        assert state["layer2.0.conv2.weight"].shape == (128, 128, 3, 3)  # stride in the 3x3 (v1.5)


def test_features_and_shapes():
    model = ResNet(18).eval()
    x = torch.randn(2, 3, 64, 64)
    assert model.forward_features(x).shape == (2, 512, 2, 2)
    assert model(x).shape == (2, 512) and model.fc is None
    assert ResNet(18, in_channels=15)(torch.randn(1, 15, 64, 64)).shape == (1, 512)


def test_unknown_depth():
    with pytest.raises(ValueError, match="unknown backbone 'resnet42'"):
        resnet("resnet42")
