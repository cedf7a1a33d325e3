"""BN folding for inference (``models/fuse.py``): every registered model computes what it
computed before, with no BN left after a convolution."""

import pytest
import torch
from torch.nn.modules.batchnorm import _BatchNorm

from actionrec.models.base import to_channels_last
from actionrec.models.fuse import fold_batchnorms
from actionrec.models.registry import MODELS, build_with_input
from tests.helpers import randomised

BACKBONE = {"msti": "resnet26", "stm": "resnet26"}  # bottleneck blocks; the rest: resnet18


@pytest.mark.parametrize("name", list(MODELS))
def test_folded_model_gives_the_same_logits(name):
    torch.manual_seed(0)
    model, x = build_with_input(name, classes=5, frames=4, size=32,
                                backbone=BACKBONE.get(name, "resnet18"),
                                generator=torch.Generator().manual_seed(2))
    model = to_channels_last(randomised(model)).eval()
    before = sum(isinstance(m, _BatchNorm) for m in model.modules())
    with torch.no_grad():
        ref = model(x)
        folded = fold_batchnorms(model)
        out = folded(x)
    left = [n for n, m in folded.named_modules() if isinstance(m, _BatchNorm)]
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-4 * max(1.0, ref.abs().max().item()))
    if name in ("lstm", "gru"):
        return  # no convolutions
    assert before > len(left)
    # what may stay: TXB's BN on its input follows no convolution, the one on its output a sum
    assert all(n.endswith(("bn_in", "bn_out")) for n in left), left
