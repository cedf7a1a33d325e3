"""An optimised computation against the straightforward one it replaces, gradients included."""

import torch


def assert_same_with_gradients(ours, reference, inputs) -> None:
    """``ours(*inputs)`` equals ``reference(*inputs)`` to 1e-4, and so do the gradients of every
    input for one fixed upstream gradient (not all ones, which would hide a permuted output)."""
    results = []
    for fn in (ours, reference):
        leaves = [t.detach().clone().requires_grad_() for t in inputs]
        out = fn(*leaves)
        out.backward(torch.cos(out.detach()))
        results.append([out.detach()] + [t.grad for t in leaves])
    for a, b in zip(*results, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)
