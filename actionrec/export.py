"""ONNX export of a trained model, and the exported model run by ONNX Runtime.

The exported graph takes a batch of clips ``(N, input_frames, 3, H, W)`` (normalised, as the data
pipeline produces them) with a dynamic batch size and returns logits ``(N, num_classes)``.
``OnnxModel`` runs it on the CPU with ONNX Runtime's graph optimisations (constant folding,
conv + activation fusion, layout changes), called like the PyTorch model: ``predict --backend
onnxruntime`` and ``bench --backend`` use it. ``quantize_int8`` turns an exported model into
its int8 form (``engine/quantize.py`` decides whether it is offered).
"""

from __future__ import annotations

import logging
import warnings
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from torch import nn

log = logging.getLogger(__name__)


@contextmanager
def quiet(*loggers: str):
    """The named loggers at ERROR, and warnings ignored, inside the block."""
    loggers = [logging.getLogger(name) for name in loggers]
    levels = [logger.level for logger in loggers]
    try:
        for logger in loggers:
            logger.setLevel(logging.ERROR)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def export_onnx(model: nn.Module, example: torch.Tensor, path: str | Path) -> Path:
    """Export ``model`` (eval mode) with PyTorch's ONNX exporter; batch dim dynamic."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model = model.eval()
    batch = torch.export.Dim("batch", min=1, max=1024)
    # the exporter's own chatter (optional torchvision operators, initializer passes) is not ours
    with quiet("torch.onnx", "onnx_ir", "onnxscript"), torch.no_grad():
        torch.onnx.export(model, (example,), str(path), dynamo=True, input_names=["clips"],
                          output_names=["logits"], dynamic_shapes=({0: batch},), verbose=False)
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

    def eval(self) -> OnnxModel:
        """Nothing to switch (an inference graph): lets the evaluation loop take it as a model."""
        return self

    def __call__(self, clips: torch.Tensor) -> torch.Tensor:
        x = clips.detach().to("cpu", torch.float32).contiguous().numpy()
        return torch.from_numpy(self.session.run(None, {self.input: x})[0])


def quantize_int8(fp32: str | Path, out: str | Path, clips: list[torch.Tensor]) -> Path:
    """Static int8 quantisation of an exported model with ONNX Runtime's tools: the graph
    pre-processed (shape inference, fusions), then QDQ with int8 weights per output channel and
    uint8 activations whose ranges are the min/max over ``clips`` (the calibration set)."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Clips(CalibrationDataReader):
        def __init__(self):
            self.feeds = iter({"clips": c.to(torch.float32).contiguous().numpy()} for c in clips)

        def get_next(self):
            return next(self.feeds, None)

    out = Path(out)
    pre = out.with_suffix(".pre.onnx")
    # its tools log through the root logger ("Bias of Gemm node ... is not constant")
    with quiet("", "onnxruntime.quantization"):
        quant_pre_process(str(fp32), str(pre))
        quantize_static(str(pre), str(out), Clips(), quant_format=QuantFormat.QDQ,
                        per_channel=True, activation_type=QuantType.QUInt8,
                        weight_type=QuantType.QInt8)
    pre.unlink()
    return out


def onnx_relative_diff(onnx: str | Path | OnnxModel, model: nn.Module,
                       example: torch.Tensor) -> float:
    """Largest absolute difference between ONNX Runtime's and PyTorch's logits on ``example``,
    relative to the largest logit magnitude (an absolute bound says nothing of tiny logits)."""
    runner = onnx if isinstance(onnx, OnnxModel) else OnnxModel(onnx)
    out = runner(example).numpy()
    with torch.no_grad():
        ref = model.eval()(example).numpy()
    return float(np.abs(out - ref).max() / max(np.abs(ref).max(), 1e-30))
