"""Long videos: the model's test sampling slid over a whole video, decoded as a stream.

Window ``k`` covers frames ``[k * S, k * S + W)`` (``W``, ``S``: the window and stride in
seconds at the video's frame rate) and is sampled as the config's test sampler samples a video of
``W`` frames (one clip, one centre crop), so each window is exactly the input the model was
tested on. Frames are decoded once, in order, scaled to the test short side while decoding, and
only those some open window still needs are kept, and freed heap memory is handed back every
``TRIM_EVERY`` windows: memory stays flat in the video's length.

A frame's index comes from its timestamp, so a corrupt stretch (packets the decoder rejects, or
frames that never come) leaves a gap instead of shifting every later window; the windows that
need a lost frame are reported with the gap's times and the rest are still predicted.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import torch
from tqdm import tqdm

from ..config import Config
from ..data.build import build_sampler, build_transform, test_short_side
from ..data.transforms import from_frames
from ..data.video import open_video, short_side_size, timestamps_identify_frames
from ..errors import ActionrecError, VideoError
from ..runtime import release_free_memory
from ..validate import Range
from .evaluate import check_finite, score_views

TRIM_EVERY = 8  # windows between giving freed heap memory back (runtime.release_free_memory)

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
    peak_held: int = 0  # most decoded frames held at once past the first window (flat memory)

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


def _frames(container, stream, short_side: int, gaps: list, packets: Iterable | None = None
            ) -> Iterator[tuple[int, np.ndarray]]:
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
            yield index, frame.to_ndarray(height=size[0], width=size[1], format="rgb24")


class Slider:
    """The windows of one opened video, each yielded once scored (in order), as its frames
    complete; ``fps``, ``window`` and ``stride`` are known once constructed, ``gaps``,
    ``peak_held`` and ``position`` (seconds decoded) as it runs. ``window`` and ``stride`` are
    checked (``check_window``); ``None`` takes the default. ``packets``: see ``_frames``."""

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
        self.run = _Runner(model, build_transform(cfg, train=False, crops=1),
                           device or torch.device("cpu"), batch, self.fps, name)

    def __iter__(self) -> Iterator[Window]:
        fps, span, step, run = self.fps, self.span, self.step, self.run
        offsets = self.sampler(span, train=False).reshape(-1)
        held: dict[int, np.ndarray] = {}  # frames some open window still needs
        first: list[tuple[int, np.ndarray]] = []  # the frames before window 0 (short videos)
        k, last = 0, -1  # next window to emit, last frame index seen
        for index, frame in _frames(self.container, self.stream, self.short_side, self.gaps,
                                    self.packets):
            if index <= last:
                continue  # a repeated timestamp
            if index > last + 1:
                self.gaps.append(((last + 1) / fps, index / fps, "frames missing"))
            last, self.position = index, index / fps
            if k == 0 and index < span:
                first.append((index, frame))
            if any((index - o) % step == 0 and (index - o) // step >= k for o in offsets):
                held[index] = frame
                self.peak_held = max(self.peak_held, len(held))
            while k * step + offsets[-1] <= index:  # window k has seen all of its frames
                yield from run.add(k * step, span, offsets, held)
                k += 1
                if k % TRIM_EVERY == 0:
                    release_free_memory()
                held = {i: f for i, f in held.items() if i >= k * step + offsets[0]}
                first = []
        if k == 0 and first:  # shorter than one window: one window over what there is
            n = first[-1][0] + 1
            yield from run.add(0, n, self.sampler(n, train=False).reshape(-1), dict(first))
        yield from run.flush()


def slide(model, cfg: Config, path: str, *, window: float | None = None,
          stride: float | None = None, device: torch.device | None = None,
          batch: int = 4, progress: bool = True,
          each_window: Callable[[], None] | None = None) -> Timeline:
    """The timeline of ``path``: softmax scores of ``model`` on every window; ``each_window``
    is called after each (a deadline check may raise there)."""
    container = open_video(path)
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


def seconds(t: float) -> str:
    return f"{int(t // 3600):d}:{int(t % 3600 // 60):02d}:{t % 60:06.3f}" if math.isfinite(t) else "-"


def write_overlay(timeline: Timeline, names: list[str], out: str) -> int:
    """Re-encode the video to ``out`` (H.264 MP4, its frame rate and size, even sides) with the
    label and score of the window centred nearest each frame drawn on it; returns the frames
    written. Frames nearest a window without a prediction get no label."""
    from PIL import Image, ImageDraw

    from ..data.video import X264_REPEATABLE

    centres = np.array([(w.start + w.end) / 2 for w in timeline.windows])
    midpoints = (centres[1:] + centres[:-1]) / 2  # frame time -> nearest centre, by bisection
    written = 0
    with open_video(timeline.path) as src, av.open(str(out), "w", format="mp4") as dst:
        stream = src.streams.video[0]
        rate = frame_rate(stream)
        video = None
        for index, frame in _frames(src, stream, 0, []):
            if video is None:
                h, w = frame.shape[:2]
                video = dst.add_stream("libx264", rate=rate)
                video.height, video.width, video.pix_fmt = h - h % 2, w - w % 2, "yuv420p"
                video.options = {"crf": "20", **X264_REPEATABLE}
            image = Image.fromarray(frame[: video.height, : video.width])
            win = timeline.windows[int(np.searchsorted(midpoints, index / timeline.fps))]
            if win.probs is not None:
                (name, prob), = top(win.probs, names, 1)
                draw = ImageDraw.Draw(image)
                text = f"{name} {100 * prob:.0f}%"
                box = draw.textbbox((4, 4), text)
                draw.rectangle((0, 0, box[2] + 4, box[3] + 4), fill=(0, 0, 0))
                draw.text((4, 4), text, fill=(255, 255, 255))
            out_frame = av.VideoFrame.from_image(image)
            out_frame.pts, out_frame.time_base = written, 1 / Fraction(rate)
            dst.mux(video.encode(out_frame))
            written += 1
        if video is not None:
            dst.mux(video.encode())
    return written


def window_row(w: Window, names: list[str], k: int) -> dict:
    """A window as the timeline files and live output give it: start, end, top-k (or None and
    why it is missing)."""
    return {"start": round(w.start, 3), "end": round(w.end, 3),
            "top": [{"class": c, "prob": p} for c, p in top(w.probs, names, k)]
            if w.probs is not None else None, **({"missing": w.missing} if w.missing else {})}


def timeline_report(timeline: Timeline, names: list[str], k: int) -> dict:
    """The timeline as ``<video>.timeline.json`` and the server give it: rate, window, stride,
    the whole-video top-k (mean over windows), gaps and a row per window."""
    probs = timeline.video_probs()
    return {"video": timeline.path, "fps": timeline.fps, "window_s": timeline.window,
            "stride_s": timeline.stride,
            "video_top": [{"class": c, "prob": p} for c, p in top(probs, names, k)]
            if probs is not None else [],
            "gaps": [{"start": round(a, 3), "end": round(b, 3), "reason": r}
                     for a, b, r in timeline.gaps],
            "windows": [window_row(w, names, k) for w in timeline.windows]}


def write_timeline(timeline: Timeline, names: list[str], k: int, stem: Path) -> dict:
    """``<stem>.json`` (``timeline_report``) and ``<stem>.csv`` (a row per window: start, end,
    then class and score of each of the top ``k``, at most the classes there are; ``missing`` when
    none)."""
    import csv
    import json

    k = min(TOPK.check(k, "topk"), len(names))
    report = timeline_report(timeline, names, k)
    stem.parent.mkdir(parents=True, exist_ok=True)
    report["files"] = [str(stem.with_name(f"{stem.name}.{ext}")) for ext in ("json", "csv")]
    with open(report["files"][1], "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["start", "end", *[f"{x}{i + 1}" for i in range(k) for x in ("class", "score")],
                      "missing"])
        for row in report["windows"]:
            cells = [c for t in row["top"] or [] for c in (t["class"], f"{t['prob']:.6f}")]
            out.writerow([row["start"], row["end"], *cells, *[""] * (2 * k - len(cells)),
                          row.get("missing", "")])
    Path(report["files"][0]).write_text(json.dumps(report, indent=2) + "\n")
    return report


def predict_timelines(checkpoint: str | Path, videos: list[str], *, out_dir: str | Path,
                      window: float | None = None, stride: float | None = None, smoothing: int = 1,
                      topk: int = 5, device: str = "auto", out_video: str | None = None,
                      progress: bool = True) -> Iterator[tuple[str, dict | None, str | None]]:
    """``(video, report, error)`` per video: its timeline written to ``out_dir/<stem>.timeline
    .json|.csv`` (``write_timeline``), scores smoothed over ``smoothing`` windows; a file that
    cannot be read gets an error and the next is still predicted. The numbers are checked
    (``check_window``, ``TOPK``, ``SMOOTH_WINDOWS``) before the checkpoint is loaded."""
    from .inference import load_checkpoint

    check_window(window, stride)
    TOPK.check(topk, "topk")
    SMOOTH_WINDOWS.check(smoothing, "smoothing")
    if out_video and len(videos) != 1:
        raise ActionrecError("an overlay video (out_video) is drawn for one video at a time")
    cfg, names, model, dev = load_checkpoint(checkpoint, device=device)
    for video in videos:
        try:
            timeline = slide(model, cfg, video, window=window, stride=stride, device=dev,
                             batch=cfg.test.batch_size, progress=progress)
        except VideoError as e:
            yield str(video), None, str(e)
            continue
        if timeline.video_probs() is None:
            yield str(video), None, (f"{video}: no window could be predicted: "
                                     f"{timeline.windows[0].missing}")
            continue
        smooth(timeline.windows, smoothing)
        report = write_timeline(timeline, names, topk,
                                Path(out_dir) / f"{Path(video).stem}.timeline")
        if out_video:
            report["out_video_frames"] = write_overlay(timeline, names, out_video)
        yield str(video), report, None
