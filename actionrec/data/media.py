"""``actionrec data resize`` / ``extract-frames``: the smaller copies that papers train from.

Decoding full-size video is what makes video training data-bound, so the papers' anchors train
from videos re-encoded to short side 256 (or 320) or from extracted JPEG frames
(``python benchmarks/prepare_throughput.py`` measures both against the originals).

- ``resize``: H.264 in MP4 (PyAV, libx264, yuv420p), the source's frame rate and frame count, a
  keyframe every second so that our seeking reader skips most of a long video; audio dropped.
- ``extract_frames``: one JPEG per frame, ``img_00001.jpg ...``.

Each output keeps its source's place under the root (``a/b.avi`` -> ``a/b.mp4`` or ``a/b/``).
Work is resumable: an output is written under a temporary name and renamed into place once its
frame count has been checked (decoded source = written output = the container's count, where the
source has one), so an output that exists is finished and is skipped; a run killed mid-file
leaves only a temporary, redone next time. A corrupt source is reported and skipped.
"""

from __future__ import annotations

import os
import shutil
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
from tqdm import tqdm

from ..config import data_file_text, read_data_file
from ..errors import CliError, ConfigError, VideoError
from ..files import atomic_write
from .datasets import ListEntry, parse_list
from .prepare import VIDEO_EXTENSIONS
from .video import X264_REPEATABLE, count_frames, open_video, short_side_size

JPEG_QUALITY = 90
COMMANDS = {"resize": "resize", "frames": "extract-frames"}  # mode -> its data subcommand
FRAME_TEMPLATE = "img_{:05d}.jpg"


@dataclass(frozen=True)
class Job:
    source: str  # path of the source video
    output: str  # path of the finished output (file or frame folder)


@dataclass(frozen=True)
class Done:
    job: Job
    frames: int  # of the output
    skipped: bool = False  # finished by an earlier run
    error: str = ""  # why the source was skipped (corrupt), empty when done


def _even(n: int) -> int:
    """yuv420p needs even sides."""
    return max(2, n + n % 2)


def _frames(container, path: str):
    try:
        yield from container.decode(container.streams.video[0])
    except av.FFmpegError as e:
        raise VideoError(f"{path}: decoding failed: {e}") from None


def _check_count(path: str, reported: int, decoded: int, written: int) -> None:
    if decoded == 0:
        raise VideoError(f"{path}: no decodable frames")
    if reported and decoded < reported:
        raise VideoError(f"{path}: container reports {reported} frames but only {decoded} decode "
                         "(truncated or damaged file)")
    if written != decoded:
        raise VideoError(f"{path}: {decoded} frames decoded but {written} written")


def resize_video(source: str, output: str, short_side: int, *, crf: int = 20) -> int:
    """Re-encode ``source`` to ``output`` (MP4) at ``short_side``; returns the frame count."""
    with open_video(source) as src:
        stream = src.streams.video[0]
        fps = stream.average_rate or stream.guessed_rate or Fraction(25)
        reported = max(int(stream.frames), 0)
        h, w = short_side_size(stream.codec_context.height, stream.codec_context.width, short_side)
        h, w = _even(h), _even(w)
        decoded = 0
        with av.open(output, "w", format="mp4") as dst:
            out = dst.add_stream("libx264", rate=fps)
            out.height, out.width, out.pix_fmt = h, w, "yuv420p"
            out.options = {"crf": str(crf), "g": str(max(1, round(fps))), **X264_REPEATABLE}
            for frame in _frames(src, source):
                frame = frame.reformat(width=w, height=h, format="yuv420p")
                frame.pts, frame.time_base = decoded, 1 / fps  # constant rate, in decoding order
                decoded += 1
                dst.mux(out.encode(frame))
            dst.mux(out.encode())
    with av.open(output) as check:
        written = sum(1 for p in check.demux(video=0) if p.size > 0)
    _check_count(source, reported, decoded, written)
    return written


