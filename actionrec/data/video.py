"""Frame-exact readers for video files (PyAV) and raw-frame folders.

Both readers share one contract: ``read(indices)`` returns the frames at ``indices`` (any order,
repeats allowed) as one ``uint8`` array of shape ``(len(indices), H, W, 3)``, RGB. Index ``i`` of a
video is the ``i``-th frame the decoder outputs, counted from 0; index ``i`` of a frame folder is
the file ``template.format(start_index + i)``.
"""

from __future__ import annotations

import bisect
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import av
import numpy as np
from PIL import Image

from ..errors import VideoError

# Containers whose packet timestamps identify frames well enough to seek by. AVI is left out on
# purpose: XviD's packed B-frames give decoded frames non-monotonic timestamps.
_SEEKABLE_FORMATS = ("mov", "mp4", "matroska", "webm")


def timestamps_identify_frames(container) -> bool:
    """Whether the container's timestamps say which frame is which (see ``_SEEKABLE_FORMATS``);
    otherwise only the decoding order does."""
    return any(f in container.format.name for f in _SEEKABLE_FORMATS)


@dataclass(frozen=True)
class VideoInfo:
    path: str
    num_frames: int
    fps: float
    width: int
    height: int
    codec: str

    def as_dict(self) -> dict:
        return asdict(self)


# threads of PyAV's scaler: PyAV keeps one scaler per thread, and a forked process (a DataLoader
# worker) that inherits a multi-threaded one waits forever for threads it does not have
SCALER_THREADS = 1


def rgb(frame: av.VideoFrame, width: int | None = None, height: int | None = None) -> np.ndarray:
    """``frame`` as uint8 RGB ``(H, W, 3)``, scaled to ``width`` x ``height`` where given."""
    return frame.to_ndarray(format="rgb24", width=width, height=height, threads=SCALER_THREADS)


def short_side_size(height: int, width: int, short_side: int) -> tuple[int, int]:
    """(height, width) scaled so that the shorter side equals ``short_side`` (aspect kept)."""
    if height <= width:
        return short_side, max(1, round(width * short_side / height))
    return max(1, round(height * short_side / width)), short_side


def _check_indices(path: str, indices, num_frames: int) -> np.ndarray:
    idx = np.asarray(indices, dtype=np.int64).reshape(-1)
    if idx.size == 0:
        raise ValueError(f"{path}: no frame indices requested")
    bad = idx[(idx < 0) | (idx >= num_frames)]
    if bad.size:
        raise IndexError(f"{path}: frame index {int(bad[0])} is outside [0, {num_frames})")
    return idx


# libx264 settings under which the same frames always give the same bitstream. With macroblock-tree
# rate control on (x264's default), encoding the same 16 frames at crf 18 in one process gave up
# to 9 different bitstreams in 30 tries when other decoding ran between the encodes on a loaded
# CPU (threads=1 did not help); with mbtree=0, or constant qp, 1 in 30. Used by the generated
# dataset and by `data resize`, so that a dataset rebuilt from the same sources is the same.
X264_REPEATABLE = {"preset": "veryfast", "x264-params": "mbtree=0"}


class TooManyPixels(VideoError):
    """A video whose frames are larger than a reader's ``max_pixels``."""


# pixels per frame any reader takes unless told otherwise: twice 8K UHD (7680x4320)
MAX_PIXELS = 8192 * 8192


def open_video(path: str, *, threads: int = 0, max_pixels: int = MAX_PIXELS):
    """The open PyAV container of a video file (its first video stream set to ``threads``
    decoder threads, 0: FFmpeg's choice), or a VideoError saying why it cannot be read.
    ``max_pixels``: a stream whose frames are larger is a ``TooManyPixels``, and FFmpeg's decoders,
    those probing the file while it opens included, allocate no frame of much more (twice, and
    room for the decoders' padding to their block size), frames that grow part-way included."""
    if not os.path.exists(path):
        raise VideoError(f"{path}: file not found")
    if os.path.getsize(path) == 0:
        raise VideoError(f"{path}: empty file (0 bytes)")
    try:
        container = av.open(path, options=pixel_options(max_pixels))
    except (av.FFmpegError, OSError, UnicodeDecodeError) as e:
        raise VideoError(f"{path}: cannot open as a video: {e}") from None
    if not container.streams.video:
        container.close()
        raise VideoError(f"{path}: no video stream")
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"
    stream.codec_context.thread_count = threads
    bound_pixels(container, path, max_pixels)
    return container


