"""int8 deployment: a checkpoint quantised by ONNX Runtime, offered only where accuracy holds.

``quantize_checkpoint`` exports the checkpoint (BNs folded) to ONNX, quantises it statically with
ONNX Runtime's tools (``export.quantize_int8``: int8 weights per output channel, uint8
activations whose ranges come from clips of the config's *validation* list), then scores the
fp32 and the int8 model, both in ONNX Runtime, on the config's *test* list (``data.test_list``,
else ``val_list``) with the test views. The int8 file is written only if its top-1 is at most
``max_drop`` points below the fp32 model's (the issue's bar: 1 point); otherwise the verdict is an
``Int8Refused`` naming both accuracies, and nothing is written.

Static rather than dynamic quantisation: ``quantize_dynamic`` turns convolutions into
``ConvInteger``, which ONNX Runtime's CPU provider runs slower than float; QDQ static
quantisation becomes ``QLinearConv`` (VNNI on this CPU). Measured on 8x224 ResNet-50 models at
batch 1 (ONNX Runtime, 2 threads): TSN 0.59 -> 0.16 s, GST 0.53 -> 0.16 s, STM 0.79 -> 0.22 s.
"""

from __future__ import annotations

import itertools
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch

from ..config import Config
from ..data.build import build_dataset, build_loader, build_test_loader, reversal_pairs
from ..errors import ActionrecError
from ..export import OnnxModel, export_onnx, quantize_int8
from .build import config_example
from .evaluate import collect_scores, compute_metrics, readable_batches
from .recognizer import load


class Int8Refused(ActionrecError):
    """The int8 model loses more top-1 than allowed: it is not offered."""


def calibration_clips(cfg: Config, count: int) -> list[torch.Tensor]:
    """Up to ``count`` single-view clips ``(1, T, 3, H, W)`` of the validation list, in order."""
    loader = build_loader(cfg, build_dataset(cfg, "val"), batch_size=1, shuffle=False)
    clips = [batch["clip"][:, 0] for batch in itertools.islice(readable_batches(loader, []), count)]
    if not clips:
        raise ActionrecError(f"no readable clip in {cfg.data.val_list} to calibrate int8 with")
    return clips


def accuracy_of(runner, cfg: Config, names: list[str]) -> dict:
    """The test protocol's metrics of an ONNX Runtime model on the config's test list."""
    scores = collect_scores(runner, build_test_loader(cfg), torch.device("cpu"), desc="test")
    metrics = compute_metrics(scores.scores, scores.labels, names, reversal_pairs(cfg))
    return {k: metrics[k] for k in ("top1", "top5", "num_videos", "pair_accuracy") if k in metrics}


def quantize_checkpoint(cfg: Config, checkpoint: str | Path, out: str | Path, *,
                        calibration: int = 32, max_drop: float = 1.0) -> dict:
    """Write the int8 ONNX model of ``checkpoint`` to ``out`` if it keeps top-1 within
    ``max_drop`` points of fp32 on the test list; returns ``{"fp32": metrics, "int8": metrics,
    "calibration_clips": n, "max_logit_diff": ...}``, or raises Int8Refused (nothing written)."""
    recognizer = load(checkpoint, config=cfg, device="cpu")  # ONNX Runtime runs on the CPU
    cpu, names, model = recognizer.config, recognizer.classes, recognizer.model
    clips = calibration_clips(cpu, calibration)
    with tempfile.TemporaryDirectory(prefix="actionrec_int8_") as folder:
        # batch 2: an example of 1 lets the exporter fix the batch dimension at 1
        example = config_example(cpu, batch=2, generator=torch.Generator().manual_seed(0))
        fp32 = OnnxModel(export_onnx(model, example, Path(folder) / "fp32.onnx"))
        int8_path = quantize_int8(Path(folder) / "fp32.onnx", Path(folder) / "int8.onnx", clips)
        int8 = OnnxModel(int8_path)
        diff = max(float(np.abs(int8(c).numpy() - fp32(c).numpy()).max()) for c in clips[:4])
        report = {"fp32": accuracy_of(fp32, cpu, names), "int8": accuracy_of(int8, cpu, names),
                  "calibration_clips": len(clips), "max_logit_diff": diff}
        drop = report["fp32"]["top1"] - report["int8"]["top1"]
        if drop > max_drop / 100:
            raise Int8Refused(
                f"int8 not offered: top-1 {100 * report['int8']['top1']:.2f} % against fp32's "
                f"{100 * report['fp32']['top1']:.2f} % on {report['fp32']['num_videos']} videos, a "
                f"drop of {100 * drop:.2f} points (at most {max_drop:g} allowed); nothing written")
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        shutil.move(int8_path, out)
    return report
