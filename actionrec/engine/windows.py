"""Long videos: the model's test sampling slid over a whole video, decoded as a stream.

Window ``k`` covers frames ``[k * S, k * S + W)`` (``W``, ``S``: the window and stride in
seconds at the video's frame rate) and is sampled as the config's test sampler samples a video of
``W`` frames (one clip, one centre crop), so each window is exactly the input the model was
tested on. Frames are decoded once, in order, scaled to the test short side while decoding, and
only those some open window still needs are kept (and, before the first window is complete, at
most ``SHORT_VIDEO_FRAMES`` in case the video is shorter than it); freed heap memory is handed
back every ``TRIM_EVERY`` windows: memory stays flat in the video's length.

A frame's index comes from its timestamp, so a corrupt stretch (packets the decoder rejects, or
frames that never come) leaves a gap instead of shifting every later window; the windows that
need a lost frame are reported with the gap's times and the rest are still predicted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction

import av
import numpy as np
import torch
from tqdm import tqdm

from ..config import Config
from ..data.build import build_sampler, build_transform, test_short_side
from ..data.transforms import from_frames
from ..data.video import MAX_PIXELS, open_video, rgb, short_side_size, timestamps_identify_frames
from ..errors import VideoError
from ..runtime import release_free_memory
from ..validate import Range
from .evaluate import check_finite, score_views

TRIM_EVERY = 8  # windows between giving freed heap memory back (runtime.release_free_memory)
# frames held for a video shorter than its first window, which is scored once the video ends;
# past this many, every second one held goes and half as many are kept from then on
SHORT_VIDEO_FRAMES = 1024

# What a caller (the CLI's flags, the server's query parameters) may ask for:
WINDOW_SECONDS = Range(0, 86400, lo_open=True)  # a window's length and its stride
TOPK = Range(1, 10_000, integer=True)  # classes listed per prediction, clipped to the model's
SMOOTH_WINDOWS = Range(1, 10_000, integer=True)  # windows each window's scores are averaged over


@dataclass
class Window:
    start: float  # seconds
    end: float
    probs: np.ndarray | None = None  # (K,) softmax scores; None when frames were lost
    missing: str = ""  # why there is no prediction


@dataclass
class Timeline:
    path: str
    fps: float
    window: float  # seconds
    stride: float
    windows: list[Window] = field(default_factory=list)
    gaps: list[tuple[float, float, str]] = field(default_factory=list)  # corrupt stretches
    peak_held: int = 0  # most frames held at once for windows' samples (flat memory)

    def video_probs(self) -> np.ndarray | None:
        """The whole video's scores: the mean over the predicted windows."""
        scored = [w.probs for w in self.windows if w.probs is not None]
        return np.mean(scored, axis=0) if scored else None


def check_window(window: float | None, stride: float | None) -> None:
    """``InvalidInput`` unless ``window`` and ``stride`` (seconds) are each ``None`` (the
    default) or in ``WINDOW_SECONDS``."""
    for value, name in ((window, "window"), (stride, "stride")):
        if value is not None:
            WINDOW_SECONDS.check(value, f"{name} (seconds)")


def default_window(cfg: Config, fps: float) -> float:
    """Seconds a window spans by default: a dense clip's own span; for sparse (segment, snippet)
    samplers half a second per segment, the spacing of 8 segments over a 4 s clip."""
    if cfg.data.sampler == "dense":
        return cfg.model.num_frames * cfg.data.stride / fps
    return 0.5 * cfg.model.num_frames


