"""`actionrec data resize` / `extract-frames` on the real clips: frame counts kept, lists
mirrored, corrupt input listed and skipped, and a run killed mid-way resumed without a half file."""

import os
import signal
import subprocess
import sys
import textwrap

import av
import pytest

from actionrec.config import read_config
from actionrec.data.build import build_dataset
from actionrec.data.datasets import parse_list
from actionrec.data.media import convert
from actionrec.data.video import VideoReader, count_frames
from tests.conftest import REPO, SHARED_CLIPS, run

# an h264 mp4, XviD avi with packed B-frames, an mkv without a frame count, a 1080p mp4
CLIPS = ["mmaction2/demo_demo.mp4", "paddlevideo/data_example.avi",
         "decord/flipping_a_pancake.mkv", "mmaction2/demo_demo_skeleton.mp4"]


def write_list(path, names):
    path.write_text("".join(f"{n} {i}\n" for i, n in enumerate(names)))
    return path


def test_resize_keeps_frames_and_rate(tmp_path, shared_data, capsys):
    videos = shared_data / "videos"
    lst = write_list(tmp_path / "train.txt", CLIPS)
    code, out, _ = run(capsys, "data", "resize", lst, "--root", videos, "--out", tmp_path / "r",
                       "--short-side", "96", "--workers", "2")
    assert code == 0 and "4 videos: 4 converted, 0 already done, 0 corrupt" in out
    entries = parse_list(tmp_path / "r/train.txt")
    assert [(e.path, e.label) for e in entries] == [
        (os.path.splitext(n)[0] + ".mp4", i) for i, n in enumerate(CLIPS)]
    for name, entry in zip(CLIPS, entries, strict=True):
        with av.open(str(videos / name)) as src, av.open(str(tmp_path / "r" / entry.path)) as dst:
            s, d = src.streams.video[0], dst.streams.video[0]
            assert d.average_rate == s.average_rate and d.codec_context.name == "h264"
            assert min(d.codec_context.width, d.codec_context.height) == 96
        with VideoReader(tmp_path / "r" / entry.path) as r:  # decoded, not only the header
            assert r.count_decoded() == r.reported_frames == SHARED_CLIPS[name]

    # a second run finds every output finished and redoes none
    code, out, _ = run(capsys, "data", "resize", lst, "--root", videos, "--out", tmp_path / "r",
                       "--short-side", "96")
    assert "4 videos: 0 converted, 4 already done, 0 corrupt" in out


def test_extract_frames_from_data_yaml(tmp_path, shared_data, capsys):
    """A prepared data.yaml in, a data.yaml of JPEG frames out, which the engine reads."""
    (tmp_path / "labels.txt").write_text("a\nb\n")
    write_list(tmp_path / "train.txt", CLIPS[1:3])
    (tmp_path / "val.txt").write_text(f"{CLIPS[0]} 1\n")
    (tmp_path / "data.yaml").write_text(
        f"data:\n  root: {shared_data / 'videos'}\n  train_list: train.txt\n  val_list: val.txt\n"
        "  label_map: labels.txt\n  kind: video\n")
    code, out, _ = run(capsys, "data", "extract-frames", tmp_path / "data.yaml", "--out",
                       tmp_path / "f", "--short-side", "64", "--workers", "1")
    assert code == 0 and "3 videos: 3 converted" in out
    train = parse_list(tmp_path / "f/train.txt", kind="rawframes")
    assert [(e.path, e.num_frames, e.label) for e in train] == [
        (os.path.splitext(n)[0], SHARED_CLIPS[n], i) for i, n in enumerate(CLIPS[1:3])]
    assert count_frames(tmp_path / "f" / train[1].path, "img_{:05d}.jpg") == SHARED_CLIPS[CLIPS[2]]
    cfg = read_config(None, ["data.size=32", "model.num_frames=2"],
                      data_file=tmp_path / "f/data.yaml")
    assert (cfg.data.kind, cfg.data.root) == ("rawframes", str((tmp_path / "f").resolve()))
    sample = build_dataset(cfg, "val")[0]
    assert sample["bad"] == [] and sample["label"] == 1 and sample["clip"].shape[-2:] == (32, 32)


