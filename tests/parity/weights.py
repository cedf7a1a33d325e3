"""Deterministic weights and inputs for the parity tests of ``actionrec convert``.

Each tensor is drawn from a generator seeded by the CRC-32 of its key in the *source* layout, so
the reference implementation (run outside the repository, see ``README.md`` here) and the test
build the same checkpoint from the key list alone. The values keep activations of order one
through a ResNet-50 in eval mode (logits of a few units that differ from clip to clip): BN
scales in [0.5, 1], running statistics away from their defaults (means in [-0.1, 0.1], variances
in [0.5, 1.5]), biases in [-0.1, 0.1], conv and linear weights N(0, 2 / fan_in).
"""

from __future__ import annotations

import math
import re
import zlib

import torch


def tensor_for(key: str, shape: list[int]) -> torch.Tensor:
    g = torch.Generator().manual_seed(zlib.crc32(key.encode()))
    leaf = key.rsplit(".", 1)[-1]
    if leaf == "num_batches_tracked":
        return torch.tensor(100)
    if leaf == "running_var":
        return torch.empty(shape).uniform_(0.5, 1.5, generator=g)
    if leaf == "running_mean":
        return torch.empty(shape).uniform_(-0.1, 0.1, generator=g)
    if leaf == "bias":
        return torch.empty(shape).uniform_(-0.1, 0.1, generator=g)
    if len(shape) == 1:  # a norm layer's scale
        return torch.empty(shape).uniform_(0.5, 1.0, generator=g)
    fan_in = math.prod(shape[1:])
    return torch.randn(shape, generator=g) * math.sqrt(2 / fan_in)


def state_for(keys: dict[str, list[int]],
              gains: dict[str, float] | None = None) -> dict[str, torch.Tensor]:
    """A state dict of ``{key: shape}``, every tensor from ``tensor_for``, times the gain of each
    pattern of ``gains`` (``re.search``) its key matches: for branches that no BN normalises
    (STM's CMM is added unnormalised), whose weights at N(0, 2 / fan_in) would grow the
    activations block by block, where trained weights are small."""
    state = {k: tensor_for(k, shape) for k, shape in keys.items()}
    for pattern, gain in (gains or {}).items():
        state.update({k: v * gain for k, v in state.items() if re.search(pattern, k)})
    return state


def clips(batch: int, frames: int, size: int, seed: int = 0) -> torch.Tensor:
    """The fixed input ``(batch, frames, 3, size, size)``: smooth random images (N(0, 1) on a
    7 x 7 grid, upsampled) that change from frame to frame and clip to clip. Pixel noise would
    average out in the pooled features and leave every clip with the same logits."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.randn(batch * frames, 3, 7, 7, generator=g)
    fine = torch.nn.functional.interpolate(coarse, size=(size, size), mode="bilinear",
                                           align_corners=False)
    return fine.view(batch, frames, 3, size, size)
