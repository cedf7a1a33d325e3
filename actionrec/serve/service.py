"""What the server does with an uploaded video, without the web layer: the checkpoint loaded
once, a video file checked against the limits, then scored by the test protocol (as
``actionrec predict``), optionally with its timeline (``engine/windows.py``) and the class
activation maps of its first view (``analysis/cam.py``).

Every refusal is a ``Refused`` carrying the HTTP status and a one-line reason; a request past
its deadline, or running when ``stop()`` is called, stops between windows (timeline) or before the
model runs (``DeadlinePassed``), and while counting the frames of a container that has no count.
A frame's size and the stated length are checked from the headers before any frame is decoded.
"""

from __future__ import annotations

import base64
import io
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..analysis.cam import blend, grad_cam, to_images
from ..config import Config
from ..data.video import TooManyPixels, VideoReader
from ..engine.recognizer import load
from ..engine.timeline_report import timeline_report
from ..engine.windows import smooth, top
from ..errors import VideoError
from ..models.registry import example_input, get_spec
from ..report.flops import count_macs, count_params


class Refused(Exception):
    """A request the server will not serve: ``status`` (HTTP) and a one-line ``reason``."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status, self.reason = status, reason


class DeadlinePassed(Exception):
    pass


@dataclass(frozen=True)
class Limits:
    max_upload_mb: float = 100.0  # request body, MiB
    max_duration_s: float = 600.0  # video length
    workers: int = 1  # requests computed at once
    queue: int = 4  # requests waiting beyond those; more get 503
    timeout_s: float = 120.0  # per request, waiting included
    max_pixels: int = 4096 * 4096  # per frame
    uploads: int = 8  # request bodies received at once; more get 503
    upload_timeout_s: float = 30.0  # a body's grace period before it must keep up the rate below
    upload_min_kib_s: float = 64.0  # a body's least mean rate after its grace period
    shutdown_s: float = 10.0  # on SIGTERM, requests still running get this long, then stop


def _png(image: np.ndarray) -> str:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


class Service:
    def __init__(self, checkpoint: str | Path, *, cfg: Config | None = None, device: str = "auto",
                 limits: Limits = Limits()):
        """The checkpoint with its own config and classes, or with ``cfg`` (its test protocol and
        label map, checked against the checkpoint as ``actionrec test`` checks them)."""
        self.recognizer = load(checkpoint, config=cfg, device=device)
        self.cfg, self.names = self.recognizer.config, self.recognizer.classes
        self.model, self.device = self.recognizer.model, self.recognizer.device
        self.limits, self.checkpoint = limits, Path(checkpoint).name
        # Grad-CAM hooks the shared model's layer4 and backpropagates into its parameters: two at
        # once would read each other's maps
        self.cam_lock = threading.Lock()
        self.stopping = threading.Event()
        self.info = self._describe()

    def stop(self) -> None:
        """Requests running now stop at their next check, as if past their deadline."""
        self.stopping.set()

    def _describe(self) -> dict:
        cfg, m = self.cfg, self.cfg.model
        spec = get_spec(m.name)
        example = example_input(spec, frames=m.num_frames, size=cfg.data.size,
                                options=m.options).to(self.device)
        return {"checkpoint": self.checkpoint, "model": m.name, "backbone": m.backbone,
                "classes": self.names,
                "input": {**asdict(self.recognizer.input),
                          "shape_per_view": list(example.shape[1:])},
                "params": count_params(self.model),
                "macs_per_view": count_macs(self.model, example),
                "macs_note": "multiply-accumulates per view (the papers' 'FLOPs')"}

    def check(self, path: str, deadline: float = float("inf")) -> dict:
        """The upload's length and size, or ``Refused`` (422 unreadable, 413 too large or too
        long). The length the container states is checked before a frame is decoded; a container
        without a frame count has its frames counted, stopping at ``deadline`` or once they are
        more than the longest video takes."""
        try:
            with VideoReader(path, max_pixels=self.limits.max_pixels) as reader:
                stated = reader.stated_seconds
                self._check_length(stated)
                if reader.reported_frames is None:
                    most = self.limits.max_duration_s * reader.fps
                    reader.count_decoded(each=lambda n: self._counting(n, most, deadline))
                info = reader.info
        except TooManyPixels as e:
            raise Refused(413, f"{str(e).replace(str(path), 'upload')} (--max-pixels)") from None
        except (VideoError, OSError, ValueError) as e:
            raise Refused(422, _unreadable(e, path)) from None
        duration = length_s(info.num_frames, info.fps, stated)
        self._check_length(duration)
        return {"frames": info.num_frames, "fps": info.fps, "duration_s": round(duration, 3),
                "width": info.width, "height": info.height, "codec": info.codec}

    def _counting(self, frames: int, most: float, deadline: float) -> None:
        self._check(deadline)
        if most and frames > most:
            raise Refused(413, f"the video is longer than {self.limits.max_duration_s:g} s (more "
                               f"than {most:.0f} frames counted), the most this server takes "
                               "(--max-duration)")

    def _check_length(self, seconds: float | None) -> None:
        if seconds is not None and seconds > self.limits.max_duration_s:
            raise Refused(413, f"the video is {seconds:.1f} s long; this server takes at most "
                               f"{self.limits.max_duration_s:g} s (--max-duration)")

    def predict(self, path: str, *, topk: int = 5, cam: bool = False, timeline: bool = False,
                window: float | None = None, stride: float | None = None, smoothing: int = 1,
                deadline: float = float("inf")) -> dict:
        """The response body: ``video``, ``top`` (the test protocol's views, as ``actionrec
        predict``), ``cam`` (maps of the first view for the top class, as PNG data URLs) and
        ``timeline`` (``predict --window``'s windows) when asked."""
        result = {"video": self.check(path, deadline)}
        try:
            views = self.recognizer.views(path, max_pixels=self.limits.max_pixels)
        except VideoError as e:
            raise Refused(422, _unreadable(e, path)) from None
        self._check(deadline)
        probs = self.recognizer.score(views, name="upload")
        result["top"] = [{"class": c, "prob": p} for c, p in top(probs, self.names, topk)]
        if cam:
            self._check(deadline)
            clip = views[0]
            with self.cam_lock:
                maps, index = grad_cam(self.model, clip)
            result["cam"] = {"class": self.names[index],
                             "frames": [_png(f) for f in blend(to_images(clip.cpu(), maps), maps)]}
        if timeline:
            result["timeline"] = self._timeline(path, topk, window, stride, smoothing, deadline)
        return result

    def _timeline(self, path, topk, window, stride, smoothing, deadline) -> dict:
        try:
            timeline = self.recognizer.timeline(path, window=window, stride=stride,
                                                each_window=lambda: self._check(deadline),
                                                max_pixels=self.limits.max_pixels)
        except VideoError as e:
            raise Refused(422, _unreadable(e, path)) from None
        smooth(timeline.windows, smoothing)
        return {k: v for k, v in timeline_report(timeline, self.names, topk).items()
                if k != "video"}  # the server's temporary file name is nobody's business

    def _check(self, deadline: float) -> None:
        if self.stopping.is_set() or time.monotonic() > deadline:
            raise DeadlinePassed


def length_s(frames: int, fps: float, stated: float | None) -> float:
    """Seconds of video: its frames at its rate, else the length its container states; a video
    with neither has no length that a limit could check (``Refused``, 422)."""
    if fps > 0:
        return frames / fps
    if stated is not None:
        return stated
    raise Refused(422, "the video states neither a frame rate nor a length: its duration "
                       "cannot be checked")


def _unreadable(error, path: str) -> str:
    """The reader's reason, naming the upload instead of the server's temporary file."""
    return f"not a readable video: {str(error).replace(str(path), 'upload')}"