def test_corrupt_input_listed_and_skipped(tmp_path, shared_data, capsys):
    videos = tmp_path / "videos"
    videos.mkdir()
    data = (shared_data / "videos" / CLIPS[0]).read_bytes()
    (videos / "truncated.mp4").write_bytes(data[: len(data) // 3])
    (videos / "garbage.mp4").write_bytes(b"not a video" * 100)
    (videos / "good.avi").write_bytes((shared_data / "videos" / CLIPS[1]).read_bytes())
    lst = write_list(tmp_path / "all.txt", ["truncated.mp4", "garbage.mp4", "good.avi"])
    code, out, _ = run(capsys, "data", "resize", lst, "--root", videos, "--out", tmp_path / "r",
                       "--short-side", "64", "--workers", "1")
    assert code == 0 and "3 videos: 1 converted, 0 already done, 2 corrupt" in out
    corrupt = (tmp_path / "r/corrupt.txt").read_text().splitlines()
    assert [line.split(":")[0] for line in corrupt] == [str(videos / "truncated.mp4"),
                                                         str(videos / "garbage.mp4")]
    assert (tmp_path / "r/all.txt").read_text() == "good.mp4 2\n"
    assert sorted(os.listdir(tmp_path / "r")) == [".good.mp4.made.json", "all.txt", "corrupt.txt",
                                                  "good.mp4"]  # no part


KILLER = textwrap.dedent("""
    import os, signal, sys
    from actionrec.data.media import convert

    point, renames, replace = sys.argv[1], [0], os.replace

    def renaming(src, dst):  # "before:K" / "after:K": around the K-th finished output's rename
        if not str(src).endswith(".part"):
            return replace(src, dst)
        renames[0] += 1
        if point == f"before:{renames[0]}":
            os.kill(os.getpid(), signal.SIGKILL)
        replace(src, dst)
        if point == f"after:{renames[0]}":
            os.kill(os.getpid(), signal.SIGKILL)

    os.replace = renaming
    convert(sys.argv[5:], sys.argv[2], sys.argv[3], 64, root=sys.argv[4], workers=1, progress=False)
    print("NOT KILLED")
""")


@pytest.mark.parametrize("mode", ["resize", "frames"])
@pytest.mark.parametrize("point", ["before:2", "after:2"])
def test_killed_run_resumes(tmp_path, shared_data, mode, point):
    """SIGKILL with the second output written but not yet renamed, or just renamed: the resumed
    run keeps what was finished, redoes the rest, and every output has its source's frames."""
    names = CLIPS[:3]
    lst = write_list(tmp_path / "l.txt", names)
    out = tmp_path / "out"
    killed = subprocess.run([sys.executable, "-c", KILLER, point, out, mode,
                             shared_data / "videos", lst], cwd=REPO, capture_output=True, text=True)
    assert killed.returncode == -signal.SIGKILL, killed.stdout + killed.stderr
    ext = ".mp4" if mode == "resize" else ""
    outputs = [out / (os.path.splitext(n)[0] + ext) for n in names]
    assert [p.exists() for p in outputs] == [True, point == "after:2", False]
    report = convert([str(lst)], out, mode, 64, root=str(shared_data / "videos"), progress=False)
    assert sum(r.skipped for r in report.results) == (2 if point == "after:2" else 1)
    for name, path in zip(names, outputs, strict=True):
        if mode == "resize":
            with VideoReader(path) as r:
                assert r.count_decoded() == SHARED_CLIPS[name]
        else:
            assert count_frames(path, "img_{:05d}.jpg") == len(os.listdir(path)) == SHARED_CLIPS[name]
    leftovers = [f for _, dirs, files in os.walk(out) for f in dirs + files if f.endswith(".part")]
    assert leftovers == []
    lines = (out / "l.txt").read_text().splitlines()
    assert len(lines) == 3 and all(" " in line for line in lines)
