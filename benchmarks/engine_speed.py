"""Training and inference speed of TSN-ResNet50 at 8x224x224 on this machine.

    python benchmarks/engine_speed.py [--batch 2] [--device cpu]

Prints clips/s and the achieved GFLOP/s (2 x MACs / time; training counted as 3 x the forward
MACs: forward, backward to activations, backward to weights) for memory layouts and precisions,
beside the machine's fp32 matmul GFLOP/s measured in the same run.
"""

from __future__ import annotations

import argparse

import torch
from torch import nn

from actionrec.analysis.benchmark import matmul_gflops, time_call
from actionrec.models.registry import build_model
from actionrec.report.flops import count_macs
from actionrec.runtime import tune_allocator


def main() -> None:
    tune_allocator()
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batch", type=int, default=2, help="clips per batch")
    p.add_argument("--frames", type=int, default=8)
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--min-time", type=float, default=4.0, help="seconds per measurement")
    args = p.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)

    model = build_model("tsn", num_classes=174, num_frames=args.frames, backbone="resnet50")
    x = torch.randn(args.batch, args.frames, 3, args.size, args.size)
    macs = count_macs(model, x[:1])
    peak = matmul_gflops(device=device)
    print(f"TSN-ResNet50, {args.frames}x{args.size}x{args.size}, batch {args.batch} clips, "
          f"device {device}, torch threads {torch.get_num_threads()}")
    print(f"MACs per clip (view): {macs / 1e9:.2f} G; machine fp32 matmul: {peak:.0f} GFLOP/s\n")
    print(f"{'mode':<10} {'layout':<14} {'precision':<10} {'clips/s':>8} {'GFLOP/s':>8} "
          f"{'% of matmul':>11}")
    model = model.to(device)
    x = x.to(device)
    low = torch.float16 if device.type == "cuda" else torch.bfloat16
    for layout in (torch.contiguous_format, torch.channels_last):
        layout_name = "channels_last" if layout is torch.channels_last else "contiguous"
        model = model.to(memory_format=layout)
        for precision in ("fp32", str(low).removeprefix("torch.")):
            amp = precision != "fp32"

            def infer(model=model, amp=amp):
                with torch.no_grad(), torch.autocast(device.type, dtype=low, enabled=amp):
                    model(x)

            opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
            labels = torch.zeros(args.batch, dtype=torch.long, device=device)

            def step(model=model, amp=amp, opt=opt, labels=labels):
                with torch.autocast(device.type, dtype=low, enabled=amp):
                    loss = nn.functional.cross_entropy(model(x).float(), labels)
                opt.zero_grad()
                loss.backward()
                opt.step()

            for mode, fn, factor in (("inference", infer, 1), ("training", step, 3)):
                model.train(mode == "training")
                seconds = time_call(fn, device=device, min_time=args.min_time)
                rate = args.batch / seconds
                gflops = 2 * factor * macs * rate / 1e9
                print(f"{mode:<10} {layout_name:<14} {precision:<10} {rate:>8.2f} {gflops:>8.1f} "
                      f"{100 * gflops / peak:>10.0f}%", flush=True)


if __name__ == "__main__":
    main()
