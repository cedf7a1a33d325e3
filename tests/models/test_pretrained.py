import pickle

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from actionrec.errors import CheckpointError
from actionrec.models.pretrained import inflate_channels, inflate_time, load_pretrained, read_weights
from actionrec.models.resnet import ResNet
from actionrec.models.tsn import TSN
from tests.helpers import Payload


@pytest.fixture(scope="module")
def imagenet_r18():
    """What torchvision's resnet18 ImageNet file holds: same keys, shapes, 1000-class fc."""
    torch.manual_seed(0)
    return ResNet(18, num_classes=1000).state_dict()


def test_pth_and_safetensors_load_into_backbone(tmp_path, imagenet_r18):
    torch.save(imagenet_r18, tmp_path / "r18.pth")
    save_file({k: v.contiguous() for k, v in imagenet_r18.items()}, tmp_path / "r18.safetensors")
    for name in ("r18.pth", "r18.safetensors"):
        model = TSN(num_classes=7, num_frames=4, backbone="resnet18")
        report = load_pretrained(model.backbone, tmp_path / name)
        assert set(report.unexpected) == {"fc.weight", "fc.bias"}  # the ImageNet head is not ours
        assert not report.missing and not report.mismatched
        torch.testing.assert_close(model.backbone.layer3[1].conv2.weight,
                                   imagenet_r18["layer3.1.conv2.weight"])
        torch.testing.assert_close(model.backbone.bn1.running_mean, imagenet_r18["bn1.running_mean"])


def test_head_of_another_size_is_skipped_and_wrappers_unwrapped(tmp_path, imagenet_r18):
    wrapped = {"state_dict": {f"module.{k}": v for k, v in imagenet_r18.items()}, "epoch": 3}
    torch.save(wrapped, tmp_path / "wrapped.pth")
    model = ResNet(18, num_classes=10)
    report = load_pretrained(model, tmp_path / "wrapped.pth")
    assert report.mismatched == ["fc.weight (1000, 512)->(10, 512)", "fc.bias (1000,)->(10,)"]
    assert report.missing == ["fc.weight", "fc.bias"]
    assert "shape mismatch (skipped) 2" in report.summary()
    torch.testing.assert_close(model.conv1.weight, imagenet_r18["conv1.weight"])


def test_conv1_inflated_to_stacked_frames(imagenet_r18):
    model = ResNet(18, in_channels=15)  # 5 stacked RGB frames
    report = load_pretrained(model, imagenet_r18)
    assert report.adapted == ["conv1.weight"]
    frame = torch.randn(1, 3, 32, 32)
    ref = nn.functional.conv2d(frame, imagenet_r18["conv1.weight"], stride=2, padding=3)
    stacked = nn.functional.conv2d(frame.repeat(1, 5, 1, 1), model.conv1.weight, stride=2, padding=3)
    torch.testing.assert_close(stacked, ref, rtol=1e-4, atol=1e-4)


def test_inflate_time_keeps_static_response():
    w2d = torch.randn(8, 4, 3, 3)
    w3d = inflate_time(w2d, 3)
    assert w3d.shape == (8, 4, 3, 3, 3)
    frame = torch.randn(1, 4, 10, 10)
    clip = frame[:, :, None].repeat(1, 1, 5, 1, 1)
    out3d = nn.functional.conv3d(clip, w3d, padding=(0, 1, 1))
    out2d = nn.functional.conv2d(frame, w2d, padding=1)
    torch.testing.assert_close(out3d[:, :, 1], out2d, rtol=1e-4, atol=1e-5)
    assert inflate_channels(w2d, 2).shape == (8, 8, 3, 3)


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_malicious_pickle_is_refused_without_running(tmp_path):
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pth"
    torch.save({"conv1.weight": torch.zeros(1), "x": Payload(marker)}, evil)
    with pytest.raises(CheckpointError, match="evil.pth: refused: the file holds pickled objects"):
        read_weights(evil)
    assert not marker.exists()
    plain = tmp_path / "plain.pkl"
    plain.write_bytes(pickle.dumps(Payload(marker)))
    with pytest.raises(CheckpointError, match="refused"):
        read_weights(plain)
    assert not marker.exists()
    pickle.loads(plain.read_bytes())  # the payload is real: a plain unpickler runs it
    assert marker.exists()


def test_unreadable_files(tmp_path):
    with pytest.raises(CheckpointError, match="nope.pth: checkpoint not found"):
        read_weights(tmp_path / "nope.pth")
    (tmp_path / "junk.safetensors").write_bytes(b"junk" * 10)
    with pytest.raises(CheckpointError, match="junk.safetensors: not a readable safetensors"):
        read_weights(tmp_path / "junk.safetensors")
    torch.save([1, 2, 3], tmp_path / "list.pth")
    with pytest.raises(CheckpointError, match="expected a dict of tensors"):
        read_weights(tmp_path / "list.pth")


def test_weights_that_are_not_finite_floats_are_refused_and_nothing_loads(imagenet_r18):
    model = ResNet(18, in_channels=15)  # conv1 is inflated: an int kernel divided becomes a float
    before = {k: v.clone() for k, v in model.state_dict().items()}
    ints = {**imagenet_r18, "conv1.weight": imagenet_r18["conv1.weight"].to(torch.int64)}
    with pytest.raises(CheckpointError, match=r"^src: 1 tensors are not floating-point weights: "
                                              r"conv1.weight \(int64\); expected float tensors$"):
        load_pretrained(model, ints, source="src")
    broken = {k: v.clone() for k, v in imagenet_r18.items()}
    for key in ("layer1.0.bn1.weight", "layer1.1.conv2.weight", "layer3.0.bn2.bias",
                "layer4.1.conv1.weight", "bn1.running_var"):
        broken[key].view(-1)[0] = float("nan")
    with pytest.raises(CheckpointError, match=r"^weights: 5 tensors hold NaN or infinite values: "
                                              r"bn1.running_var, .*, \.\.\. \(5 in all\)$"):
        load_pretrained(model, broken)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    assert imagenet_r18["bn1.num_batches_tracked"].dtype == torch.int64  # integer buffers load
    assert load_pretrained(model, imagenet_r18).adapted == ["conv1.weight"]


def test_a_file_that_cannot_be_read_is_one_line():
    with pytest.raises(CheckpointError, match=r"^/proc/self/mem: cannot be read: "):
        read_weights("/proc/self/mem")  # a regular file whose first bytes are unreadable (EIO)
