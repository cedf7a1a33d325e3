"""Data-parallel scaling: measured clips/s for 1 and 2 processes on this machine, and what to
expect on 8 GPUs from each model's gradient volume (an estimate).

    python benchmarks/distributed_scaling.py [--model tsn --backbone resnet50 --frames 8
                                              --size 224 --batch 2 --steps 3]

Part 1 runs the training step the engine runs under torchrun (DistributedDataParallel over
Gloo, forward, backward with the gradient all-reduce, SGD step) on random clips in 1 and in 2
processes, the cores shared out between them, and prints clips/s side by side. With 2 cores the
2 processes have one core each: expect little or no speed-up here.

Part 2 lists, per recipe model of configs/, the bytes each step all-reduces (fp32 gradients:
parameters x 4) and, for 8 GPUs, the ring all-reduce time at an assumed bus bandwidth against
the compute time of a step at the zoo's assumed GPU throughput. These are estimates from stated
assumptions, not measurements.
"""

from __future__ import annotations

import argparse
import os
import socket
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from actionrec.analysis.zoo import GPU_MACS_PER_S, TRAIN_PASSES, zoo_rows
from actionrec.engine.distributed import replicate
from actionrec.models.base import to_channels_last
from actionrec.models.registry import build_model, example_input, get_spec
from actionrec.report.tables import text_table

GPUS = 8
CLIPS_PER_GPU = 8  # STM's 8 clips per GPU (Sec. 4.2)
# assumed all-reduce bus bandwidths (bytes/s) of NCCL: NVLink (A100/H100 class) and PCIe 4.0 x16
BUS_BYTES_PER_S = {"NVLink": 100e9, "PCIe 4": 12e9}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def worker(rank: int, world: int, port: int, args, results) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // world))
    if world > 1:
        dist.init_process_group("gloo", rank=rank, world_size=world)
    torch.manual_seed(0)
    model = to_channels_last(build_model(args.model, num_classes=174, num_frames=args.frames,
                                         backbone=args.backbone))
    net = replicate(model, torch.device("cpu")) if world > 1 else model
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    clips = example_input(get_spec(args.model), frames=args.frames, size=args.size,
                          batch=args.batch)
    labels = torch.zeros(args.batch, dtype=torch.long)

    def step() -> None:
        loss = torch.nn.functional.cross_entropy(net(clips), labels)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    step()  # warm-up: allocations, DDP's first-iteration bucket rebuild
    if world > 1:
        dist.barrier()
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    elapsed = torch.tensor([time.perf_counter() - start])
    if world > 1:
        dist.all_reduce(elapsed, op=dist.ReduceOp.MAX)  # the job is as fast as its slowest rank
        dist.destroy_process_group()
    if rank == 0:
        results.put(world * args.batch * args.steps / elapsed.item())


def measure(world: int, args) -> float:
    context = mp.get_context("spawn")
    results = context.SimpleQueue()
    mp.start_processes(worker, args=(world, free_port(), args, results), nprocs=world,
                       start_method="spawn")
    return results.get()


def measured_table(args) -> None:
    rates = {world: measure(world, args) for world in (1, 2)}
    print(f"\n{args.model} {args.backbone}, {args.frames} x {args.size}^2, batch {args.batch} per "
          f"process, {args.steps} steps, {os.cpu_count()} cores shared out (measured)")
    rows = [[str(w), str(max(1, (os.cpu_count() or 1) // w)), f"{r:.2f}", f"{r / rates[1]:.2f}x"]
            for w, r in rates.items()]
    print(text_table(["processes", "threads each", "clips/s", "vs 1 process"], rows))


def estimate_table() -> None:
    seen, rows = set(), []
    for z in zoo_rows("configs"):
        m = z.cfg.model
        key = (m.name, m.backbone, m.num_frames)
        if key in seen:
            continue
        seen.add(key)
        grad_bytes = 4 * z.params
        ring = 2 * (GPUS - 1) / GPUS * grad_bytes  # sent (and received) by each GPU per step
        compute = TRAIN_PASSES * z.macs * CLIPS_PER_GPU / GPU_MACS_PER_S
        cells = [f"{m.name} {m.backbone} {m.num_frames}f", f"{z.params / 1e6:.1f}",
                 f"{grad_bytes / 2**20:.0f}", f"{1e3 * compute:.0f}"]
        for bandwidth in BUS_BYTES_PER_S.values():
            comm = ring / bandwidth
            # DDP overlaps the all-reduce with the backward pass: between these two bounds
            cells += [f"{1e3 * comm:.0f}", f"{compute / (compute + comm):.0%}-"
                      f"{min(1.0, compute / comm):.0%}"]
        rows.append(cells)
    headers = ["model", "params M", "grad MiB/step", "compute ms/step"]
    for name in BUS_BYTES_PER_S:
        headers += [f"all-reduce ms ({name})", f"efficiency ({name})"]
    print(f"\n{GPUS} GPUs x {CLIPS_PER_GPU} clips, fp32 gradients, ring all-reduce "
          f"(ESTIMATE: {GPU_MACS_PER_S / 1e12:.0f} TMAC/s per GPU assumed, bus bandwidths "
          + ", ".join(f"{k} {v / 1e9:.0f} GB/s" for k, v in BUS_BYTES_PER_S.items())
          + " assumed)")
    print(text_table(headers, rows))
    print("efficiency: compute / (compute + all-reduce) with no overlap, up to "
          "compute / all-reduce (capped at 100 %) with the full overlap DDP aims for")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="tsn")
    p.add_argument("--backbone", default="resnet50")
    p.add_argument("--frames", type=int, default=8)
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--batch", type=int, default=2, help="clips per process")
    p.add_argument("--steps", type=int, default=3, help="timed steps")
    args = p.parse_args()
    measured_table(args)
    estimate_table()


if __name__ == "__main__":
    main()
