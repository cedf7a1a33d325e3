"""Datasets of extracted feature sequences (StNet Table 1's setting: heads trained on the per-frame
features of a trained backbone).

A feature file is a ``.npy`` array ``(num_frames, C)`` (read with ``allow_pickle=False``); the list
uses the raw-frame format ``<file.npy> <num_frames> <label>``. Sampling picks ``T`` rows evenly
spaced (the segment centres of the configured sampler) in training as in testing: "features of 25
frames are evenly sampled from the whole feature sequence to train and test all the models"
(StNet Sec. 4.2, Table 1).
"""

from __future__ import annotations

import numpy as np
import torch

from ..errors import VideoError
from .datasets import ClipDataset


class FeatureDataset(ClipDataset):
    """A ClipDataset whose entries are feature files: ``clip`` is ``(T, C)`` when training and
    ``(V, T, C)`` for testing; unreadable files are replaced or skipped the same way."""

    def __init__(self, entries, root, sampler, *, train: bool, seed: int = 0,
                 on_error: str = "replace"):
        super().__init__(entries, root, sampler, transform=None, train=train, kind="features",
                         seed=seed, on_error=on_error)

    def load(self, index: int, rng: np.random.Generator) -> tuple[torch.Tensor, int]:
        path = self.path_of(index)
        try:
            features = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as e:
            raise VideoError(f"{path}: cannot read features: {e}") from None
        if features.ndim != 2:
            raise VideoError(f"{path}: expected a (frames, channels) array, got {features.shape}")
        idx = self.sampler(len(features), train=False, rng=rng)  # evenly, also when training
        clip = torch.from_numpy(features[idx].astype(np.float32))  # (K, T, C)
        return (clip[0] if self.train else clip), self.entries[index].label
