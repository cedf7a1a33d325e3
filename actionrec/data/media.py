"""``actionrec data resize`` / ``extract-frames``: the smaller copies that papers train from.

Decoding full-size video is what makes video training data-bound, so the papers' anchors train
from videos re-encoded to short side 256 (or 320) or from extracted JPEG frames
(``python benchmarks/prepare_throughput.py`` measures both against the originals).

- ``resize``: H.264 in MP4 (PyAV, libx264, yuv420p), the source's frame rate and frame count, a
  keyframe every second so that our seeking reader skips most of a long video; audio dropped.
- ``extract_frames``: one JPEG per frame, ``img_00001.jpg ...``.

Each output keeps its source's place under the root (``a/b.avi`` -> ``a/b.mp4`` or ``a/b/``)
and stays inside the output folder (a list entry that would lead out is refused, naming its
line). Work is resumable: an output is written under a temporary name, its record
(``.<name>.made.json`` beside it: the command, short side, encoder settings, source and frame
count) written, and the output renamed into place once its frame count has been checked (decoded
source = written output = the container's count, where the source has one). An output is skipped
only where its record says it was made from the same source with the same settings; otherwise it
is made again, its old copy and record removed first, so a run killed at any instant leaves no
output that a later run takes for finished when it is not. A corrupt source is reported and
skipped; an output that cannot be written is a one-line error.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from fractions import Fraction
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import av
from PIL import Image
from tqdm import tqdm

from ..config import data_file_text, read_data_file
from ..errors import ActionrecError, CliError, ConfigError, VideoError
from ..files import atomic_write, make_folder
from ..validate import InvalidInput, Range, inside, load_json, read_text
from .pool import in_pool
from .prepare import VIDEO_EXTENSIONS
from .video import SCALER_THREADS, X264_REPEATABLE, count_frames, open_video, rgb, short_side_size

if TYPE_CHECKING:  # the lists' module imports PyTorch, which spawned workers need not
    from .datasets import ListEntry

JPEG_QUALITY = 90
CRF = 20
COMMANDS = {"resize": "resize", "frames": "extract-frames"}  # mode -> its data subcommand
FRAME_TEMPLATE = "img_{:05d}.jpg"
SHORT_SIDE = Range(16, 4096, integer=True)  # pixels; past 4096 a frame takes gigabytes to encode
OWN_FILES = ("corrupt.txt", "labels.txt", "data.yaml")  # what convert writes beside the lists


class MediaError(ActionrecError):
    """An output that cannot be written, or inputs whose outputs would collide."""


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
    replaced: bool = False  # an output made otherwise (other settings, unrecorded) was replaced


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


def resize_video(source: str, output: str, short_side: int, *, crf: int = CRF) -> int:
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
                frame = frame.reformat(width=w, height=h, format="yuv420p",
                                       threads=SCALER_THREADS)
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
            Image.fromarray(rgb(frame, w, h)).save(
                os.path.join(output, FRAME_TEMPLATE.format(decoded)), quality=JPEG_QUALITY)
    written = count_frames(output, FRAME_TEMPLATE)
    _check_count(source, reported, decoded, written)
    return written


def _temporary(output: str) -> str:
    head, tail = os.path.split(output)
    return os.path.join(head, f".{tail}.part")


def _record(output: str) -> str:
    head, tail = os.path.split(output)
    return os.path.join(head, f".{tail}.made.json")


def _remove(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    elif os.path.lexists(path):
        os.unlink(path)


def _settings(job: Job, mode: str, short_side: int) -> dict:
    """What makes an output: the command, its settings and the source (path and, while it
    exists, size and modification time, as make judges: outputs stay finished once their sources
    are deleted)."""
    made = {"command": COMMANDS[mode], "short_side": short_side,
            "source": os.path.abspath(job.source)}
    if os.path.isfile(job.source):
        stat = os.stat(job.source)
        made["source_bytes"], made["source_mtime_ns"] = stat.st_size, stat.st_mtime_ns
    made.update({"crf": CRF} if mode == "resize" else {"jpeg_quality": JPEG_QUALITY,
                                                       "template": FRAME_TEMPLATE})
    return made


def _finished(job: Job, mode: str, made: dict) -> int | None:
    """The frame count of ``job``'s output if its record says it was ``made`` so and the output
    is still as recorded; None otherwise."""
    try:
        record = load_json(read_text(_record(job.output)), str(_record(job.output)))
    except InvalidInput:  # missing, damaged or not ours: made again
        return None
    if not isinstance(record, dict) or {k: record.get(k) for k in made} != made:
        return None
    frames = record.get("frames")
    if mode == "frames":
        intact = os.path.isdir(job.output) and count_frames(job.output, FRAME_TEMPLATE) == frames
    else:
        intact = os.path.isfile(job.output) and os.path.getsize(job.output) == record.get("bytes")
    return frames if intact else None


def _make(job: Job, mode: str, short_side: int) -> Done:
    made = _settings(job, mode, short_side)
    frames = _finished(job, mode, made)
    if frames is not None:
        return Done(job, frames, skipped=True)
    existing = os.path.lexists(job.output)
    if existing and os.path.isdir(job.output) != (mode == "frames"):
        raise MediaError(f"{job.output}: a {'folder' if mode == 'resize' else 'file'} is where "
                         f"the output of {job.source} goes; remove it or write elsewhere")
    os.makedirs(os.path.dirname(job.output) or ".", exist_ok=True)
    tmp = _temporary(job.output)
    _remove(tmp)  # left by a killed run
    convert = extract_frames if mode == "frames" else resize_video
    try:
        frames = convert(job.source, tmp, short_side)
    except BaseException as e:
        _remove(tmp)
        if isinstance(e, VideoError):
            return Done(job, 0, error=str(e))
        if isinstance(e, av.FFmpegError) and not isinstance(e, OSError):  # OSError: the output's
            return Done(job, 0, error=f"{job.source}: {e}")
        raise
    # the old output goes before the new record comes: no old output is ever recorded as new
    _remove(job.output)
    size = {} if mode == "frames" else {"bytes": os.path.getsize(tmp)}
    atomic_write(_record(job.output), json.dumps({**made, "frames": frames, **size}).encode(),
                 error=MediaError)
    os.replace(tmp, job.output)
    return Done(job, frames, replaced=existing)


def run_job(job: Job, mode: str, short_side: int) -> Done:
    """One output, skipped if finished with these settings, else written under a temporary name
    and renamed; a failure to write (or any other than the source's) is a one-line MediaError."""
    try:
        return _make(job, mode, short_side)
    except ActionrecError:
        raise
    except OSError as e:
        raise MediaError(f"{e.filename or job.output}: cannot be written: "
                         f"{e.strerror or e}") from None
    except Exception as e:
        raise MediaError(f"{job.source}: {COMMANDS[mode]} failed: {type(e).__name__}: "
                         f"{e}") from None


def run_jobs(jobs: list[Job], mode: str, short_side: int, *, workers: int = 1,
             progress: bool = True) -> list[Done]:
    """Every job, ``workers`` processes in parallel (1: in this process; ``pool.in_pool``), one
    progress bar; results in the order of ``jobs``. The first error stops the jobs not yet
    started."""
    bar = tqdm(total=len(jobs), unit="video", desc=mode, disable=not progress)
    make_one = partial(run_job, mode=mode, short_side=short_side)
    results: dict[int, Done] = {}
    try:
        finished = (enumerate(map(make_one, jobs)) if workers <= 1
                    else in_pool(make_one, jobs, workers))
        for i, done in finished:
            results[i] = done
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
    source: str  # the list file


@dataclass(frozen=True)
class Report:
    results: list[Done]
    lists: list[str]  # the lists written, paths
    data_file: str | None  # the data.yaml written for a data.yaml input

    def line(self) -> str:
        done = [r for r in self.results if not r.error]
        skipped = sum(r.skipped for r in done)
        replaced = sum(r.replaced for r in done)
        bad = len(self.results) - len(done)
        return (f"{len(self.results)} videos: {len(done) - skipped} converted"
                + (f" ({replaced} replacing outputs made otherwise)" if replaced else "")
                + f", {skipped} already done, {bad} corrupt"
                + (" (listed in corrupt.txt)" if bad else ""))


def _output_rel(rel: str, mode: str) -> str:
    stem = os.path.splitext(os.path.normpath(rel))[0]
    return stem if mode == "frames" else stem + ".mp4"


def _mirrors(mirrors: list[Mirror]) -> list[Mirror]:
    """Each list once; two different lists of one name (their outputs' lists would overwrite each
    other) or a list named as a file written beside them are refused."""
    kept: dict[str, Mirror] = {}
    for m in mirrors:
        if m.name in OWN_FILES:
            raise MediaError(f"{m.source}: a list named {m.name} collides with the {m.name} "
                             "written beside the outputs' lists; rename the list")
        other = kept.setdefault(m.name, m)
        if os.path.realpath(other.source) != os.path.realpath(m.source):
            raise MediaError(f"{other.source} and {m.source}: two lists named {m.name}, whose "
                             "outputs' lists would overwrite each other; rename one")
    return list(kept.values())


def plan(inputs: list[str], root: str | None,
         mode: str) -> tuple[list[tuple[str, str, str]], list[Mirror], dict | None]:
    """``(source, output path relative to out, where it was named)`` triples, the lists to
    mirror and, for a data.yaml input, its data section. An input is a folder (every video under
    it, relative to ``root`` or to the folder itself), a video file, a video list (paths relative
    to ``root``) or a prepared data.yaml."""
    from .datasets import parse_list

    pairs: dict[str, tuple[str, str]] = {}
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
                        pairs[full] = _output_rel(os.path.relpath(full, base), mode), item
            continue
        if path.suffix.lower() in VIDEO_EXTENSIONS:
            rel = os.path.relpath(item, root) if root else path.name
            pairs[item] = _output_rel(rel, mode), item
            continue
        if path.suffix in (".yaml", ".yml"):
            data = read_data_file(path)
            if data["kind"] != "video":
                raise ConfigError(f"{path}: data.kind is {data['kind']!r}; only video datasets "
                                  "can be resized or extracted")
            lists = [(data[k], data["root"]) for k in ("train_list", "val_list", "test_list")
                     if data[k]]
        elif root is None:
            raise CliError(f"{item}: a list's paths are relative to a root folder, and none was "
                           "given")
        else:
            lists = [(item, root)]
        for list_file, list_root in lists:
            entries = parse_list(list_file, kind="video")
            mirrors.append(Mirror(os.path.basename(list_file), entries, list_root, str(list_file)))
            for e in entries:
                pairs[os.path.join(list_root, e.path)] = (_output_rel(e.path, mode),
                                                          f"{list_file}:{e.line}")
    mirrors = _mirrors(mirrors)
    _check_outputs(pairs, {*OWN_FILES, *(m.name for m in mirrors)})
    return [(source, rel, where) for source, (rel, where) in pairs.items()], mirrors, data


def _check_outputs(pairs: dict[str, tuple[str, str]], beside: set[str]) -> None:
    """No two sources written to one output, none inside another's output (a frame folder is
    replaced whole when redone) and none onto a file written beside the lists."""
    clash: dict[str, str] = {}
    for source, (rel, _) in pairs.items():
        if clash.setdefault(rel, source) != source:
            raise MediaError(f"{source} and {clash[rel]} would both be written to {rel}")
        if rel in beside:
            raise MediaError(f"{source} would be written to {rel}, a file written beside the "
                             "lists; rename it")
    for rel, source in clash.items():
        for parent in map(str, Path(rel).parents):
            if parent in clash:
                raise MediaError(f"{source} would be written inside {parent}, the output of "
                                 f"{clash[parent]}; rename one")


def _write(path: str | os.PathLike, lines: list[str]) -> None:
    atomic_write(path, "".join(line + "\n" for line in lines).encode(), error=MediaError)


def convert(inputs: list[str], out: str | os.PathLike, mode: str, short_side: int, *,
            root: str | None = None, workers: int = 1, progress: bool = True) -> Report:
    """Resize (``mode`` "resize") or extract frames ("frames") of every input video into ``out``,
    then write the inputs' lists for the outputs (and a data.yaml for a data.yaml input)."""
    SHORT_SIDE.check(short_side, "short side")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise MediaError(f"{out}: a file; expected a folder for the outputs")
    pairs, mirrors, data = plan(inputs, root, mode)
    if not pairs:
        raise MediaError(f"no videos found in {', '.join(inputs)}")
    jobs = [Job(src, str(inside(out, rel, where))) for src, rel, where in pairs]
    for mirror in mirrors:
        if os.path.realpath(out / mirror.name) == os.path.realpath(mirror.source):
            raise MediaError(f"{mirror.source}: the outputs' list would overwrite this input "
                             "list; write the outputs to another folder")
    make_folder(out, error=MediaError)
    results = run_jobs(jobs, mode, short_side, workers=workers, progress=progress)
    done = {r.job.source: r for r in results if not r.error}
    _write(out / "corrupt.txt", [r.error for r in results if r.error])  # each starts with its path
    written = []
    for mirror in mirrors:
        lines = []
        for e in mirror.entries:
            r = done.get(os.path.join(mirror.root, e.path))
            if r is not None:
                rel = os.path.relpath(r.job.output, out)
                lines.append(f"{rel} {r.frames} {e.label}" if mode == "frames" else f"{rel} {e.label}")
        _write(out / mirror.name, lines)
        written.append(str(out / mirror.name))
    data_file = None
    if data is not None:
        try:
            shutil.copyfile(data["label_map"], out / "labels.txt")
        except OSError as e:
            raise MediaError(f"{e.filename}: cannot be copied to {out / 'labels.txt'}: "
                             f"{e.strerror or e}") from None
        new = {"root": str(out.resolve()), "kind": "rawframes" if mode == "frames" else "video",
               "label_map": "labels.txt"}
        new.update({k: os.path.basename(data[k]) for k in ("train_list", "val_list", "test_list")
                    if data[k]})
        if mode == "frames":
            new["frame_template"] = FRAME_TEMPLATE
        data_file = str(out / "data.yaml")
        _write(data_file, data_file_text(new, f"written by `actionrec data {COMMANDS[mode]}` from "
                                              f"{inputs[-1]}").splitlines())
    return Report(results, written, data_file)