def extract_frames(source: str, output: str, short_side: int) -> int:
    """JPEG frames of ``source`` into the folder ``output``; returns the frame count."""
    os.makedirs(output)
    with open_video(source) as src:
        stream = src.streams.video[0]
        reported = max(int(stream.frames), 0)
        h, w = short_side_size(stream.codec_context.height, stream.codec_context.width, short_side)
        decoded = 0
        for frame in _frames(src, source):
            decoded += 1
            frame.to_image(width=w, height=h).save(
                os.path.join(output, FRAME_TEMPLATE.format(decoded)), quality=JPEG_QUALITY)
    written = count_frames(output, FRAME_TEMPLATE)
    _check_count(source, reported, decoded, written)
    return written


def _temporary(output: str) -> str:
    head, tail = os.path.split(output)
    return os.path.join(head, f".{tail}.part")


def _remove(path: str) -> None:
    if os.path.isdir(path):
        shutil.rmtree(path)
    elif os.path.exists(path):
        os.unlink(path)


def run_job(job: Job, mode: str, short_side: int) -> Done:
    """One output, skipped if finished, else written under a temporary name and renamed."""
    if os.path.exists(job.output):
        frames = count_frames(job.output, FRAME_TEMPLATE) if mode == "frames" else 0
        return Done(job, frames, skipped=True)
    os.makedirs(os.path.dirname(job.output) or ".", exist_ok=True)
    tmp = _temporary(job.output)
    _remove(tmp)  # left by a killed run
    convert = extract_frames if mode == "frames" else resize_video
    try:
        frames = convert(job.source, tmp, short_side)
    except VideoError as e:
        _remove(tmp)
        return Done(job, 0, error=str(e))
    except BaseException:
        _remove(tmp)
        raise
    os.replace(tmp, job.output)
    return Done(job, frames)


def run_jobs(jobs: list[Job], mode: str, short_side: int, *, workers: int = 1,
             progress: bool = True) -> list[Done]:
    """Every job, ``workers`` processes in parallel (1: in this process), one progress bar;
    results in the order of ``jobs``."""
    bar = tqdm(total=len(jobs), unit="video", desc=mode, disable=not progress)
    results: dict[int, Done] = {}
    try:
        if workers <= 1:
            for i, job in enumerate(jobs):
                results[i] = run_job(job, mode, short_side)
                bar.update()
        else:
            with ProcessPoolExecutor(workers) as pool:
                futures = {pool.submit(run_job, job, mode, short_side): i
                           for i, job in enumerate(jobs)}
                for future in as_completed(futures):
                    results[futures[future]] = future.result()
                    bar.update()
    finally:
        bar.close()
    return [results[i] for i in range(len(jobs))]


# -- from the command's inputs to jobs, and back to lists ---------------------------------------------
@dataclass(frozen=True)
class Mirror:
    """A list of the inputs, to be written again for the outputs under the same file name."""
    name: str
    entries: list[ListEntry]
    root: str


@dataclass(frozen=True)
class Report:
    results: list[Done]
    lists: list[str]  # the lists written, paths
    data_file: str | None  # the data.yaml written for a data.yaml input

    def line(self) -> str:
        done = [r for r in self.results if not r.error]
        skipped = sum(r.skipped for r in done)
        bad = len(self.results) - len(done)
        return (f"{len(self.results)} videos: {len(done) - skipped} converted, {skipped} already "
                f"done, {bad} corrupt" + (" (listed in corrupt.txt)" if bad else ""))


def _output_rel(rel: str, mode: str) -> str:
    stem = os.path.splitext(os.path.normpath(rel))[0]
    return stem if mode == "frames" else stem + ".mp4"


