"""Reading weight files safely and loading (or inflating) ImageNet weights into video models.

Weight files are read with ``torch.load(weights_only=True)`` or safetensors: a ``.pth`` whose pickle
would construct arbitrary objects (and so could run code) is refused before anything runs.
"""

from __future__ import annotations

import os
import pickle
from dataclasses import dataclass, field

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import nn

from ..errors import CheckpointError


def read_weights(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """A flat ``{name: tensor}`` from ``.safetensors`` or a ``.pth``/``.pt`` (safe unpickler only).

    Wrappers used by common tools are unwrapped: ``{"state_dict": ...}`` / ``{"model": ...}`` /
    ``{"model_dict": ...}`` (MMAction2, timm, TSM, the STM authors' code) and DDP's ``module.``
    prefix.
    """
    path = str(path)
    if not os.path.isfile(path):
        raise CheckpointError(f"{path}: checkpoint not found")
    if path.endswith(".safetensors"):
        try:
            return load_file(path)
        except (SafetensorError, OSError) as e:
            raise CheckpointError(f"{path}: not a readable safetensors file: {e}") from None
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise CheckpointError(f"{path}: refused: the file holds pickled objects other than "
                              f"tensors, which could run code when loaded ({first})") from None
    except (RuntimeError, EOFError, OSError, ValueError) as e:
        raise CheckpointError(f"{path}: not a readable PyTorch weights file: {e}") from None
    for key in ("state_dict", "model", "model_dict", "module"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError(f"{path}: expected a dict of tensors (a state dict)")
    if all(k.startswith("module.") for k in obj):
        obj = {k.removeprefix("module."): v for k, v in obj.items()}
    return obj


def inflate_time(weight: torch.Tensor, time_kernel: int) -> torch.Tensor:
    """2D conv weight ``(O, I, kh, kw)`` -> 3D ``(O, I, kt, kh, kw)``: repeated over time and divided
    by ``kt`` (I3D, Carreira and Zisserman 2017), so a static clip gives the 2D response."""
    return weight.unsqueeze(2).repeat(1, 1, time_kernel, 1, 1) / time_kernel


def inflate_channels(weight: torch.Tensor, times: int) -> torch.Tensor:
    """Conv weight with ``I`` input channels -> ``I * times`` (``times`` stacked frames): repeated
    and divided by ``times`` (StNet's super-image conv1, initialised the I3D way)."""
    return weight.repeat(1, times, *([1] * (weight.dim() - 2))) / times


def adapt_tensor(source: torch.Tensor, target: torch.Tensor) -> torch.Tensor | None:
    """``source`` reshaped to ``target``'s shape by the rules above, or None if no rule applies."""
    if source.shape == target.shape:
        return source
    if source.dim() == 5 and target.dim() == 4 and source.shape[2] == 1:  # a 1 x k x k 3D kernel
        return adapt_tensor(source.squeeze(2), target)
    if source.dim() == 4 and target.dim() == 5:  # 2D -> 3D conv
        inflated = inflate_time(source, target.shape[2])
        return adapt_tensor(inflated, target)
    same_rest = source.shape[0] == target.shape[0] and source.shape[2:] == target.shape[2:]
    if source.dim() == target.dim() >= 4 and same_rest and target.shape[1] % source.shape[1] == 0:
        return inflate_channels(source, target.shape[1] // source.shape[1])
    return None


def _through_adapters(module: nn.Module, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    adapters = {name: m for name, m in module.named_modules() if hasattr(m, "adapt_weight")}
    if not adapters:
        return state
    out = {}
    for key, value in state.items():
        adapter = adapters.get(key.removesuffix(".weight")) if key.endswith(".weight") else None
        if adapter is None:
            out[key] = value
        else:
            prefix = key.removesuffix("weight")
            out.update({prefix + k: v for k, v in adapter.adapt_weight(value).items()})
    return out


@dataclass
class LoadReport:
    loaded: list[str] = field(default_factory=list)
    adapted: list[str] = field(default_factory=list)  # inflated or squeezed to fit
    missing: list[str] = field(default_factory=list)  # in the model, not in the file
    unexpected: list[str] = field(default_factory=list)  # in the file, not in the model
    mismatched: list[str] = field(default_factory=list)  # shapes that no rule could fit

    def summary(self) -> str:
        def few(keys):
            return ", ".join(keys[:6]) + (f", ... ({len(keys)} in all)" if len(keys) > 6 else "")

        parts = [f"loaded {len(self.loaded)} tensors"]
        if self.adapted:
            parts.append(f"reshaped {len(self.adapted)}: {few(self.adapted)}")
        for name, keys in (("missing (kept at init)", self.missing),
                           ("unexpected (ignored)", self.unexpected),
                           ("shape mismatch (skipped)", self.mismatched)):
            if keys:
                parts.append(f"{name} {len(keys)}: {few(keys)}")
        return "; ".join(parts)


def load_pretrained(module: nn.Module, weights: str | os.PathLike | dict[str, torch.Tensor]
                    ) -> LoadReport:
    """Load every tensor of ``weights`` that fits ``module`` (directly, or inflated over time or
    stacked frames) and report the rest; a classifier of another size is reported and skipped.

    A submodule that replaces a 2D conv with something else (GST's two paths, C3D's grouped 3D
    conv) defines ``adapt_weight(weight2d) -> {its own keys: tensors}``; the 2D weight stored
    under its name is passed through it.
    """
    source = read_weights(weights) if not isinstance(weights, dict) else dict(weights)
    source = _through_adapters(module, source)
    target = module.state_dict()
    report = LoadReport()
    new_state = {}
    for key, value in source.items():
        if key not in target:
            report.unexpected.append(key)
            continue
        fitted = adapt_tensor(value, target[key])
        if fitted is None:
            report.mismatched.append(f"{key} {tuple(value.shape)}->{tuple(target[key].shape)}")
            continue
        (report.loaded if fitted is value else report.adapted).append(key)
        new_state[key] = fitted.to(target[key].dtype)
    report.missing = [k for k in target if k not in new_state and not k.endswith("num_batches_tracked")]
    module.load_state_dict(new_state, strict=False)
    return report
