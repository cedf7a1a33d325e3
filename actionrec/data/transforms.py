"""Clip transforms on uint8 tensors.

Layout, everywhere in actionrec: a clip is ``(T, C, H, W)``; a multi-view clip (several temporal
clips and/or spatial crops of one video) is ``(V, T, C, H, W)``; a batch adds ``N`` in front
(``N, T, C, H, W``). 2D networks fold ``N * T`` into the batch with a free ``view``; 3D networks
permute to ``N, C, T, H, W`` once at their input.

Every transform is called as ``clip, label = t(clip, label, rng)`` and acts on the last three dims,
so it treats all frames (and views) of a clip alike: one crop/flip decision per clip. ``rng`` is a
``numpy.random.Generator``; the dataset seeds it per sample, so results are reproducible and do not
depend on the number of DataLoader workers.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .video import short_side_size

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def from_frames(frames: np.ndarray) -> torch.Tensor:
    """Decoded frames ``(..., H, W, 3)`` uint8 -> clip ``(..., 3, H, W)`` (a view, no copy)."""
    return torch.from_numpy(frames).movedim(-1, -3)


def _resize(clip: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    if tuple(clip.shape[-2:]) == tuple(size):
        return clip
    flat = clip.reshape(-1, *clip.shape[-3:])
    out = F.interpolate(flat, size=size, mode="bilinear", antialias=True, align_corners=False)
    return out.reshape(*clip.shape[:-2], *size)


def _crop(clip: torch.Tensor, top: int, left: int, h: int, w: int) -> torch.Tensor:
    return clip[..., top : top + h, left : left + w]


class Compose:
    def __init__(self, transforms: Sequence):
        self.transforms = list(transforms)

    def __call__(self, clip, label, rng):
        for t in self.transforms:
            clip, label = t(clip, label, rng)
        return clip, label

    def __repr__(self) -> str:
        return "Compose(" + ", ".join(repr(t) for t in self.transforms) + ")"


class ResizeShortSide:
    """Resize so that the shorter side is ``size`` (bilinear, antialiased, on uint8)."""

    def __init__(self, size: int):
        self.size = size

    def __call__(self, clip, label, rng):
        return _resize(clip, short_side_size(*clip.shape[-2:], self.size)), label

    def __repr__(self) -> str:
        return f"ResizeShortSide({self.size})"


class Resize:
    """Resize to exactly ``size`` x ``size``."""

    def __init__(self, size: int):
        self.size = size

    def __call__(self, clip, label, rng):
        return _resize(clip, (self.size, self.size)), label

    def __repr__(self) -> str:
        return f"Resize({self.size})"


class MultiScaleCrop:
    """TSN's corner cropping and scale jittering (Wang et al., 2016, Sec. 4.1).

    Crop width and height are each ``scale * min(H, W)`` for scales drawn from ``scales`` (at
    most ``max_distort`` steps apart, so aspect ratios stay moderate); the crop sits at one of 5
    fixed offsets (four corners and centre), 13 with ``more_fix_crop``, or anywhere when
    ``fix_crop`` is false; then it is resized to ``size`` x ``size``.
    """

    def __init__(self, size: int, scales=(1.0, 0.875, 0.75, 0.66), max_distort: int = 1,
                 fix_crop: bool = True, more_fix_crop: bool = True):
        self.size, self.scales, self.max_distort = size, tuple(scales), max_distort
        self.fix_crop, self.more_fix_crop = fix_crop, more_fix_crop

    def _crop_box(self, h: int, w: int, rng) -> tuple[int, int, int, int]:
        base = min(h, w)
        sizes = [int(base * s) for s in self.scales]
        sizes = [self.size if abs(s - self.size) < 3 else s for s in sizes]
        pairs = [(ch, cw) for i, ch in enumerate(sizes) for j, cw in enumerate(sizes)
                 if abs(i - j) <= self.max_distort]
        ch, cw = pairs[rng.integers(len(pairs))]
        if not self.fix_crop:
            return int(rng.integers(h - ch + 1)), int(rng.integers(w - cw + 1)), ch, cw
        hs, ws = (h - ch) // 4, (w - cw) // 4
        grid = [(0, 0), (0, 4), (4, 0), (4, 4), (2, 2)]
        if self.more_fix_crop:
            grid += [(2, 0), (2, 4), (4, 2), (0, 2), (1, 1), (1, 3), (3, 1), (3, 3)]
        gy, gx = grid[rng.integers(len(grid))]
        return gy * hs, gx * ws, ch, cw

    def __call__(self, clip, label, rng):
        box = self._crop_box(*clip.shape[-2:], rng)
        return _resize(_crop(clip, *box), (self.size, self.size)), label

    def __repr__(self) -> str:
        return f"MultiScaleCrop({self.size}, scales={self.scales})"


class RandomCrop:
    def __init__(self, size: int):
        self.size = size

    def __call__(self, clip, label, rng):
        h, w = clip.shape[-2:]
        if h < self.size or w < self.size:
            raise ValueError(f"RandomCrop({self.size}) needs a clip of at least that size, got {h}x{w}")
        top, left = int(rng.integers(h - self.size + 1)), int(rng.integers(w - self.size + 1))
        return _crop(clip, top, left, self.size, self.size), label

    def __repr__(self) -> str:
        return f"RandomCrop({self.size})"


class CenterCrop:
    def __init__(self, size: int):
        self.size = size

    def __call__(self, clip, label, rng):
        h, w = clip.shape[-2:]
        top, left = max(h - self.size, 0) // 2, max(w - self.size, 0) // 2
        return _crop(clip, top, left, min(self.size, h), min(self.size, w)), label

    def __repr__(self) -> str:
        return f"CenterCrop({self.size})"


class Flip:
    """Horizontal flip with probability ``p``; ``label_swap`` maps a class to its mirror class
    (e.g. Something-Something's "left to right" and "right to left")."""

    def __init__(self, p: float = 0.5, label_swap: dict[int, int] | None = None):
        self.p, self.label_swap = p, dict(label_swap or {})

    def __call__(self, clip, label, rng):
        if rng.random() < self.p:
            return clip.flip(-1), self.label_swap.get(label, label)
        return clip, label

    def __repr__(self) -> str:
        return f"Flip(p={self.p}, swaps={len(self.label_swap)})"


class ThreeCrop:
    """Three ``size`` x ``size`` crops along the longer side (start, middle, end), stacked as a
    new leading view dim; the test protocol of STM/TSM ("3 crops of 256, resized to 224")."""

    def __init__(self, size: int):
        self.size = size

    def __call__(self, clip, label, rng):
        h, w = clip.shape[-2:]
        s = self.size
        if min(h, w) < s:
            raise ValueError(f"ThreeCrop({s}) needs a clip of at least that size, got {h}x{w}")
        if w >= h:
            boxes = [((h - s) // 2, x, s, s) for x in (0, (w - s) // 2, w - s)]
        else:
            boxes = [(y, (w - s) // 2, s, s) for y in (0, (h - s) // 2, h - s)]
        return torch.stack([_crop(clip, *b) for b in boxes]), label

    def __repr__(self) -> str:
        return f"ThreeCrop({self.size})"


class TenCrop:
    """Four corners and centre, plus their horizontal flips, stacked as a leading view dim."""

    def __init__(self, size: int):
        self.size = size

    def __call__(self, clip, label, rng):
        h, w = clip.shape[-2:]
        s = self.size
        boxes = [(0, 0), (0, w - s), (h - s, 0), (h - s, w - s), ((h - s) // 2, (w - s) // 2)]
        crops = [_crop(clip, y, x, s, s) for y, x in boxes]
        return torch.stack(crops + [c.flip(-1) for c in crops]), label

    def __repr__(self) -> str:
        return f"TenCrop({self.size})"


class Normalize:
    """uint8 -> float32 ``(x / 255 - mean) / std`` per channel, contiguous."""

    def __init__(self, mean=IMAGENET_MEAN, std=IMAGENET_STD):
        self.mean = torch.tensor(mean, dtype=torch.float32).view(3, 1, 1) * 255
        self.std = torch.tensor(std, dtype=torch.float32).view(3, 1, 1) * 255

    def __call__(self, clip, label, rng):
        out = clip.to(torch.float32, memory_format=torch.contiguous_format)
        return out.sub_(self.mean).div_(self.std), label

    def __repr__(self) -> str:
        return "Normalize()"


def train_transforms(size: int, *, short_side: int | None = None, scales=(1.0, 0.875, 0.75, 0.66),
                   flip: bool = True, label_swap: dict[int, int] | None = None) -> Compose:
    """The papers' training augmentation: short side ``short_side`` (default ``size * 8 / 7``,
    i.e. 256 for 224), TSN multi-scale corner crop to ``size``, random flip, normalize."""
    short_side = short_side or round(size * 8 / 7)
    ops = [ResizeShortSide(short_side), MultiScaleCrop(size, scales)]
    if flip:
        ops.append(Flip(0.5, label_swap))
    return Compose(ops + [Normalize()])


def eval_transforms(size: int, *, short_side: int | None = None, crops: int = 1) -> Compose:
    """1 crop: resize short side, centre crop ``size``. 3 crops: short side ``size`` then three
    ``size`` crops (equivalent to 3 crops of 256 resized to 224). 10 crops: corners, centre, flips."""
    short_side = short_side or (size if crops == 3 else round(size * 8 / 7))
    crop = {1: CenterCrop, 3: ThreeCrop, 10: TenCrop}.get(crops)
    if crop is None:
        raise ValueError(f"crops must be 1, 3 or 10, got {crops}")
    return Compose([ResizeShortSide(short_side), crop(size), Normalize()])


_LEFT_RIGHT = re.compile(r"\b(left|right)\b", re.IGNORECASE)


def mirror_label_swap(class_names: Sequence[str]) -> dict[int, int]:
    """Pairs of classes whose names differ only by swapping the words "left" and "right" (the
    Something-Something classes that a horizontal flip turns into each other)."""
    index = {name: i for i, name in enumerate(class_names)}
    swap = {}
    for i, name in enumerate(class_names):
        mirrored = _LEFT_RIGHT.sub(lambda m: {"left": "right", "right": "left"}[m[1].lower()], name)
        j = index.get(mirrored)
        if j is not None and j != i:
            swap[i] = j
    return swap
