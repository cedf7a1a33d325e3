import pytest
import torch

from actionrec.export import export_onnx, onnx_max_abs_diff
from actionrec.models.registry import build_model


@pytest.mark.parametrize("name", ["tsn", "tsm", "stm", "gst", "gst_large", "c3d", "p3d"])
def test_onnx_runtime_matches_pytorch(name, tmp_path):
    torch.manual_seed(0)
    model = build_model(name, num_classes=7, num_frames=4, backbone="resnet18").eval()
    with torch.no_grad():  # non-trivial temporal kernels and BN statistics
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.normal_(0, 0.1)
                module.running_var.uniform_(0.5, 1.5)
            if getattr(module, "weight", None) is not None and module.weight.dim() == 3:
                module.weight.normal_()
    path = export_onnx(model, torch.randn(2, 4, 3, 32, 32), tmp_path / f"{name}.onnx")
    assert onnx_max_abs_diff(path, model, torch.randn(2, 4, 3, 32, 32)) <= 1e-4
    # the batch axis is dynamic: another batch size runs too
    assert onnx_max_abs_diff(path, model, torch.randn(3, 4, 3, 32, 32)) <= 1e-4
