"""``actionrec bench``'s measurement: the machine's reference rate (the oneDNN form computes the
product) and the baseline timed beside every model."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from actionrec.analysis import benchmark
from actionrec.analysis.benchmark import as_conv1x1


def test_the_onednn_form_of_the_reference_matmul_is_the_product():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(96, 40, generator=g), torch.randn(40, 56, generator=g)
    pixels, kernel = as_conv1x1(a, b)
    assert pixels.is_contiguous(memory_format=torch.channels_last)  # oneDNN's fast layout
    out = F.conv2d(pixels, kernel)  # (1, 56, 3, 32): pixel (h, w) is row 32 h + w
    torch.testing.assert_close(out.permute(0, 2, 3, 1).reshape(96, 56), a @ b)


def test_ratios_are_to_the_baseline_timed_beside_each_model(monkeypatch):
    """Scripted timings on a machine slowing down 10 % per turn: a model that takes the
    baseline's time reads 1.0 and one that takes twice 2.0, where their ratios to the
    baseline's median time would read 0.93 and 2.26."""
    order: list[str] = []

    def scripted(call, **_):
        order.append(call.__name__)
        return {"base": 1.0, "same": 1.0, "double": 2.0}[call.__name__] * 1.1 ** len(order)

    def named(name):
        def call():
            pass
        call.__name__ = name
        return call

    monkeypatch.setattr(benchmark, "time_call", scripted)
    calls = {name: named(name) for name in ("same", "double", "base")}
    timings = benchmark.paired_turns(calls, "base", device="cpu", rounds=2, min_time=0)
    assert order == ["base", "same", "base", "double", "base"] * 2
    assert timings["same"].ratio == pytest.approx(1.0, rel=0.01)
    assert timings["double"].ratio == pytest.approx(2.0, rel=0.01)
    assert timings["base"].ratio == 1.0
    # what the pairing keeps out: the ratios of medians drift with the machine
    assert timings["same"].seconds / timings["base"].seconds == pytest.approx(0.934, abs=0.001)
    assert timings["double"].seconds / timings["base"].seconds == pytest.approx(2.26, abs=0.01)
    # round 1: the baseline 1.1 and 1.331 beside "same", 1.331 and 1.611 beside "double"
    assert timings["same"].baseline_s == pytest.approx(
        ((1.1 + 1.1**3) / 2 + (1.1**6 + 1.1**8) / 2) / 2)
