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
    """A ``size`` x ``size`` crop anywhere in the frame, not resized (GST Sec. 4.2, MSTI-Net
    Sec. 4.1: short side 256, random 224 crop; StNet: short side 331, random 299 crop)."""

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


class RandomResizedCrop:
    """Inception-style crop: an area fraction in ``area`` and an aspect ratio in ``ratio`` (drawn
    log-uniformly), anywhere in the frame, resized to ``size`` x ``size``; after 10 draws that do
    not fit, the largest centred square."""

    def __init__(self, size: int, area=(0.08, 1.0), ratio=(3 / 4, 4 / 3)):
        self.size, self.area, self.ratio = size, tuple(area), tuple(ratio)

    def _crop_box(self, h: int, w: int, rng) -> tuple[int, int, int, int]:
        for _ in range(10):
            target = h * w * rng.uniform(*self.area)
            aspect = np.exp(rng.uniform(np.log(self.ratio[0]), np.log(self.ratio[1])))
            cw, ch = round((target * aspect) ** 0.5), round((target / aspect) ** 0.5)
            if 0 < cw <= w and 0 < ch <= h:
                return int(rng.integers(h - ch + 1)), int(rng.integers(w - cw + 1)), ch, cw
        side = min(h, w)
        return (h - side) // 2, (w - side) // 2, side, side

    def __call__(self, clip, label, rng):
        box = self._crop_box(*clip.shape[-2:], rng)
        return _resize(_crop(clip, *box), (self.size, self.size)), label

    def __repr__(self) -> str:
        return f"RandomResizedCrop({self.size}, area={self.area}, ratio={self.ratio})"


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
    """Three squares of the short side along the longer side (start, middle, end), each resized to
    ``size`` x ``size``, stacked as a new leading view dim: STM Sec. 4.2 Inference, "scale the
    shorter side to 256 pixels and take three crops of 256x256 ... then resize them to 224x224"."""

    def __init__(self, size: int):
        self.size = size

    def __call__(self, clip, label, rng):
        h, w = clip.shape[-2:]
        s = min(h, w)
        if w >= h:
            boxes = [(0, x, s, s) for x in (0, (w - s) // 2, w - s)]
        else:
            boxes = [(y, 0, s, s) for y in (0, (h - s) // 2, h - s)]
        crops = [_resize(_crop(clip, *b), (self.size, self.size)) for b in boxes]
        return torch.stack(crops), label

    def __repr__(self) -> str:
        return f"ThreeCrop({self.size})"


class FiveCrop:
    """Four corners and centre, ``size`` x ``size``, stacked as a leading view dim (GST Table 4's
    "5 crops")."""

    def __init__(self, size: int):
        self.size = size

    def __call__(self, clip, label, rng):
        h, w = clip.shape[-2:]
        s = self.size
        if min(h, w) < s:
            raise ValueError(f"{type(self).__name__}({s}) needs a clip of at least that size, "
                             f"got {h}x{w}")
        boxes = [(0, 0), (0, w - s), (h - s, 0), (h - s, w - s), ((h - s) // 2, (w - s) // 2)]
        return torch.stack([_crop(clip, y, x, s, s) for y, x in boxes]), label

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.size})"


class TenCrop(FiveCrop):
    """FiveCrop plus the horizontal flip of each crop (TSN's 10-crop test)."""

    def __call__(self, clip, label, rng):
        five, label = super().__call__(clip, label, rng)
        return torch.cat([five, five.flip(-1)]), label


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


TRAIN_CROPS = ("multiscale", "random", "random_resized")
TEST_CROPS = {1: CenterCrop, 3: ThreeCrop, 5: FiveCrop, 10: TenCrop}


def train_transforms(size: int, *, short_side: int | None = None, crop: str = "multiscale",
                     scales=(1.0, 0.875, 0.75, 0.66), flip: bool = True,
                     label_swap: dict[int, int] | None = None) -> Compose:
    """The papers' training augmentation: short side ``short_side`` (default ``size * 8 / 7``,
    i.e. 256 for 224), a crop to ``size``, random flip, normalize. ``crop``: ``multiscale`` (TSN's
    corner crop with scale jitter over ``scales``: TSN, TSM, STM Sec. 4.2), ``random`` (a plain
    random ``size`` crop: GST, MSTI-Net, StNet) or ``random_resized`` (Inception style)."""
    short_side = short_side or round(size * 8 / 7)
    if crop not in TRAIN_CROPS:
        raise ValueError(f"crop must be one of {', '.join(TRAIN_CROPS)}, got {crop!r}")
    if crop == "multiscale":
        cropper = MultiScaleCrop(size, scales)
    else:
        cropper = RandomCrop(size) if crop == "random" else RandomResizedCrop(size)
    ops = [ResizeShortSide(short_side), cropper]
    if flip:
        ops.append(Flip(0.5, label_swap))
    return Compose(ops + [Normalize()])


def eval_transforms(size: int, *, short_side: int | None = None, crops: int = 1) -> Compose:
    """Short side ``short_side`` (default ``size * 8 / 7``, 256 for 224), then 1: the centre
    ``size`` crop; 3: three squares of the short side resized to ``size`` (ThreeCrop); 5: corners
    and centre; 10: those and their flips."""
    if crops not in TEST_CROPS:
        raise ValueError(f"crops must be 1, 3, 5 or 10, got {crops}")
    short_side = short_side or round(size * 8 / 7)
    return Compose([ResizeShortSide(short_side), TEST_CROPS[crops](size), Normalize()])


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
