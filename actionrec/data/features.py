"""Datasets of extracted feature sequences (StNet Table 1's setting: heads trained on the per-frame
features of a trained backbone).

A feature file is a ``.npy`` array ``(num_frames, C)`` (read with ``allow_pickle=False``); the list
uses the raw-frame format ``<file.npy> <num_frames> <label>``. Sampling picks ``T`` rows with the
configured sampler (TSN segments: random in training, evenly spaced for testing, as the paper's 25
evenly sampled features).
"""

from __future__ import annotations

import os

import numpy as np
import torch
from torch.utils.data import Dataset

from ..errors import VideoError
from .datasets import ListEntry


class FeatureDataset(Dataset):
    """Same interface as ClipDataset: ``clip`` is ``(T, C)`` (train) or ``(V, T, C)`` (test)."""

    def __init__(self, entries: list[ListEntry], root: str | None, sampler, *, train: bool,
                 seed: int = 0, on_error: str = "replace"):
        if root is not None and not os.path.isdir(root):
            raise FileNotFoundError(f"{root}: data root not found")
        self.entries, self.root, self.sampler = list(entries), root, sampler
        self.train, self.seed, self.on_error = train, seed, on_error

    def __len__(self) -> int:
        return len(self.entries)

    def path_of(self, index: int) -> str:
        path = self.entries[index].path
        return path if self.root is None else os.path.join(self.root, path)

    def load(self, index: int, rng: np.random.Generator) -> torch.Tensor:
        path = self.path_of(index)
        try:
            features = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as e:
            raise VideoError(f"{path}: cannot read features: {e}") from None
        if features.ndim != 2:
            raise VideoError(f"{path}: expected a (frames, channels) array, got {features.shape}")
        idx = self.sampler(len(features), train=self.train, rng=rng)
        clip = torch.from_numpy(features[idx].astype(np.float32))  # (K, T, C)
        return clip[0] if self.train else clip

    def __getitem__(self, key) -> dict:
        epoch, index = key if isinstance(key, tuple) else (0, key)
        rng = np.random.default_rng([self.seed, epoch, index])
        try:
            return {"clip": self.load(index, rng), "label": self.entries[index].label,
                    "index": index, "bad": []}
        except VideoError as e:
            if self.on_error != "skip":
                raise
            return {"clip": None, "label": self.entries[index].label, "index": index,
                    "bad": [(self.path_of(index), str(e))]}