def plan(inputs: list[str], root: str | None,
         mode: str) -> tuple[list[tuple[str, str]], list[Mirror], dict | None]:
    """``(source, output path relative to out)`` pairs, the lists to mirror and, for a data.yaml
    input, its data section. An input is a folder (every video under it, relative to ``root`` or
    to the folder itself), a video file, a video list (paths relative to ``root``) or a prepared
    data.yaml."""
    pairs: dict[str, str] = {}
    mirrors, data = [], None
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            base = root or item
            for dirpath, dirnames, filenames in os.walk(path):
                dirnames.sort()
                for name in sorted(filenames):
                    if name.lower().endswith(VIDEO_EXTENSIONS) and not name.startswith("."):
                        full = os.path.join(dirpath, name)
                        pairs[full] = _output_rel(os.path.relpath(full, base), mode)
            continue
        if path.suffix.lower() in VIDEO_EXTENSIONS:
            pairs[item] = _output_rel(os.path.relpath(item, root) if root else path.name, mode)
            continue
        if path.suffix in (".yaml", ".yml"):
            data = read_data_file(path)
            if data["kind"] != "video":
                raise ConfigError(f"{path}: data.kind is {data['kind']!r}; only video datasets "
                                  "can be resized or extracted")
            lists = [(data[k], data["root"]) for k in ("train_list", "val_list", "test_list")
                     if data[k]]
        elif root is None:
            raise CliError(f"{item}: a list's paths are relative to a root folder; give --root")
        else:
            lists = [(item, root)]
        for list_file, list_root in lists:
            entries = parse_list(list_file, kind="video")
            mirrors.append(Mirror(os.path.basename(list_file), entries, list_root))
            for e in entries:
                pairs[os.path.join(list_root, e.path)] = _output_rel(e.path, mode)
    clash = {}
    for source, rel in pairs.items():
        if clash.setdefault(rel, source) != source:
            raise CliError(f"{source} and {clash[rel]} would both be written to {rel}")
    return list(pairs.items()), mirrors, data


def convert(inputs: list[str], out: str | os.PathLike, mode: str, short_side: int, *,
            root: str | None = None, workers: int = 1, progress: bool = True) -> Report:
    """Resize (``mode`` "resize") or extract frames ("frames") of every input video into ``out``,
    then write the inputs' lists for the outputs (and a data.yaml for a data.yaml input)."""
    if short_side < 16:
        raise CliError(f"--short-side {short_side}: expected at least 16 pixels")
    pairs, mirrors, data = plan(inputs, root, mode)
    if not pairs:
        raise CliError(f"no videos found in {', '.join(inputs)}")
    out = Path(out)
    results = run_jobs([Job(src, str(out / rel)) for src, rel in pairs], mode, short_side,
                       workers=workers, progress=progress)
    done = {r.job.source: r for r in results if not r.error}
    corrupt = [r.error for r in results if r.error]  # each starts with its path
    atomic_write(out / "corrupt.txt", "".join(c + "\n" for c in corrupt).encode(), error=CliError)
    written = []
    for mirror in mirrors:
        lines = []
        for e in mirror.entries:
            r = done.get(os.path.join(mirror.root, e.path))
            if r is not None:
                rel = os.path.relpath(r.job.output, out)
                lines.append(f"{rel} {r.frames} {e.label}" if mode == "frames" else f"{rel} {e.label}")
        atomic_write(out / mirror.name, "".join(line + "\n" for line in lines).encode(),
                     error=CliError)
        written.append(str(out / mirror.name))
    data_file = None
    if data is not None:
        shutil.copyfile(data["label_map"], out / "labels.txt")
        new = {"root": str(out.resolve()), "kind": "rawframes" if mode == "frames" else "video",
               "label_map": "labels.txt"}
        new.update({k: os.path.basename(data[k]) for k in ("train_list", "val_list", "test_list")
                    if data[k]})
        if mode == "frames":
            new["frame_template"] = FRAME_TEMPLATE
        data_file = str(out / "data.yaml")
        atomic_write(data_file, data_file_text(new, f"written by `actionrec data {COMMANDS[mode]}` from "
                                                    f"{inputs[-1]}").encode(), error=CliError)
    return Report(results, written, data_file)
