"""``actionrec export CKPT --out OUT.onnx``: ONNX export, checked with ONNX Runtime."""

from __future__ import annotations

import torch

from .common import add_checkpoint


def register(sub) -> None:
    p = sub.add_parser("export", help="export a checkpoint to ONNX, checked with ONNX Runtime")
    add_checkpoint(p, positional=True)
    p.add_argument("--out", required=True, help="output .onnx file")
    p.add_argument("--batch", type=int, default=2, help="batch of the example input")
    p.add_argument("--tolerance", type=float, default=1e-4,
                   help="largest ONNX Runtime vs PyTorch difference allowed, relative to the "
                        "largest logit (default 1e-4)")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..engine.build import config_example
    from ..engine.inference import load_checkpoint
    from ..export import export_onnx, onnx_relative_diff

    cfg, names, model, _ = load_checkpoint(args.checkpoint, device="cpu")
    example = config_example(cfg, batch=args.batch, generator=torch.Generator().manual_seed(0))
    out = export_onnx(model, example, args.out)
    diff = onnx_relative_diff(out, model, example)
    shape = ", ".join(map(str, example.shape[1:]))
    print(f"wrote {out}: input (N, {shape}) normalised, output logits (N, {len(names)}); "
          f"ONNX Runtime vs PyTorch max abs diff {diff:.2e} of the largest logit")
    return 0 if diff <= args.tolerance else 1
