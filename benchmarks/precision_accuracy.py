"""Accuracy and speed of the CPU's cheaper number formats on the synthetic reversal pairs: each
model trained in fp32 and under bf16 autocast (``runtime.precision=amp``), and its fp32 checkpoint
quantised to int8 by ``actionrec export --int8`` (ONNX Runtime), side by side.

    python benchmarks/precision_accuracy.py [--models tsn stm gst] [--epochs 10]

The set and the run are those of tests/test_learning.py (240 videos of 16 frames at 32x32, the
move and rotate pairs, ResNet-18 at 8 frames, batch 8): reversal-pair accuracy is the share of
videos scored above their time-reversed twin (50 % for a model that ignores frame order). Prints
top-1 and pair accuracy on the test split for fp32 training, bf16 training and the int8 model,
the training time of each run, and ONNX Runtime's latency of the fp32 and int8 models at batch 1.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from actionrec.analysis.benchmark import time_call
from actionrec.config import read_config
from actionrec.data.synthetic import SynthSpec, generate
from actionrec.engine.build import config_example
from actionrec.engine.inference import evaluate_checkpoint
from actionrec.engine.quantize import Int8Refused, quantize_checkpoint
from actionrec.engine.recognizer import load
from actionrec.engine.train import train
from actionrec.export import OnnxModel, export_onnx
from actionrec.report.tables import text_table

RECIPE = Path(__file__).resolve().parents[1] / "actionrec/configs/demo/tsn_r18_synth.yaml"


def run(name: str, data: Path, work: Path, epochs: int, amp: bool):
    cfg = read_config(RECIPE, [
        f"model.name={name}", f"data.root={data}", f"work_dir={work}", f"train.epochs={epochs}",
        "data.size=32", "data.short_side=32", "data.scales=[1.0, 0.875]", "train.batch_size=8",
        "train.deterministic=true", "data.workers=0", f"runtime.precision={'amp' if amp else 'fp32'}"])
    start = time.perf_counter()
    result = train(cfg, overwrite=True)
    seconds = time.perf_counter() - start
    metrics, _ = evaluate_checkpoint(cfg, result["work_dir"] / "best.safetensors")
    return cfg, result["work_dir"] / "best.safetensors", metrics, seconds


def percent(metrics: dict) -> str:
    return f"{100 * metrics['top1']:.1f} / {100 * metrics['pair_accuracy']:.1f}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", nargs="+", default=["tsn", "stm", "gst"])
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--work-dir", default="work_dirs/precision_accuracy")
    args = p.parse_args()
    work = Path(args.work_dir)
    generate(work / "synth", SynthSpec(videos=240, frames=16, size=32, seed=1, pairs=(0, 1)),
             overwrite=True)
    rows = []
    for name in args.models:
        cfg, fp32_ckpt, fp32, fp32_s = run(name, work / "synth", work / f"{name}_fp32",
                                           args.epochs, amp=False)
        _, _, bf16, bf16_s = run(name, work / "synth", work / f"{name}_bf16", args.epochs, amp=True)
        int8_path = work / f"{name}.int8.onnx"
        try:
            int8 = percent(quantize_checkpoint(cfg, fp32_ckpt, int8_path)["int8"])
        except Int8Refused as e:
            int8 = f"refused: {e}"
        model = load(fp32_ckpt, device="cpu").model
        x = config_example(cfg, batch=2, generator=torch.Generator().manual_seed(0))
        ort = OnnxModel(export_onnx(model, x, work / f"{name}.onnx"))
        runners = [ort, OnnxModel(int8_path) if int8_path.exists() else None]
        latency = [time_call(lambda m=m, one=x[:1]: m(one)) if m else float("nan")
                   for m in runners]
        rows.append([name, percent(fp32), f"{fp32_s:.0f}", percent(bf16), f"{bf16_s:.0f}", int8,
                     f"{1e3 * latency[0]:.1f}", f"{1e3 * latency[1]:.1f}"])
        print(rows[-1], flush=True)
    print("\n" + text_table(
        ["model", "fp32 top-1 / pair %", "fp32 train s", "bf16 top-1 / pair %", "bf16 train s",
         "int8 top-1 / pair %", "ORT fp32 ms", "ORT int8 ms"], rows))
    print(f"\n{args.epochs} epochs each on the CPU ({torch.get_num_threads()} threads); top-1 / "
          "pair: on the test split; int8: the fp32 checkpoint quantised by `actionrec export "
          "--int8` (calibrated on the val split); ORT ms: ONNX Runtime latency of one clip.")


if __name__ == "__main__":
    main()
