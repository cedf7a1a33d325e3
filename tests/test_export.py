import pytest
import torch

from actionrec.export import export_onnx, onnx_relative_diff
from actionrec.models.registry import build_model
from actionrec.models.temporal import TemporalConv
from tests.conftest import calibrate_norms


@pytest.mark.parametrize("name", ["tsn", "tsm", "stm", "gst", "gst_large", "c3d", "p3d", "stnet", "msti"])
def test_onnx_runtime_matches_pytorch(name, tmp_path):
    """On weights as trained (non-zero BN scales, so MSTI-Net's tubes count, and the statistics
    of real activations), judged relative to the logits."""
    torch.manual_seed(0)
    options = {"stnet": {"n": 2}, "msti": {"backbone": "resnet26"}}.get(name, {})
    options = {"backbone": "resnet18", **options}
    model = build_model(name, num_classes=7, num_frames=4, **options)
    frames = model.input_frames
    with torch.no_grad():  # non-trivial temporal kernels, a classifier that is not near zero
        for module in model.modules():
            if isinstance(module, TemporalConv):
                module.weight.normal_()
        model.fc.weight.normal_(0, 0.1)
    calibrate_norms(model, torch.randn(4, frames, 3, 32, 32))
    path = export_onnx(model, torch.randn(2, frames, 3, 32, 32), tmp_path / f"{name}.onnx")
    example = torch.randn(2, frames, 3, 32, 32)
    with torch.no_grad():
        assert model(example).abs().max() > 0.1  # logits of a size a difference can be seen on
    assert onnx_relative_diff(path, model, example) <= 1e-4
    # the batch axis is dynamic: another batch size runs too
    assert onnx_relative_diff(path, model, torch.randn(3, frames, 3, 32, 32)) <= 1e-4
