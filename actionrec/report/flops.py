"""Parameters and multiply-accumulates (MACs) per view, the papers' "FLOPs".

MACs come from PyTorch's own counter (``torch.utils.flop_counter.FlopCounterMode``), which counts
every convolution, linear layer and matrix product (2 FLOPs per multiply-accumulate); we halve it.
Normalisation, activations and pooling are not counted, as in the papers. oneDNN's fused RNN
kernel is invisible to the counter, so RNNs are counted with it switched off (then an LSTM or GRU
runs as the matrix products it is made of).
"""

from __future__ import annotations

import warnings

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@torch.no_grad()
def count_macs(model: nn.Module, example: torch.Tensor) -> int:
    """MACs of one forward pass of ``model`` on ``example`` (divide by the batch for per-view)."""
    was_training = model.training
    model.eval()
    with warnings.catch_warnings():  # flags() warns about TF32 on oneDNN, which it also sets
        warnings.simplefilter("ignore")
        with torch.backends.mkldnn.flags(enabled=False), FlopCounterMode(display=False) as counter:
            model(example)
    model.train(was_training)
    return counter.get_total_flops() // 2
