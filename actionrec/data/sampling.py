"""Temporal sampling: which frame indices of a video make up a clip.

Every sampler maps ``(num_frames, train, rng)`` to an ``int64`` array of shape
``(num_clips, frames_per_clip)``. Training always draws one clip at random; testing draws
``num_clips`` clips spread evenly over the video, or, with ``test_offsets="random"``, at random
positions (STM Sec. 4.2: "we randomly sample 10 times from the full-length video"; reproducible,
since the dataset seeds ``rng`` per sample).

Short videos never crash a sampler. The rule, the same for all of them: positions are computed on
a continuous time axis and floored, so a video with fewer frames than a clip needs repeats frames
evenly (segments), and a window that runs past the end repeats the last frame (snippets, dense
clips).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def _check(num_frames: int) -> None:
    if num_frames < 1:
        raise ValueError(f"cannot sample from a video with {num_frames} frames")


TEST_OFFSETS = ("even", "random")


def _offsets(num_clips: int, train: bool, rng: np.random.Generator | None, size,
             test_offsets: str = "even") -> np.ndarray:
    """Fractions in [0, 1): random for training (and for ``test_offsets="random"``), else clip
    ``c`` of ``K`` at ``(c + 0.5) / K``."""
    if train or test_offsets == "random":
        if rng is None:
            raise ValueError("random sampling needs a random generator")
        return rng.random(size)
    return np.broadcast_to(((np.arange(num_clips) + 0.5) / num_clips)[:, None], size)


@dataclass(frozen=True)
class SegmentSampler:
    """TSN sparse sampling (Wang et al., 2016): split the video into ``num_segments`` equal
    segments and take one frame of each, at random when training, at the segment centre for one
    test clip; ``num_clips`` test clips take evenly spaced positions inside each segment."""

    num_segments: int
    num_clips: int = 1
    test_offsets: str = "even"  # even | random: where test clips sit

    @property
    def frames_per_clip(self) -> int:
        return self.num_segments

    def __call__(self, num_frames: int, *, train: bool, rng=None) -> np.ndarray:
        _check(num_frames)
        clips = 1 if train else self.num_clips
        u = _offsets(clips, train, rng, (clips, self.num_segments), self.test_offsets)
        pos = (np.arange(self.num_segments) + u) * (num_frames / self.num_segments)
        return np.minimum(pos.astype(np.int64), num_frames - 1)


@dataclass(frozen=True)
class SnippetSampler:
    """StNet snippets (He et al., 2019, Sec. 3): ``num_segments`` segments, ``snippet_len``
    consecutive frames from each, starting at random inside the segment when training and so that
    the snippet is centred in the segment when testing. Output frames are segment-major
    (``T * N`` indices), ready to be stacked into ``T`` super-images of ``N`` frames."""

    num_segments: int
    snippet_len: int = 5
    num_clips: int = 1
    test_offsets: str = "even"  # even | random: where test clips sit

    @property
    def frames_per_clip(self) -> int:
        return self.num_segments * self.snippet_len

    def __call__(self, num_frames: int, *, train: bool, rng=None) -> np.ndarray:
        _check(num_frames)
        clips = 1 if train else self.num_clips
        seg = num_frames / self.num_segments
        room = max(seg - self.snippet_len, 0.0)
        u = _offsets(clips, train, rng, (clips, self.num_segments), self.test_offsets)
        start = (np.arange(self.num_segments) * seg + u * room).astype(np.int64)
        idx = start[..., None] + np.arange(self.snippet_len)
        return np.minimum(idx, num_frames - 1).reshape(clips, -1)


@dataclass(frozen=True)
class DenseSampler:
    """Dense clips of 3D networks: ``clip_len`` frames ``stride`` apart. Training picks a random
    start among those that fit; test clip ``c`` of ``K`` is centred at ``(c + 0.5) / K`` of the
    video (clamped so that it fits, when it can)."""

    clip_len: int
    stride: int = 1
    num_clips: int = 1
    test_offsets: str = "even"  # even | random: where test clips sit

    @property
    def frames_per_clip(self) -> int:
        return self.clip_len

    def __call__(self, num_frames: int, *, train: bool, rng=None) -> np.ndarray:
        _check(num_frames)
        clips = 1 if train else self.num_clips
        span = (self.clip_len - 1) * self.stride + 1
        room = max(num_frames - span, 0)
        if train or self.test_offsets == "random":
            start = (_offsets(clips, train, rng, (clips,), self.test_offsets)
                     * (room + 1)).astype(np.int64)
        else:
            centre = (np.arange(clips) + 0.5) / clips * num_frames
            start = np.clip(np.floor(centre - span / 2), 0, room).astype(np.int64)
        idx = start[:, None] + np.arange(self.clip_len) * self.stride
        return np.minimum(idx, num_frames - 1)


# what a dataset takes (not torch.utils.data.Sampler, which orders the samples)
FrameSampler = SegmentSampler | SnippetSampler | DenseSampler
