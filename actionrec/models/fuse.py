"""Inference: every BatchNorm folded into the convolution that feeds it.

In eval mode a BN is an affine map per channel, ``y = s * x + t`` with ``s = weight / sqrt(var +
eps)`` and ``t = bias - s * mean``; after a convolution it is the same convolution with its
output channels scaled by ``s`` and a bias ``t``. That removes a memory pass per BN.

The pairs are found by name, the convention every block here follows: ``conv1``/``bn1`` ..
``conv3``/``bn3`` (ResNet and the blocks built on it), ``reduce``/``bn`` (STM's CMM),
``spatial``/``bn`` (P3D's cascade), ``conv``/``bn`` (StNet's temporal block) and a conv
followed by a BN in an ``nn.Sequential`` (shortcuts, MSTI-Net's tubes, the heads). A
convolution made of parts (GST's two paths, C3D's and P3D's modules) provides ``fold_bn(scale,
shift)``. ``tests/models/test_fuse.py`` checks every registered model against its unfolded self.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

PAIRS = (("conv1", "bn1"), ("conv2", "bn2"), ("conv3", "bn3"), ("reduce", "bn"),
         ("spatial", "bn"), ("conv", "bn"))
CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)


def bn_affine(bn: _BatchNorm) -> tuple[torch.Tensor, torch.Tensor]:
    """``(s, t)`` of the eval-mode BN ``y = s * x + t``."""
    scale = bn.running_var.add(bn.eps).rsqrt()
    if bn.weight is not None:
        scale = scale * bn.weight
    shift = -bn.running_mean * scale
    if bn.bias is not None:
        shift = shift + bn.bias
    return scale, shift


def fold_into_conv(conv: nn.Module, scale: torch.Tensor, shift: torch.Tensor) -> None:
    """``conv``'s outputs times ``scale`` plus ``shift``, in its own weights (and a new bias)."""
    shape = (-1,) + (1,) * (conv.weight.dim() - 1)
    bias = conv.bias if conv.bias is not None else torch.zeros_like(scale)
    conv.weight = nn.Parameter(conv.weight.detach() * scale.view(shape))
    conv.bias = nn.Parameter(bias.detach() * scale + shift)


def _fold(conv: nn.Module, bn: _BatchNorm) -> bool:
    if not (isinstance(conv, CONVS) or hasattr(conv, "fold_bn")):
        return False
    scale, shift = (v.detach() for v in bn_affine(bn))
    if isinstance(conv, CONVS):
        fold_into_conv(conv, scale, shift)
    else:
        conv.fold_bn(scale, shift)
    return True


@torch.no_grad()
def fold_batchnorms(model: nn.Module) -> nn.Module:
    """``model`` in eval mode with every BN that follows a convolution folded into it and
    replaced by ``nn.Identity`` (in place; for inference only: it no longer trains as before)."""
    model.eval()
    for module in list(model.modules()):
        if isinstance(module, nn.Sequential):
            children = list(module)
            for i in range(len(children) - 1):
                if isinstance(children[i + 1], _BatchNorm) and _fold(children[i], children[i + 1]):
                    module[i + 1] = nn.Identity()
            continue
        for conv_name, bn_name in PAIRS:
            conv, bn = getattr(module, conv_name, None), getattr(module, bn_name, None)
            if isinstance(bn, _BatchNorm) and conv is not None and _fold(conv, bn):
                setattr(module, bn_name, nn.Identity())
    return model