def smooth(windows: list[Window], k: int) -> None:
    """Centred moving average of each window's scores over ``k`` (in ``SMOOTH_WINDOWS``)
    predicted neighbours (in place; windows without a prediction are neither smoothed nor
    used)."""
    if SMOOTH_WINDOWS.check(k, "smoothing") == 1:
        return
    scored = [w for w in windows if w.probs is not None]
    probs = np.stack([w.probs for w in scored]) if scored else np.zeros((0, 0))
    for i, w in enumerate(scored):
        lo, hi = max(0, i - k // 2), min(len(scored), i + (k - 1) // 2 + 1)
        w.probs = probs[lo:hi].mean(0)


def frame_rate(stream) -> Fraction:
    """The stream's nominal rate (from its timestamps), not frames over duration: a file with a
    lost stretch keeps its rate."""
    return stream.guessed_rate or stream.average_rate or Fraction(25)


def decoded_frames(container, stream, short_side: int, gaps: list,
                   packets: Iterable | None = None) -> Iterator[tuple[int, np.ndarray]]:
    """``(frame index, RGB frame at the short side)`` of ``packets`` (default: the stream
    demuxed; ``None`` among them flushes the decoder): the index from the frame's timestamp where
    the container's timestamps identify frames (MP4, MKV, WebM), else its decoding
    position (AVI: XviD's packed B-frames give non-monotonic timestamps); packets the decoder
    rejects are recorded in ``gaps`` and skipped."""
    timed = timestamps_identify_frames(container)
    fps = float(frame_rate(stream))
    tb = float(stream.time_base) if stream.time_base else 1 / fps
    start = stream.start_time or 0
    size = None
    count = 0
    for packet in container.demux(stream) if packets is None else packets:
        try:
            decoded = stream.decode(packet)
        except av.FFmpegError as e:
            t = (packet.pts - start) * tb if getattr(packet, "pts", None) is not None \
                else count / fps
            gaps.append((t, t, f"undecodable packet: {e}"))
            continue
        for frame in decoded:
            if size is None:  # short side 0: as decoded
                size = short_side_size(frame.height, frame.width, short_side) if short_side \
                    else (frame.height, frame.width)
            index = round((frame.pts - start) * tb * fps) if timed and frame.pts is not None \
                else count
            count += 1
            yield index, rgb(frame, size[1], size[0])


class Slider:
    """The windows of one opened video, each yielded once scored (in order), as its frames
    complete; ``fps``, ``window`` and ``stride`` are known once constructed, ``gaps``,
    ``peak_held``, ``peak_first`` and ``position`` (seconds decoded) as it runs. ``window`` and ``stride`` are
    checked (``check_window``); ``None`` takes the default. ``packets``: see ``decoded_frames``."""

    def __init__(self, model, cfg: Config, container, name: str, *, window: float | None = None,
                 stride: float | None = None, device: torch.device | None = None, batch: int = 4,
                 packets: Iterable | None = None):
        self.sampler = build_sampler(cfg, num_clips=1)
        self.short_side = test_short_side(cfg)
        self.container, self.stream = container, container.streams.video[0]
        self.fps = float(frame_rate(self.stream))
        check_window(window, stride)
        window = default_window(cfg, self.fps) if window is None else window
        stride = window / 2 if stride is None else stride
        self.span = max(round(window * self.fps), self.sampler.frames_per_clip)
        self.step = max(1, round(stride * self.fps))
        self.window, self.stride = self.span / self.fps, self.step / self.fps
        self.gaps: list[tuple[float, float, str]] = []
        self.peak_held, self.position, self.packets = 0, 0.0, packets
        self.peak_first = 0  # most frames held before the first window completes
        self.run = _Runner(model, build_transform(cfg, train=False, crops=1),
                           device or torch.device("cpu"), batch, self.fps, name)

    def __iter__(self) -> Iterator[Window]:
        fps, span, step, run = self.fps, self.span, self.step, self.run
        offsets = self.sampler(span, train=False).reshape(-1)
        held: dict[int, np.ndarray] = {}  # frames some open window still needs
        first: dict[int, np.ndarray] = {}  # every thin-th frame before window 0 (short videos)
        thin, k, last = 1, 0, -1  # next window to emit, last frame index seen
        for index, frame in decoded_frames(self.container, self.stream, self.short_side,
                                           self.gaps, self.packets):
            if index <= last:
                continue  # a repeated timestamp
            if index > last + 1:
                self.gaps.append(((last + 1) / fps, index / fps, "frames missing"))
            last, self.position = index, index / fps
            if k == 0 and index < span and index % thin == 0:
                first[index] = frame
                if len(first) > SHORT_VIDEO_FRAMES:
                    thin *= 2
                    first = {i: f for i, f in first.items() if i % thin == 0}
                self.peak_first = max(self.peak_first, len(first))
            if any((index - o) % step == 0 and (index - o) // step >= k for o in offsets):
                held[index] = frame
                self.peak_held = max(self.peak_held, len(held))
            while k * step + offsets[-1] <= index:  # window k has seen all of its frames
                yield from run.add(k * step, span, offsets, held)
                k += 1
                if k % TRIM_EVERY == 0:
                    release_free_memory()
                held = {i: f for i, f in held.items() if i >= k * step + offsets[0]}
                first = {}
        if k == 0 and first:  # shorter than one window: one window over what there is
            n = last + 1
            wanted = self.sampler(n, train=False).reshape(-1)
            # thinned: each sampled frame is the held one at most thin - 1 frames before it
            held = {int(i): first[j] for i in wanted if (j := int(i) // thin * thin) in first}
            yield from run.add(0, n, wanted, held)
        yield from run.flush()


def slide(model, cfg: Config, path: str, *, window: float | None = None,
          stride: float | None = None, device: torch.device | None = None,
          batch: int = 4, progress: bool = True,
          each_window: Callable[[], None] | None = None,
          max_pixels: int = MAX_PIXELS) -> Timeline:
    """The timeline of ``path``: softmax scores of ``model`` on every window; ``each_window``
    is called after each (a deadline check may raise there). Frames over ``max_pixels`` are a
    VideoError (``open_video``)."""
    container = open_video(path, max_pixels=max_pixels)
    try:
        slider = Slider(model, cfg, container, str(path), window=window, stride=stride,
                        device=device, batch=batch)
        stream = slider.stream
        duration = float(stream.duration * stream.time_base) if stream.duration else (
            float(container.duration) / av.time_base if container.duration else None)
        timeline = Timeline(str(path), slider.fps, slider.window, slider.stride,
                            gaps=slider.gaps)
        with tqdm(total=round(duration) if duration else None, unit="s", desc="video",
                  disable=not progress, leave=False) as bar:
            for w in slider:
                timeline.windows.append(w)
                bar.update(max(0, int(slider.position) - bar.n))
                if each_window:
                    each_window()
        timeline.peak_held = slider.peak_held
        if not timeline.windows:
            raise VideoError(f"{path}: no decodable frames")
        return timeline
    finally:
        container.close()


class _Runner:
    """Windows batched through the model as their frames complete; ``add`` and ``flush`` return
    the windows finished, in order (one without a prediction waits for those before it)."""

    def __init__(self, model, transform, device, batch: int, fps: float, name: str):
        self.model, self.transform, self.device, self.batch = model, transform, device, batch
        self.fps, self.name = fps, name
        self.pending: list[tuple[Window, torch.Tensor | None]] = []

    def add(self, first: int, span: int, offsets: np.ndarray, frames: dict) -> list[Window]:
        fps = self.fps
        w = Window(first / fps, (first + span) / fps)
        wanted = first + offsets
        lost = [int(i) for i in wanted if int(i) not in frames]
        clip = None
        if lost:
            w.missing = (f"{len(lost)} of its {len(wanted)} frames lost (corrupt stretch at "
                         f"{lost[0] / fps:.2f}-{lost[-1] / fps:.2f} s)")
        else:
            clip = from_frames(np.stack([frames[int(i)] for i in wanted]))[None]
            clip, _ = self.transform(clip, 0, None)
            clip = clip.reshape(-1, *clip.shape[-4:])
        self.pending.append((w, clip))
        return self.flush() if sum(c is not None for _, c in self.pending) >= self.batch else []

    @torch.no_grad()
    def flush(self) -> list[Window]:
        scored = [(w, c) for w, c in self.pending if c is not None]
        if scored:
            clips = torch.stack([c for _, c in scored]).to(self.device)
            probs = score_views(self.model, clips).cpu()
            check_finite(probs, lambda i: f"{self.name} at {scored[i][0].start:.2f} s")
            for (w, _), p in zip(scored, probs.numpy(), strict=True):
                w.probs = p
        done, self.pending = [w for w, _ in self.pending], []
        return done


def top(probs: np.ndarray, names: list[str], k: int) -> list[tuple[str, float]]:
    """The ``k`` best classes and their scores (``k`` in ``TOPK``; all classes where there are
    fewer)."""
    order = np.argsort(-probs)[: min(TOPK.check(k, "topk"), len(names))]
    return [(names[i], float(probs[i])) for i in order]
