import pytest
import torch

from actionrec.export import export_onnx, onnx_max_abs_diff
from actionrec.models.registry import build_model
from actionrec.models.temporal import TemporalConv


@pytest.mark.parametrize("name", ["tsn", "tsm", "stm", "gst", "gst_large", "c3d", "p3d", "stnet", "msti"])
def test_onnx_runtime_matches_pytorch(name, tmp_path):
    torch.manual_seed(0)
    options = {"stnet": {"n": 2}, "msti": {"backbone": "resnet26"}}.get(name, {})
    options = {"backbone": "resnet18", **options}
    model = build_model(name, num_classes=7, num_frames=4, **options).eval()
    frames = model.input_frames
    with torch.no_grad():  # non-trivial temporal kernels and BN statistics
        for module in model.modules():
            if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                module.running_mean.normal_(0, 0.1)
                module.running_var.uniform_(0.5, 1.5)
            if isinstance(module, TemporalConv):
                module.weight.normal_()
    path = export_onnx(model, torch.randn(2, frames, 3, 32, 32), tmp_path / f"{name}.onnx")
    assert onnx_max_abs_diff(path, model, torch.randn(2, frames, 3, 32, 32)) <= 1e-4
    # the batch axis is dynamic: another batch size runs too
    assert onnx_max_abs_diff(path, model, torch.randn(3, frames, 3, 32, 32)) <= 1e-4