def pixel_options(max_pixels: int) -> dict[str, str]:
    """FFmpeg's option that keeps its decoders from allocating a frame of much more than
    ``max_pixels`` (twice, and room for the decoders' padding to their block size)."""
    return {"max_pixels": str(2 * max_pixels + 2**16)}


def bound_pixels(container, path: str, max_pixels: int) -> None:
    """Hold the decoder of ``container``'s first video stream to ``max_pixels`` (frames that grow
    part-way included), or close it and raise ``TooManyPixels`` if its header says more."""
    ctx = container.streams.video[0].codec_context
    ctx.options = pixel_options(max_pixels)
    if ctx.width * ctx.height > max_pixels or not ctx.width * ctx.height:
        container.close()  # 0x0: opening could not decode a frame within the limit
        size = (f"{ctx.width}x{ctx.height} pixels" if ctx.width * ctx.height else
                "unknown size (the first does not decode within the limit)")
        raise TooManyPixels(f"{path}: frames of {size}; expected at most {max_pixels} "
                            f"pixels per frame")


COUNT_CHECK_EVERY = 32  # frames counted between calls of count_decoded's check


class _SeekFailed(Exception):
    """Decoding after a seek did not land on a frame of the timestamp table."""


class VideoReader:
    """Frame-exact random access to one video file.

    Sorted indices are read in one sequential decoding pass. Where the container keeps reliable
    timestamps (mp4/mov/mkv/webm) and a keyframe lies at least ``seek_min_gap`` frames ahead of
    the decoder's position but not past the next wanted frame, the reader seeks to that keyframe
    instead of decoding the gap; each decoded frame is then identified by its timestamp in a
    table built by demuxing (no decoding). If a seek lands anywhere unexpected the reader falls
    back to a sequential pass from the start, so seeking never changes which frame is returned.

    ``threads``: decoder threads, 0 lets FFmpeg choose (good for a single reader; use 1 inside
    DataLoader workers, which already run in parallel). ``max_pixels``: see ``open_video``.
    ``frames_decoded`` counts the frames the last ``read`` decoded.
    """

    def __init__(self, path: str | os.PathLike, *, seek_min_gap: int = 8, threads: int = 0,
                 max_pixels: int = MAX_PIXELS):
        self.path = str(path)
        self.seek_min_gap = seek_min_gap
        self.threads, self.max_pixels = threads, max_pixels
        self._num_frames: int | None = None
        self._table: tuple[list[int], dict[int, int], list[int]] | None = None
        self.frames_decoded = 0
        self._container = self._open()
        self._fresh = True  # nothing decoded from this container yet: no need to reopen it
        stream = self._container.streams.video[0]
        ctx = stream.codec_context
        self._fps = float(stream.average_rate or stream.guessed_rate or 0.0)
        self._size = (ctx.height, ctx.width)
        self._codec = ctx.name
        self._reported = int(stream.frames) if stream.frames > 0 else None
        self._num_frames = self._reported
        self._seekable = timestamps_identify_frames(self._container)

    # -- opening / closing ---------------------------------------------------------------------
    def _open(self):
        return open_video(self.path, threads=self.threads, max_pixels=self.max_pixels)

    def close(self) -> None:
        self._container.close()

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _restart(self) -> None:
        """Put the decoder at the first frame: reopen only if something was decoded already
        (a reader used once per sample, as in a dataset, opens its file once)."""
        if not self._fresh:
            self._container.close()
            self._container = self._open()
        self._fresh = False

    # -- metadata --------------------------------------------------------------------------------
    @property
    def reported_frames(self) -> int | None:
        """The container's frame count, None when it has none (e.g. mkv)."""
        return self._reported

    @property
    def num_frames(self) -> int:
        """Frame count from the container, or counted by decoding when the container has none."""
        if self._num_frames is None:
            self._num_frames = self.count_decoded()
        return self._num_frames

    @property
    def fps(self) -> float:
        """The stream's frame rate (average, else FFmpeg's guess), 0 where it has none."""
        return self._fps

    @property
    def stated_seconds(self) -> float | None:
        """The video stream's length as its container states it, None where it states none
        (MKV): known before a frame is decoded, unlike a count. (The file's duration is not
        used: an audio stream may make it longer.)"""
        stream = self._container.streams.video[0]
        if stream.duration and stream.time_base:
            return float(stream.duration * stream.time_base)
        return None

    def count_decoded(self, each: Callable[[int], None] | None = None) -> int:
        """Decode the whole stream and count its frames (also validates the file); ``each(n)``
        is called every ``COUNT_CHECK_EVERY`` frames with the count so far (a deadline or a
        length check may raise there). The count becomes ``num_frames``."""
        self._restart()
        n = 0
        try:
            for _ in self._container.decode(video=0):
                n += 1
                if each is not None and n % COUNT_CHECK_EVERY == 0:
                    each(n)
        except av.FFmpegError as e:
            raise VideoError(f"{self.path}: decoding failed after {n} frames: {e}") from None
        if n == 0:
            raise VideoError(f"{self.path}: no decodable frames")
        self._num_frames = n
        return n

    @property
    def info(self) -> VideoInfo:
        h, w = self._size
        return VideoInfo(self.path, self.num_frames, self._fps, w, h, self._codec)

    # -- reading -----------------------------------------------------------------------------------
    def read(self, indices, *, short_side: int | None = None) -> np.ndarray:
        """Frames at ``indices`` as uint8 RGB ``(len, H, W, 3)``; optionally resized (by the
        decoder's scaler) so that the short side is ``short_side``."""
        idx = _check_indices(self.path, indices, self.num_frames)
        wanted = np.unique(idx).tolist()
        h, w = self._size if short_side is None else short_side_size(*self._size, short_side)
        got: dict[int, np.ndarray] = {}
        try:
            try:
                for i, frame in self._decode(wanted):
                    got[i] = rgb(frame, w, h)
            except _SeekFailed:
                self._seekable = False
                got = {i: rgb(f, w, h) for i, f in self._decode(wanted)}
        except av.FFmpegError as e:
            raise VideoError(f"{self.path}: decoding failed: {e}") from None
        if len(got) < len(wanted):
            missing = wanted[len(got)]
            raise VideoError(
                f"{self.path}: stream ended before frame {missing}; the container reports "
                f"{self.num_frames} frames (truncated or damaged file?)")
        return np.stack([got[i] for i in idx.tolist()])

    def _decode(self, wanted: list[int]):
        """Yield ``(index, frame)`` for each wanted index (sorted, unique), seeking where useful."""
        self._restart()
        self.frames_decoded = 0
        frames = None  # iterator of (index, frame) from the current decoder position
        pos = 0  # index of the next frame the decoder will output
        for target in wanted:
            key = self._keyframe_at_or_before(target) if self._worth_seeking(pos, target) else None
            if frames is None or (key is not None and key - pos >= self.seek_min_gap):
                start = key if key is not None and key > 0 else 0
                frames = self._frames_from(start) if start else self._sequential()
            for i, frame in frames:
                self.frames_decoded += 1
                pos = i + 1
                if i == target:
                    yield i, frame
                    break
                if i > target:  # the seek overshot: the timestamp table is not trustworthy
                    raise _SeekFailed
            else:
                return

    def _worth_seeking(self, pos: int, target: int) -> bool:
        return self._seekable and target - pos >= self.seek_min_gap

    def _sequential(self):
        return enumerate(self._container.decode(video=0))

    def _frames_from(self, key: int):
        pts, index_of_pts, _ = self._timestamp_table()
        stream = self._container.streams.video[0]
        self._container.seek(pts[key], stream=stream, backward=True, any_frame=False)
        for frame in self._container.decode(stream):
            i = index_of_pts.get(frame.pts)
            if i is None:
                raise _SeekFailed
            yield i, frame

    def _keyframe_at_or_before(self, target: int) -> int | None:
        table = self._timestamp_table()
        if table is None:
            return None
        keys = table[2]
        j = bisect.bisect_right(keys, target) - 1
        return keys[j] if j >= 0 else None

    def _timestamp_table(self):
        """(sorted frame pts, pts -> index, sorted keyframe indices) by demuxing; None if unusable."""
        if self._table is None and self._seekable:
            with av.open(self.path) as c:
                packets = [(p.pts, p.is_keyframe) for p in c.demux(video=0)
                           if p.size > 0 and p.pts is not None]
            pts = sorted(p for p, _ in packets)
            index_of_pts = {p: i for i, p in enumerate(pts)}
            if len(index_of_pts) != self.num_frames:  # duplicate or missing timestamps
                self._seekable = False
                return None
            keys = sorted(index_of_pts[p] for p, k in packets if k)
            self._table = (pts, index_of_pts, keys)
        return self._table


