"""Optimised computation paths against the straightforward ones they replace (issue 19).

``temporal.conv3d`` (oneDNN called directly) against ``F.conv3d`` in whole models, at batch 1,
where PyTorch itself would take its im2col path: logits in eval and train mode, and the
gradients of every parameter. Gradients are compared with BN on its running statistics: with
batch statistics of one small clip, BN's backward cancels nearly equal terms and turns float32
rounding of either path into percent-level noise, which would compare nothing. Every BN gets
random affine parameters and running statistics, so that no layer at its initial value (a
zero-init BN scale, unit statistics) can hide a path.
"""

import pytest
import torch
import torch.nn.functional as F

import actionrec.models.temporal as temporal
from actionrec.models.base import to_channels_last
from actionrec.models.registry import build_with_input

MODELS = {  # name -> (backbone, options)
    "gst": ("resnet18", {}), "gst_large": ("resnet18", {}), "c3d": ("resnet18", {"groups": 2}),
    "p3d": ("resnet18", {}), "stnet": ("resnet18", {}), "msti": ("resnet26", {}),
}


def randomised(model: torch.nn.Module) -> torch.nn.Module:
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.weight.data.uniform_(0.5, 1.5, generator=g)
            m.bias.data.uniform_(-0.2, 0.2, generator=g)
            m.running_mean.uniform_(-0.2, 0.2, generator=g)
            m.running_var.uniform_(0.5, 1.5, generator=g)
    return model


def plain_conv3d(x, weight, bias=None, stride=1, padding=0, groups=1):
    return F.conv3d(x, weight, bias, stride, padding, 1, groups)


@pytest.mark.parametrize("name", MODELS)
def test_fast_conv3d_gives_the_logits_and_gradients_of_torch_conv3d(name, monkeypatch):
    backbone, options = MODELS[name]
    torch.manual_seed(0)
    model, x = build_with_input(name, classes=5, frames=4, size=32, backbone=backbone,
                                options=options, generator=torch.Generator().manual_seed(2))
    model = to_channels_last(randomised(model))
    weights = torch.randn(5, generator=torch.Generator().manual_seed(4))
    state = {k: v.clone() for k, v in model.state_dict().items()}

    def run(train: bool):
        model.load_state_dict(state)  # a training pass moves the BN running statistics
        model.train(train)
        with torch.random.fork_rng():  # the same dropout masks on both paths
            torch.manual_seed(3)
            out = model(x)
        model.zero_grad()
        (out * weights).sum().backward()
        return [out.detach()] + [p.grad.clone() for p in model.parameters()
                                 if p.grad is not None]

    fast = [run(False), run(True)[:1]]
    calls = []
    monkeypatch.setattr(temporal, "conv3d", lambda *a, **k: calls.append(1) or plain_conv3d(*a, **k))
    reference = [run(False), run(True)[:1]]
    assert calls  # the model does go through conv3d
    for ours, ref in zip(fast, reference, strict=True):
        scale = max(r.abs().max().item() for r in ref)
        for a, b in zip(ours, ref, strict=True):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4 * max(1.0, scale))
