"""ONNX export of a trained model, checked against ONNX Runtime.

The exported graph takes a batch of clips ``(N, input_frames, 3, H, W)`` (normalised, as the data
pipeline produces them) with a dynamic batch size and returns logits ``(N, num_classes)``.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

log = logging.getLogger(__name__)


def export_onnx(model: nn.Module, example: torch.Tensor, path: str | Path) -> Path:
    """Export ``model`` (eval mode) with PyTorch's ONNX exporter; batch dim dynamic."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model = model.eval()
    batch = torch.export.Dim("batch", min=1, max=1024)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (example,), str(path), dynamo=True, input_names=["clips"],
                          output_names=["logits"], dynamic_shapes=({0: batch},), verbose=False)
    return path


def onnx_relative_diff(path: str | Path, model: nn.Module, example: torch.Tensor) -> float:
    """Largest absolute difference between ONNX Runtime's and PyTorch's logits on ``example``,
    relative to the largest logit magnitude (an absolute bound says nothing of tiny logits)."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    out = session.run(None, {session.get_inputs()[0].name: example.numpy()})[0]
    with torch.no_grad():
        ref = model.eval()(example).numpy()
    return float(np.abs(out - ref).max() / max(np.abs(ref).max(), 1e-30))
