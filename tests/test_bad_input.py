"""Bad input through the CLI, one case per row: each must exit non-zero with one line on stderr
that names the culprit, and no traceback."""

import math
import os
import subprocess
import sys
import time

import pytest

from actionrec.config import dump_config
from actionrec.engine.train import train
from tests.conftest import REPO, edit_checkpoint, run, sigint_default, tiny_config


@pytest.fixture(scope="module")
def setup(synth_small, trained_tsn, tmp_path_factory):
    """Files the cases point at: a config, bad lists, edited checkpoints, a finished work dir."""
    d = tmp_path_factory.mktemp("bad_input")
    cfg = d / "cfg.yaml"
    cfg.write_text(dump_config(tiny_config(synth_small, d / "work", "train.epochs=1")))
    (d / "base_list.yaml").write_text(f"_base_: [{cfg}]\n")
    (d / "corrupt.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 100)
    (d / "all_bad.txt").write_text(f"{d / 'corrupt.mp4'} 0\n{d / 'missing.mp4'} 1\n" * 6)
    (d / "utf16.txt").write_bytes("videos/a.mp4 0\n".encode("utf-16"))
    (d / "labels_other.txt").write_text("\n".join(f"class{i}" for i in range(10)) + "\n")
    (d / "a_file").write_text("")

    def nan(w):
        w["fc.weight"].fill_(math.nan)

    edit_checkpoint(trained_tsn, d / "nan.safetensors", tensors=nan)
    edit_checkpoint(trained_tsn, d / "clips.safetensors",
                    config=lambda c: c["test"].update(clips=100000))
    edit_checkpoint(trained_tsn, d / "gst.safetensors",
                    config=lambda c: c["model"].update(name="gst"))
    edit_checkpoint(trained_tsn, d / "invalid.safetensors",
                    config=lambda c: c["train"].update(batch_size=0))
    train(tiny_config(synth_small, d / "work", "train.epochs=1"))  # a finished run
    return {"dir": d, "cfg": cfg, "ckpt": trained_tsn, "synth": synth_small}


NEW = "--work-dir {dir}/new --overwrite"  # cases that get as far as training may save there
VIDEO = "{synth}/videos/move_right/0000.mp4"
# (case, the command line with the fixture's paths filled in, what the line must name)
CASES = [
    ("batch 0", f"train {{cfg}} {NEW} --set train.batch_size=0", "train.batch_size: 0"),
    ("batch -1", f"train {{cfg}} {NEW} --set train.batch_size=-1", "train.batch_size: -1"),
    ("frames 0", f"train {{cfg}} {NEW} --set model.num_frames=0", "model.num_frames: 0"),
    ("accumulate 0", f"train {{cfg}} {NEW} --set train.accumulate=0", "train.accumulate: 0"),
    ("eval_every 0", f"train {{cfg}} {NEW} --set train.eval_every=0", "train.eval_every: 0"),
    ("log_every 0", f"train {{cfg}} {NEW} --set train.log_every=0", "train.log_every: 0"),
    ("size 0", f"train {{cfg}} {NEW} --set data.size=0", "data.size: 0"),
    ("workers -1", f"train {{cfg}} {NEW} --set data.workers=-1", "data.workers: -1"),
    ("scales []", f"train {{cfg}} {NEW} --set data.scales=[]", "data.scales: []"),
    ("stride -2", f"train {{cfg}} {NEW} --set data.stride=-2", "data.stride: -2"),
    ("epochs 0", f"train {{cfg}} {NEW} --set train.epochs=0", "train.epochs: 0"),
    ("keep_last 0", f"train {{cfg}} {NEW} --set train.keep_last=0", "train.keep_last: 0"),
    ("lr_steps type", f"train {{cfg}} {NEW} --set train.lr_steps=30", "train.lr_steps"),
    ("lr_steps items", f"train {{cfg}} {NEW} --set train.lr_steps=[a]", "train.lr_steps"),
    ("_base_ list", f"train {{dir}}/base_list.yaml {NEW}", "_base_: expected one file name"),
    ("frame template", f"train {{cfg}} {NEW} --set data.frame_template=img.jpg",
     "data.frame_template"),
    ("test clips 0", "test {cfg} --checkpoint {ckpt} --set test.clips=0", "test.clips: 0"),
    ("test batch 0", "test {cfg} --checkpoint {ckpt} --set test.batch_size=0",
     "test.batch_size: 0"),
    ("finished work dir", "train {cfg}", "use --resume to continue it, another --work-dir, or "
                                          "--overwrite"),
    ("resume lr", "train {cfg} --resume --set train.lr=0.5 train.epochs=2",
     "train.lr: 0.01 -> 0.5"),
    ("resume optimizer", "train {cfg} --resume --set train.optimizer=adam",
     "train.optimizer: 'sgd' -> 'adam'"),
    ("val list unreadable", f"train {{cfg}} {NEW} --set data.val_list={{dir}}/all_bad.txt",
     "data.val_list {dir}/all_bad.txt could be read"),
    ("train list unreadable", f"train {{cfg}} {NEW} --set data.train_list={{dir}}/all_bad.txt",
     "data.train_list {dir}/all_bad.txt"),
    ("predict NaN", f"predict {VIDEO} --checkpoint {{dir}}/nan.safetensors", "non-finite scores"),
    ("test NaN", "test {cfg} --checkpoint {dir}/nan.safetensors", "non-finite scores"),
    ("metadata clips", f"predict {VIDEO} --checkpoint {{dir}}/clips.safetensors",
     "metadata test.clips=100000 is out of range"),
    ("metadata invalid", f"predict {VIDEO} --checkpoint {{dir}}/invalid.safetensors",
     "invalid.safetensors metadata: train.batch_size: 0 is not allowed"),
    ("test other model", "test {cfg} --checkpoint {dir}/gst.safetensors",
     "model.name: 'gst' (checkpoint) vs 'tsn' (config)"),
    ("test other labels", "test {cfg} --checkpoint {ckpt} --set "
                          "data.label_map={dir}/labels_other.txt", "first difference at class 0"),
    ("utf-16 list", f"train {{cfg}} {NEW} --set data.train_list={{dir}}/utf16.txt",
     "utf16.txt: not UTF-8 text"),
    ("report folder", "test {cfg} --checkpoint {ckpt} --out {dir}/a_file/reports",
     "cannot write reports to {dir}/a_file/reports"),
    ("work dir", "train {cfg} --work-dir {dir}/a_file/work", "cannot create work dir"),
    ("synth non-empty", "data synth {dir} --videos 20", "is not empty"),
    ("head with backbone", f"train {{cfg}} {NEW} --set model.name=txb data.kind=features",
     "model.backbone='resnet18'"),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_naming_the_culprit(case, setup, capsys):
    _, command, culprit = case
    code, _, err = run(capsys, *command.format(**setup).split())
    lines = [line for line in err.splitlines() if not line.startswith(("INFO ", "WARNING "))]
    assert code != 0
    assert len(lines) == 1 and lines[0].startswith("actionrec: error: "), err
    assert culprit.format(**setup) in lines[0] and "Traceback" not in err


def test_bad_input_leaves_the_finished_run_alone(setup, capsys):
    """The refused train and resume wrote nothing into the finished work dir (but the lock file,
    which every run takes first)."""
    work = setup["dir"] / "work"

    def files():
        return {p.name: p.stat().st_mtime_ns for p in work.iterdir()
                if p.is_file() and p.name != ".lock"}

    before = files()
    for argv in (["train", setup["cfg"]], ["train", setup["cfg"], "--resume", "--set",
                                           "train.lr=0.5"]):
        assert run(capsys, *argv)[0] == 2
    assert files() == before


def test_a_second_run_on_a_locked_work_dir_names_the_holder(setup, capsys, tmp_path):
    """A real second process holds the lock; once it is killed, its stale lock is taken over."""
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from actionrec.engine.checkpoint import WorkDirLock; "
        f"lock = WorkDirLock({str(tmp_path)!r}); print('held', flush=True); time.sleep(60)")],
        stdout=subprocess.PIPE, text=True, cwd=REPO)
    try:
        assert holder.stdout.readline().strip() == "held"
        code, _, err = run(capsys, "train", setup["cfg"], "--work-dir", tmp_path)
        assert code == 2 and f"in use by another training run (pid {holder.pid}" in err
    finally:
        holder.kill()
        holder.wait()
    assert (tmp_path / ".lock").read_text().strip() == str(holder.pid)  # stale, and taken over:
    code, out, _ = run(capsys, "train", setup["cfg"], "--work-dir", tmp_path)
    assert code == 0 and "best val top-1" in out


@pytest.mark.slow
def test_ctrl_c_prints_one_line_with_the_last_checkpoint(setup, tmp_path):
    work = tmp_path / "w"
    proc = subprocess.Popen([sys.executable, "-m", "actionrec", "train", setup["cfg"],
                             "--work-dir", work, "--set", "train.epochs=50"],
                            stderr=subprocess.PIPE, text=True, cwd=REPO,
                            env={**os.environ, "PYTHONWARNINGS": "ignore"},
                            preexec_fn=sigint_default)
    deadline = time.time() + 120
    while not (work / "latest.json").exists() and time.time() < deadline:
        time.sleep(0.2)
    proc.send_signal(2)  # SIGINT, as Ctrl-C
    err = proc.communicate(timeout=60)[1]
    lines = [line for line in err.splitlines() if line.startswith("actionrec:")]
    assert proc.returncode == 130
    assert len(lines) == 1 and "interrupted; last checkpoint: " in lines[0]
    assert "epoch_0000.safetensors" in lines[0] and "--resume" in lines[0]
    assert "Traceback" not in err
