"""The machine's reference rate of ``actionrec bench``: the oneDNN form computes the product."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from actionrec.analysis.benchmark import as_conv1x1


def test_the_onednn_form_of_the_reference_matmul_is_the_product():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(96, 40, generator=g), torch.randn(40, 56, generator=g)
    pixels, kernel = as_conv1x1(a, b)
    assert pixels.is_contiguous(memory_format=torch.channels_last)  # oneDNN's fast layout
    out = F.conv2d(pixels, kernel)  # (1, 56, 3, 32): pixel (h, w) is row 32 h + w
    torch.testing.assert_close(out.permute(0, 2, 3, 1).reshape(96, 56), a @ b)
