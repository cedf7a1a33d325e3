"""Reading weight files safely and loading (or inflating) ImageNet weights into video models.

Weight files are read with ``torch.load(weights_only=True)`` or safetensors: a ``.pth`` whose pickle
would construct arbitrary objects (and so could run code) is refused before anything runs, and a
file that is neither a ``torch.save`` archive nor a pickle is named as not a checkpoint. Only
finite floating-point tensors are loaded into a model's floating-point weights.
"""

from __future__ import annotations

import os
import pickle
import re
from dataclasses import dataclass, field

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import nn

from ..errors import CheckpointError
from ..validate import shown

MAX_NAME = 1024  # characters of a tensor's name


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
            return _named(path, load_file(path))
        except (SafetensorError, OSError) as e:
            raise CheckpointError(f"{path}: not a readable safetensors file: {e}") from None
    _check_format(path)
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        found = re.search(r"WeightsUnpickler error:\s*([^\n]*?)(?:\.\s|\n|$)", str(e))
        why = found.group(1) if found else _first_line(e)
        raise CheckpointError(f"{path}: refused: the file holds pickled objects other than "
                              f"tensors, which could run code when loaded ({why})") from None
    except Exception as e:  # whatever a damaged archive or pickle makes torch raise
        raise CheckpointError(f"{path}: not a readable PyTorch checkpoint: "
                              f"{type(e).__name__}: {_first_line(e)}") from None
    for key in ("state_dict", "model", "model_dict", "module"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not (isinstance(obj, dict) and all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                          for k, v in obj.items())):
        raise CheckpointError(f"{path}: expected a dict of tensors (a state dict: names to tensors)")
    if all(k.startswith("module.") for k in obj):
        obj = {k.removeprefix("module."): v for k, v in obj.items()}
    return _named(path, obj)


def _named(path: str, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``state``, refused where a tensor's name is not one line of printable text (at most
    ``MAX_NAME`` characters): names end up in messages."""
    for name in state:
        if not (name.isprintable() and len(name) <= MAX_NAME):
            raise CheckpointError(f"{path}: the tensor name {shown(name)} is not printable text "
                                  f"of at most {MAX_NAME} characters")
    return state


def _check_format(path: str) -> None:
    """``CheckpointError`` unless ``path`` starts as ``torch.save`` writes: a zip archive, or (the
    legacy format) a pickle of protocol 2 or later."""
    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except OSError as e:
        raise CheckpointError(f"{path}: cannot be read: {e.strerror or e}") from None
    zipped = head.startswith(b"PK\x03\x04")
    pickled = len(head) > 1 and head[0] == 0x80 and 2 <= head[1] <= 5  # PROTO 2..5
    if zipped or pickled:
        return
    what = "the file is empty" if not head else f"it starts with {head!r}"
    raise CheckpointError(f"{path}: not a PyTorch checkpoint: neither a zip archive (torch.save) "
                          f"nor a pickle; {what}")


def _first_line(e: Exception) -> str:
    return (str(e).strip().splitlines() or [""])[0]


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


def _through_adapters(module: nn.Module, state: dict[str, torch.Tensor]
                      ) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """``state`` with each weight of an adapter module replaced by what its ``adapt_weight``
    makes of it, and each key of the result -> the key of ``state`` it came from."""
    adapters = {name: m for name, m in module.named_modules() if hasattr(m, "adapt_weight")}
    out, origin = {}, {}
    for key, value in state.items():
        adapter = adapters.get(key.removesuffix(".weight")) if key.endswith(".weight") else None
        made = {key: value} if adapter is None else {
            key.removesuffix("weight") + k: v for k, v in adapter.adapt_weight(value).items()}
        out.update(made)
        origin.update(dict.fromkeys(made, key))
    return out, origin


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


def _few(keys: list[str]) -> str:
    return ", ".join(keys[:4]) + (f", ... ({len(keys)} in all)" if len(keys) > 4 else "")


def check_values(state: dict[str, torch.Tensor], source: str) -> None:
    """``CheckpointError`` naming the tensors of ``state`` (first few and the count) that are not
    floating-point or hold NaN or infinities: weights no model computes with."""
    def finite(t: torch.Tensor) -> bool:
        wide = t if t.dtype in (torch.float16, torch.bfloat16, torch.float32, torch.float64) \
            else t.float()
        return bool(torch.isfinite(wide).all())

    kinds = [f"{k} ({str(v.dtype).removeprefix('torch.')})" for k, v in state.items()
             if not v.is_floating_point()]
    if kinds:
        raise CheckpointError(f"{source}: {len(kinds)} tensors are not floating-point weights: "
                              f"{_few(kinds)}; expected float tensors")
    broken = [k for k, v in state.items() if not finite(v)]
    if broken:
        raise CheckpointError(f"{source}: {len(broken)} tensors hold NaN or infinite values: "
                              f"{_few(broken)}")


def load_pretrained(module: nn.Module, weights: str | os.PathLike | dict[str, torch.Tensor], *,
                    source: str = "weights") -> LoadReport:
    """Load every tensor of ``weights`` that fits ``module`` (directly, or inflated over time or
    stacked frames) and report the rest; a classifier of another size is reported and skipped.
    What would load into a floating-point weight must be finite floating-point (``check_values``;
    errors name ``source``, or the file ``weights``); nothing is loaded otherwise.

    A submodule that replaces a 2D conv with something else (GST's two paths, C3D's grouped 3D
    conv) defines ``adapt_weight(weight2d) -> {its own keys: tensors}``; the 2D weight stored
    under its name is passed through it.
    """
    if not isinstance(weights, dict):
        source = str(weights)
    given = read_weights(weights) if not isinstance(weights, dict) else dict(weights)
    tensors, origin = _through_adapters(module, given)
    target = module.state_dict()
    report = LoadReport()
    new_state = {}
    for key, value in tensors.items():
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
    check_values({origin[k]: given[origin[k]] for k in report.loaded + report.adapted
                  if target[k].is_floating_point()}, source)
    module.load_state_dict(new_state, strict=False)
    return report
