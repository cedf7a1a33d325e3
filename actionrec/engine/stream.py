"""Live input: the timeline's windows (``windows.Slider``) over a source as it arrives.

A source is anything PyAV opens: ``-`` (stdin; a format readable without seeking: MPEG-TS, MKV,
NUT, fragmented MP4), an ``rtsp://``, ``http(s)://``, ``udp://`` ... URL, a V4L2 device
(``/dev/video*``) or a file, which is followed as it grows (FFmpeg's ``follow``), so a file still
being written is read to its end. Each window is yielded as soon as it is scored (batch 1).

How a source ends:
- it ends (stdin's end of file, the end of an HTTP body), or a followed file gets no new data for
  ``idle_timeout`` seconds: the end of the stream, after the decoder's last frames;
- a network source fails (an I/O error, or silence for ``idle_timeout``): it is reopened up to
  ``reconnect`` times in a row, 1, 2, 4 ... s apart (at most ``MAX_BACKOFF`` s); the windows
  after a reconnect continue the time axis where the last connection stopped. When every attempt
  fails: ``SourceDropped``.
"""

from __future__ import annotations

import sys
import time
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path

import av
import numpy as np
import torch

from ..config import Config
from ..data.video import MAX_PIXELS, bound_pixels, pixel_options
from ..errors import ActionrecError
from ..validate import Range
from .windows import SMOOTH_WINDOWS, Slider, Window, check_window

RECONNECT = Range(0, 100, integer=True)  # reopenings in a row of a dropped network source
IDLE_SECONDS = Range(0.001, 86400)  # silence after which a source has dropped or ended
MAX_BACKOFF = 60.0  # seconds between reconnect attempts, at most


class SourceDropped(ActionrecError):
    """A network source failed and could not be reopened."""


def is_network(source: str) -> bool:
    return "://" in source and not source.startswith("file:")


def open_source(source: str, idle_timeout: float):
    """The opened container; a source that cannot be opened raises ``ActionrecError`` naming
    it and why (``av.FFmpegError`` from network sources, which the caller may retry)."""
    micro = str(int(idle_timeout * 1e6))
    limit = pixel_options(MAX_PIXELS)
    if source == "-":
        return av.open(sys.stdin.buffer, "r", options=limit)
    if is_network(source):
        options = {"rtsp_transport": "tcp"} if source.startswith("rtsp") else {}
        return av.open(source, options={**options, **limit},
                       timeout=(idle_timeout, idle_timeout))
    if not Path(source).exists():
        raise ActionrecError(f"{source}: no such file or device")
    if source.startswith("/dev/video"):
        return av.open(source, format="v4l2", options=limit)
    return av.open(f"file:{Path(source).absolute()}",
                   options={"follow": "1", "rw_timeout": micro, **limit})


def _packets(container, stream, outcome: dict, idle_timeout: float) -> Iterator:
    """The stream's packets; an error that ends the source is kept in ``outcome["error"]`` (its
    reason) and ends them with ``None`` (flushing the decoder's last frames)."""
    try:
        yield from container.demux(stream)
    except av.ExitError:  # PyAV's timeout interrupts FFmpeg's read
        outcome["error"] = f"no data for {idle_timeout:g} s"
        yield None
    except av.FFmpegError as e:
        outcome["error"] = e.strerror or str(e)
        yield None


def live_windows(model, cfg: Config, source: str, *, window: float | None = None,
                 stride: float | None = None, device: torch.device | None = None,
                 reconnect: int = 3, idle_timeout: float = 10.0,
                 log: Callable[[str], None] = print) -> Iterator[Window]:
    """Scored windows of ``source`` until it ends (see the module docstring); ``log`` gets a
    line per drop and reconnect. The numbers are checked (``check_window``, ``RECONNECT``,
    ``IDLE_SECONDS``) before the source is opened."""
    check_window(window, stride)
    RECONNECT.check(reconnect, "reconnect")
    IDLE_SECONDS.check(idle_timeout, "idle timeout (seconds)")
    network, failures, offset = is_network(source), 0, 0.0
    while True:
        try:
            container = open_source(source, idle_timeout)
        except av.FFmpegError as e:
            if network and failures:  # reopening after a drop: _wait gives up in time
                failures = _wait(failures, reconnect, source, e.strerror or e, log)
                continue
            raise ActionrecError(f"{source}: cannot open as a video stream: {e}") from None
        outcome: dict = {}
        try:
            if not container.streams.video:
                raise ActionrecError(f"{source}: no video stream")
            bound_pixels(container, source, MAX_PIXELS)
            stream = container.streams.video[0]
            slider = Slider(model, cfg, container, source, window=window, stride=stride,
                            device=device, batch=1, packets=_packets(container, stream, outcome,
                                                            idle_timeout))
            for w in slider:
                failures = 0
                w.start, w.end = w.start + offset, w.end + offset
                yield w
        finally:
            container.close()
        error = outcome.get("error")
        if error is None or not network:
            return
        offset += slider.position + 1 / slider.fps
        log(f"{source}: dropped at {offset:.2f} s ({error})")
        failures = _wait(failures, reconnect, source, error, log)


def _wait(failures: int, reconnect: int, source: str, error, log) -> int:
    """``failures + 1`` after the back-off delay, or ``SourceDropped`` once ``reconnect``
    attempts in a row have failed."""
    if failures == reconnect:
        raise SourceDropped(f"{source}: {reconnect} reconnect attempt(s) failed (last: {error})")
    delay = min(2.0 ** failures, MAX_BACKOFF)
    log(f"{source}: reconnecting in {delay:.0f} s ({failures + 1}/{reconnect})")
    time.sleep(delay)
    return failures + 1


def causal_smooth(windows: Iterator[Window], k: int) -> Iterator[Window]:
    """Each window's scores averaged with those of the ``k - 1`` (``k`` in ``SMOOTH_WINDOWS``)
    predicted windows before it (a live stream has no future to centre on)."""
    recent: deque[np.ndarray] = deque(maxlen=SMOOTH_WINDOWS.check(k, "smoothing"))
    for w in windows:
        if w.probs is not None:
            recent.append(w.probs)
            w.probs = np.mean(recent, axis=0)
        yield w
