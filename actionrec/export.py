"""ONNX export of a trained model, and the exported model run by ONNX Runtime.

The exported graph takes a batch of clips ``(N, input_frames, 3, H, W)`` (normalised, as the data
pipeline produces them) with a dynamic batch size and returns logits ``(N, num_classes)``.
``OnnxModel`` runs it on the CPU with ONNX Runtime's graph optimisations (constant folding,
conv + activation fusion, layout changes), called like the PyTorch model: ``predict --backend
onnxruntime`` and ``bench --backend`` use it.
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
    # the exporter's own chatter (optional torchvision operators, initializer passes) is not ours
    loggers = [logging.getLogger(name) for name in ("torch.onnx", "onnx_ir", "onnxscript")]
    levels = [logger.level for logger in loggers]
    try:
        for logger in loggers:
            logger.setLevel(logging.ERROR)
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(model, (example,), str(path), dynamo=True, input_names=["clips"],
                              output_names=["logits"], dynamic_shapes=({0: batch},),
                              verbose=False)
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)
    return path


class OnnxModel:
    """An exported model in an ONNX Runtime CPU session (all graph optimisations, ``threads``
    intra-op threads: PyTorch's count by default): clips tensor in, logits tensor out."""

    def __init__(self, path: str | Path, *, threads: int | None = None):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = threads or torch.get_num_threads()
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.input = self.session.get_inputs()[0].name

    def __call__(self, clips: torch.Tensor) -> torch.Tensor:
        x = clips.detach().to("cpu", torch.float32).contiguous().numpy()
        return torch.from_numpy(self.session.run(None, {self.input: x})[0])


def onnx_relative_diff(onnx: str | Path | OnnxModel, model: nn.Module,
                       example: torch.Tensor) -> float:
    """Largest absolute difference between ONNX Runtime's and PyTorch's logits on ``example``,
    relative to the largest logit magnitude (an absolute bound says nothing of tiny logits)."""
    runner = onnx if isinstance(onnx, OnnxModel) else OnnxModel(onnx)
    out = runner(example).numpy()
    with torch.no_grad():
        ref = model.eval()(example).numpy()
    return float(np.abs(out - ref).max() / max(np.abs(ref).max(), 1e-30))
