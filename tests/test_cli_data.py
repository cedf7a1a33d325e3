import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from actionrec.data.synthetic import render_video, write_video
from tests.conftest import SHARED_CLIPS, index_frames, run


def test_console_script_help():
    exe = Path(sys.executable).with_name("actionrec")
    assert exe.is_file(), "console script 'actionrec' not installed next to the interpreter"
    out = subprocess.run([exe, "--help"], capture_output=True, text=True, check=True).stdout
    assert "data" in out and "demo" in out
    out = subprocess.run([exe, "data", "--help"], capture_output=True, text=True, check=True).stdout
    assert all(cmd in out for cmd in ("info", "check", "synth"))


def test_data_info_json(capsys, shared_data):
    paths = [str(shared_data / "videos" / name) for name in SHARED_CLIPS]
    code, out, _ = run(capsys, "data", "info", *paths, str(shared_data / "rawframes/mmaction2"),
                       "--json")
    assert code == 0
    rows = json.loads(out)
    assert [r["num_frames"] for r in rows] == [*SHARED_CLIPS.values(), 10]
    assert rows[-1]["width"] == 320 and {"fps", "height", "codec"} <= set(rows[0])
    code, out, err = run(capsys, "data", "info", paths[0], "/does/not/exist.mp4")
    assert code == 1 and "280" in out and "exist.mp4: file not found" in err


@pytest.fixture
def check_root(tmp_path, shared_data):
    root = tmp_path / "root"
    root.mkdir()
    frames = index_frames(60)
    write_video(root / "good.mp4", frames)
    shutil.copy(shared_data / "videos/mmaction2/tests_data_test.avi", root / "avi_named.mp4")
    (root / "zero.mp4").write_bytes(b"")
    (root / "notes.mp4").write_text("this is a text file with a video extension\n" * 50)
    data = (root / "good.mp4").read_bytes()
    (root / "cut_moov.mp4").write_bytes(data[: len(data) // 2])  # index at the end: gone
    textured = render_video(0, np.random.default_rng(0), frames=60, size=64)
    write_video(root / "fast.mp4", textured, container_options={"movflags": "faststart"})
    data = (root / "fast.mp4").read_bytes()
    (root / "cut_fast.mp4").write_bytes(data[: len(data) * 4 // 5])  # index kept, frames gone
    names = ["good.mp4", "avi_named.mp4", "zero.mp4", "notes.mp4", "cut_moov.mp4",
             "cut_fast.mp4", "missing.mp4"]
    (tmp_path / "list.txt").write_text("".join(f"{n} 0\n" for n in names))
    return root


def test_data_check_reports_each_bad_file(capsys, tmp_path, check_root):
    code, out, _ = run(capsys, "data", "check", str(tmp_path / "list.txt"), "--root", str(check_root))
    assert code == 1
    bad = {line.split()[1].rstrip(":").rsplit("/", 1)[-1]: line for line in out.splitlines()
           if line.startswith("BAD ")}
    assert set(bad) == {"zero.mp4", "notes.mp4", "cut_moov.mp4", "cut_fast.mp4", "missing.mp4"}
    assert "empty file" in bad["zero.mp4"] and "file not found" in bad["missing.mp4"]
    assert "cannot open" in bad["notes.mp4"]
    assert "container reports 60 frames but only" in bad["cut_fast.mp4"]
    assert "checked 7 entries" in out and "2 ok, 5 bad" in out


def test_data_check_good_list_and_bad_list_file(capsys, tmp_path, shared_data):
    (tmp_path / "ok.txt").write_text("demo_demo.mp4 6\ntests_data_test.avi 1\n")
    root = shared_data / "videos/mmaction2"
    code, out, _ = run(capsys, "data", "check", str(tmp_path / "ok.txt"), "--root", str(root))
    assert code == 0 and "2 ok, 0 bad" in out
    (tmp_path / "broken.txt").write_text("demo_demo.mp4\n")
    code, _, err = run(capsys, "data", "check", str(tmp_path / "broken.txt"), "--root", str(root))
    assert code == 2 and "broken.txt:1: wrong number of fields" in err
    assert err.count("\n") == 1  # one line, no traceback
    code, _, err = run(capsys, "data", "check", str(tmp_path / "ok.txt"), "--root", "/nowhere")
    assert code == 2 and "/nowhere: data root not found" in err


def test_data_check_rawframes(capsys, tmp_path, shared_data):
    (tmp_path / "f.txt").write_text("mmaction2 10 0\nmmaction2 12 0\n")
    code, out, _ = run(capsys, "data", "check", str(tmp_path / "f.txt"), "--root",
                       str(shared_data / "rawframes"), "--kind", "rawframes")
    assert code == 1 and out.count("BAD ") == 1 and "img_00011.jpg" in out


def test_data_synth(capsys, tmp_path):
    code, out, _ = run(capsys, "data", "synth", str(tmp_path / "s"), "--videos", "20",
                       "--frames", "8", "--size", "32", "--seed", "1", "--workers", "1")
    assert code == 0 and "20 h264 videos" in out and "move_right/move_left" in out
    assert len((tmp_path / "s/train.txt").read_text().splitlines()) == 10
    code, _, err = run(capsys, "data", "synth", str(tmp_path / "t"), "--size", "31")
    assert code == 2 and "--size must be even" in err


def test_module_entry_point():
    out = subprocess.run([sys.executable, "-m", "actionrec.cli", "--help"], capture_output=True,
                         text=True, check=True).stdout
    assert "usage: actionrec" in out


def test_data_check_hostile_entries_and_template(capsys, tmp_path, shared_data):
    """An entry leading out of the root is a BAD line (never read); a frame template without a
    field (which counted the same file for ever) or with a bad one is refused in one line."""
    root = tmp_path / "root"
    root.mkdir()
    shutil.copy(shared_data / "videos/mmaction2/tests_data_rawvideo_dataset_part_0.mp4", tmp_path / "out.mp4")
    (tmp_path / "l.txt").write_text("../out.mp4 0\n")
    code, out, _ = run(capsys, "data", "check", tmp_path / "l.txt", "--root", root)
    assert code == 1 and "'../out.mp4' leads outside" in out and "0 ok, 1 bad" in out
    (tmp_path / "f.txt").write_text("mmaction2 10 0\n")
    for template in ("img_00001.jpg", "{x}.jpg", "{"):
        with pytest.raises(SystemExit):
            run(capsys, "data", "check", tmp_path / "f.txt", "--root", shared_data / "rawframes",
                "--kind", "rawframes", "--template", template)
        err = capsys.readouterr().err
        assert "argument --template: " in err and "expected a str.format template" in err