def count_frames(folder: str | os.PathLike, template: str, start_index: int = 1) -> int:
    """Consecutive frame files ``template.format(start_index), (start_index + 1), ...`` in
    ``folder``, from one directory listing (a stat per frame is slow on network disks)."""
    names = set(os.listdir(folder))
    n = 0
    while template.format(start_index + n) in names:
        n += 1
    return n


class FrameFolderReader:
    """Raw frames stored as image files, one per frame: ``template.format(start_index + i)``.

    ``num_frames`` comes from the list file when known; otherwise consecutive files are counted
    from ``start_index`` until the first missing one.
    """

    def __init__(self, folder: str | os.PathLike, *, template: str = "img_{:05d}.jpg",
                 start_index: int = 1, num_frames: int | None = None):
        self.path = str(folder)
        self.template = template
        self.start_index = start_index
        if not os.path.isdir(self.path):
            raise VideoError(f"{self.path}: frame folder not found")
        if num_frames is None:
            num_frames = count_frames(self.path, template, start_index)
            if num_frames == 0:
                raise VideoError(f"{self.path}: no frame named {template.format(start_index)}")
        self.num_frames = num_frames

    def _file(self, i: int) -> str:
        return os.path.join(self.path, self.template.format(self.start_index + i))

    def _load(self, i: int, short_side: int | None) -> np.ndarray:
        try:
            with Image.open(self._file(i)) as im:
                im = im.convert("RGB")
                if short_side is not None:
                    h, w = short_side_size(im.height, im.width, short_side)
                    im = im.resize((w, h), Image.BILINEAR)
                return np.asarray(im)
        except (OSError, ValueError) as e:
            raise VideoError(f"{self._file(i)}: cannot read frame {i}: {e}") from None

    @property
    def info(self) -> VideoInfo:
        first = self._load(0, None)
        return VideoInfo(self.path, self.num_frames, 0.0, first.shape[1], first.shape[0],
                         Path(self.template).suffix.lstrip(".") or "image")

    def read(self, indices, *, short_side: int | None = None) -> np.ndarray:
        idx = _check_indices(self.path, indices, self.num_frames)
        got = {i: self._load(i, short_side) for i in np.unique(idx).tolist()}
        return np.stack([got[i] for i in idx.tolist()])

    def close(self) -> None:
        pass

    def __enter__(self) -> FrameFolderReader:
        return self

    def __exit__(self, *exc) -> None:
        pass


def open_clip_source(path: str | os.PathLike, **kwargs) -> VideoReader | FrameFolderReader:
    """A FrameFolderReader for a directory, else a VideoReader."""
    if os.path.isdir(path):
        return FrameFolderReader(path, **kwargs)
    return VideoReader(path, **kwargs)


def probe(path: str | os.PathLike, **kwargs) -> VideoInfo:
    with open_clip_source(path, **kwargs) as reader:
        return reader.info


def verify(path: str, kind: str = "video", *, num_frames: int | None = None,
           template: str = "img_{:05d}.jpg") -> None:
    """Decode every frame of a video (``kind`` video) or frame folder (rawframes); raises
    VideoError with the reason if it is bad, also where a container promises more frames than
    decode (a truncated file). ``actionrec data check`` runs it on each list entry."""
    if kind == "rawframes":
        with FrameFolderReader(path, template=template, num_frames=num_frames) as r:
            for i in range(r.num_frames):
                r.read([i])
        return
    with VideoReader(path) as r:
        reported = r.reported_frames
        decoded = r.count_decoded()
        if reported is not None and decoded < reported:
            raise VideoError(f"{path}: container reports {reported} frames but only {decoded} "
                             "decode (truncated or damaged file)")
