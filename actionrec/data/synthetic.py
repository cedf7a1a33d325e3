"""A generated dataset of real encoded videos whose classes only time can tell apart.

Classes come in time-reversal pairs (moving right / left, rotating clockwise / anticlockwise,
growing / shrinking, appearing / disappearing, two objects approaching / separating). Each video
is driven by a phase ``phi_t = (phi_0 + s * r * t) mod 1`` with ``phi_0 ~ U[0, 1)``, a speed ``r``
and the direction ``s = +1`` (first class of the pair) or ``-1`` (second). Because ``phi_0`` is
uniform, ``phi_t`` is uniform for every ``t`` and either sign, and every other parameter
(background, shape, colour, size, position, speed) is drawn the same way for both classes:

- each single frame has exactly the same distribution in both classes of a pair, and
- a video of the second class is distributed exactly as a time-reversed video of the first,

so any model that is invariant to frame order (per-frame features averaged, TSN) is at chance
within a pair, while a model of temporal order can reach ~100 %.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image

from ..errors import ActionrecError
from .pool import in_pool
from .video import X264_REPEATABLE

PAIRS = (
    ("move_right", "move_left"),
    ("rotate_cw", "rotate_ccw"),
    ("grow", "shrink"),
    ("appear", "disappear"),
    ("approach", "separate"),
)
CLASSES = tuple(name for pair in PAIRS for name in pair)


def write_video(path: str | os.PathLike, frames: Iterable[np.ndarray], *, fps: int = 25,
                codec: str = "libx264", options: dict[str, str] | None = None,
                pix_fmt: str = "yuv420p", container_options: dict[str, str] | None = None) -> None:
    """Encode uint8 RGB frames ``(H, W, 3)`` (an array ``(F, H, W, 3)`` or any iterable, e.g.
    a generator for a video too long to hold) into a video file with PyAV; ``options`` go to the
    encoder, ``container_options`` to the muxer (e.g. ``{"movflags": "faststart"}``)."""
    with av.open(str(path), "w", options=dict(container_options or {})) as container:
        stream = None
        for frame in frames:
            if stream is None:
                stream = container.add_stream(codec, rate=Fraction(fps))
                stream.height, stream.width = frame.shape[:2]
                stream.pix_fmt = pix_fmt
                stream.options = dict(options or {})
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        if stream is None:
            raise ValueError(f"{path}: no frames to write")
        container.mux(stream.encode())


# -- rendering -------------------------------------------------------------------------------------
def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """Smooth random low-contrast colour field plus fine grain, float (S, S, 3) in [0, 1]."""
    coarse = (rng.random((4, 4, 3)) * 255).astype(np.uint8)
    smooth = np.asarray(Image.fromarray(coarse).resize((size, size), Image.BICUBIC)) / 255.0
    grain = rng.normal(0.0, 0.03, (size, size, 1))
    return np.clip(0.35 + 0.3 * smooth + grain, 0.0, 1.0)


def _vivid(rng: np.random.Generator) -> np.ndarray:
    """A saturated colour (one channel high, one low), so objects stand out from the background."""
    colour = rng.uniform(0.0, 1.0, 3)
    hi, lo = rng.permutation(3)[:2]
    colour[hi], colour[lo] = rng.uniform(0.85, 1.0), rng.uniform(0.0, 0.15)
    return colour


def _soft(dist: np.ndarray) -> np.ndarray:
    """Anti-aliased inside mask from a signed distance (negative inside)."""
    return np.clip(0.5 - dist, 0.0, 1.0)


def _blob(xx, yy, cx, cy, radius, square: bool, wrap: float | None = None) -> np.ndarray:
    dx, dy = xx - cx, yy - cy
    if wrap is not None:  # horizontal wrap-around: the scene is a cylinder
        dx = (dx + wrap / 2) % wrap - wrap / 2
    if square:
        return _soft(np.maximum(np.abs(dx), np.abs(dy)) - radius)
    return _soft(np.hypot(dx, dy) - radius)


class _Scene:
    """Time-constant parameters of one video, all drawn independently of the direction."""

    def __init__(self, rng: np.random.Generator, size: int):
        s = size
        self.size = s
        self.yy, self.xx = np.mgrid[0:s, 0:s].astype(np.float64) + 0.5
        self.background = _background(rng, s)
        self.colour = _vivid(rng)
        self.colour2 = _vivid(rng)
        self.square = bool(rng.random() < 0.5)
        self.cx, self.cy = rng.uniform(0.3, 0.7, 2) * s
        self.radius = rng.uniform(0.12, 0.18) * s
        self.bar = (rng.uniform(0.28, 0.38) * s, rng.uniform(0.06, 0.09) * s)
        self.axis = rng.uniform(0.0, np.pi)

    def mask(self, pair: int, phi: float) -> list[tuple[np.ndarray, np.ndarray]]:
        """(alpha mask, colour) layers of the frame at phase ``phi`` for the given pair."""
        s, xx, yy = self.size, self.xx, self.yy
        if pair == 0:  # translation to the right as phi grows (wrapping around)
            return [(_blob(xx, yy, phi * s, self.cy, self.radius, self.square, wrap=s), self.colour)]
        if pair == 1:  # a bar rotating clockwise (image y points down) as phi grows
            theta = np.pi * phi
            half_len, half_w = self.bar
            dx, dy = xx - self.cx, yy - self.cy
            along = np.abs(dx * np.cos(theta) + dy * np.sin(theta)) - half_len
            across = np.abs(-dx * np.sin(theta) + dy * np.cos(theta)) - half_w
            return [(_soft(np.maximum(along, across)), self.colour)]
        if pair == 2:  # growing as phi grows
            radius = (0.05 + 0.25 * phi) * s
            return [(_blob(xx, yy, self.cx, self.cy, radius, self.square), self.colour)]
        if pair == 3:  # fading in as phi grows
            return [(phi * _blob(xx, yy, self.cx, self.cy, self.radius, self.square), self.colour)]
        # two objects approaching each other as phi grows
        half = (0.38 - 0.28 * phi) * s
        ox, oy = half * np.cos(self.axis), half * np.sin(self.axis)
        c = s / 2
        r = 0.7 * self.radius
        return [(_blob(xx, yy, c - ox, c - oy, r, self.square), self.colour),
                (_blob(xx, yy, c + ox, c + oy, r, not self.square), self.colour2)]

    def render(self, pair: int, phi: float) -> np.ndarray:
        img = self.background.copy()
        for alpha, colour in self.mask(pair, phi):
            a = alpha[..., None]
            img = img * (1 - a) + colour * a
        return (img * 255 + 0.5).astype(np.uint8)


def render_video(label: int, rng: np.random.Generator, *, frames: int, size: int,
                 phi0: float | None = None, advance: float | None = None) -> np.ndarray:
    """Frames ``(F, S, S, 3)`` uint8 of one video of class ``label``. The random draws do not
    depend on the label, so one seed gives the same scene for both classes of a pair;
    ``phi0`` (start phase) and ``advance`` (phase travelled over the clip) can be fixed."""
    pair, direction = divmod(label, 2)
    sign = 1.0 if direction == 0 else -1.0
    scene = _Scene(rng, size)
    drawn_phi0, drawn_advance = rng.random(), rng.uniform(0.6, 0.9)
    phi0 = drawn_phi0 if phi0 is None else phi0
    advance = drawn_advance if advance is None else advance
    phases = (phi0 + sign * advance * np.arange(frames) / max(frames - 1, 1)) % 1.0
    return np.stack([scene.render(pair, float(p)) for p in phases])


# -- dataset ---------------------------------------------------------------------------------------
# the SynthSpec fields its errors name, as a Python caller gives them
SPEC = {"pairs": "pairs", "size": "size", "frames": "frames", "videos": "videos"}


@dataclass(frozen=True)
class SynthSpec:
    videos: int = 600
    frames: int = 32
    size: int = 64
    seed: int = 0
    val_fraction: float = 0.2
    test_fraction: float = 0.2  # extra videos per class for test.txt, beyond ``videos``
    fps: int = 25
    pairs: tuple[int, ...] = tuple(range(len(PAIRS)))  # which reversal pairs to include

    @property
    def classes(self) -> list[str]:
        return [name for p in self.pairs for name in PAIRS[p]]

    def validate(self) -> None:
        if not self.pairs or not set(self.pairs) <= set(range(len(PAIRS))) \
                or len(set(self.pairs)) != len(self.pairs):
            raise ActionrecError(f"{{pairs}} must be distinct numbers in 0..{len(PAIRS) - 1}, "
                                 f"got {list(self.pairs)}", SPEC)
        if self.size < 16 or self.size % 2:
            raise ActionrecError(f"{{size}} must be even and >= 16 (h264 with 4:2:0), got "
                                 f"{self.size}", SPEC)
        if self.frames < 2:
            raise ActionrecError(f"{{frames}} must be >= 2, got {self.frames}", SPEC)
        n = len(self.classes)
        if self.videos // n < 2:
            raise ActionrecError(f"{{videos}} must be >= {2 * n} ({n} classes, each needs a train "
                                 f"and a val video), got {self.videos}", SPEC)


def _write_one(job: tuple[str, int, int, SynthSpec]) -> None:
    path, label, k, spec = job  # label: index into CLASSES (all pairs)
    rng = np.random.default_rng([spec.seed, label, k])
    frames = render_video(label, rng, frames=spec.frames, size=spec.size)
    write_video(path, frames, fps=spec.fps, options={"crf": "18", **X264_REPEATABLE})


def generate(out: str | os.PathLike, spec: SynthSpec = SynthSpec(), *, workers: int | None = None,
             overwrite: bool = False) -> dict:
    """Write videos, ``train.txt``, ``val.txt``, ``test.txt``, ``labels.txt`` and ``synth.json``
    into ``out``. ``spec.videos`` are split into train and val; the test split adds
    ``test_fraction`` as many fresh videos per class, so that a model chosen on val is scored on
    videos nothing has seen (and train and val stay those of a set made without it).

    Video ``k`` of class ``c`` depends only on ``(seed, c, k)``: the output is the same for a
    seed whatever the number of workers. Returns the summary written to ``synth.json``. A
    non-empty ``out`` is refused (old videos would stay beside the new ones) unless
    ``overwrite`` and it holds a dataset generated before (``synth.json``), which is deleted.
    """
    spec.validate()
    out = Path(out)
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise ActionrecError(f"{out} is not empty; generate into a new folder, or give "
                                 "{overwrite} to replace the dataset generated there before",
                                 {"overwrite": "overwrite=True"})
        if not (out / "synth.json").is_file():
            raise ActionrecError(f"{out} holds no generated dataset (no synth.json): not "
                                 "deleting it; generate into a new folder")
        shutil.rmtree(out)
    classes = spec.classes
    per_class = spec.videos // len(classes)
    n_val = max(1, round(per_class * spec.val_fraction))
    n_test = max(1, round(per_class * spec.test_fraction))
    jobs, lists = [], {"train": [], "val": [], "test": []}
    for label, name in enumerate(classes):
        (out / "videos" / name).mkdir(parents=True, exist_ok=True)
        for k in range(per_class + n_test):
            rel = f"videos/{name}/{k:04d}.mp4"
            jobs.append((str(out / rel), CLASSES.index(name), k, spec))
            split = "test" if k >= per_class else "val" if k >= per_class - n_val else "train"
            lists[split].append(f"{rel} {label}")
    workers = workers or min(len(jobs), os.cpu_count() or 1)
    if workers > 1:
        for _ in in_pool(_write_one, jobs, workers):
            pass
    else:
        for job in jobs:
            _write_one(job)
    for split, lines in lists.items():
        (out / f"{split}.txt").write_text("\n".join(lines) + "\n")
    (out / "labels.txt").write_text("\n".join(classes) + "\n")
    summary = {**asdict(spec), "videos": len(lists["train"]) + len(lists["val"]),
               "classes": classes,
               "reversal_pairs": [[2 * i, 2 * i + 1] for i in range(len(spec.pairs))],
               **{split: len(lines) for split, lines in lists.items()}}
    (out / "synth.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def format_summary(out: str | os.PathLike, summary: dict) -> str:
    """What ``generate`` wrote, in three lines (``actionrec data synth`` and the demo print it)."""
    classes = summary["classes"]
    return "\n".join([
        f"synthetic reversal-pair dataset in {out}: {summary['videos']} h264 videos "
        f"({summary['train']} train / {summary['val']} val) and {summary['test']} test videos, "
        f"{summary['frames']} frames of "
        f"{summary['size']}x{summary['size']}, seed {summary['seed']}",
        f"  {len(classes)} classes in {len(summary['reversal_pairs'])} time-reversal pairs: "
        + ", ".join(f"{classes[a]}/{classes[b]}" for a, b in summary["reversal_pairs"]),
        f"  lists: {out}/train.txt, {out}/val.txt, {out}/test.txt; label map: {out}/labels.txt"])
