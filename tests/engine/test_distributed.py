"""Distributed training and evaluation: real ``torchrun`` jobs of 2 CPU processes over Gloo,
each compared with what one process computes on the same data."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from actionrec.config import dump_config
from actionrec.engine import distributed
from actionrec.engine.inference import evaluate_checkpoint
from actionrec.engine.train import scaled_lr, train
from actionrec.errors import ConfigError
from tests.conftest import tiny_config

pytestmark = pytest.mark.slow

# one process's batch of 8 against 2 processes x batch 2 x 2 accumulation steps: the same global
# batch and the same lr; BN by its running statistics (SyncBN has no CPU kernel), no dropout
# (each process would draw its own masks)
SAME_AS_ONE = ("train.bn_eval=true", "model.dropout=0.0", "train.lr_batch=8", "train.epochs=2",
               "train.log_every=1")


ONE_NODE = ("--standalone", "--nproc_per_node=2")


def torchrun(*args, launcher=ONE_NODE, timeout: float = 300,
             wait: bool = True) -> subprocess.CompletedProcess | subprocess.Popen:
    """``torchrun LAUNCHER... -m actionrec ARGS...``: run, or started when not ``wait``. Every
    worker computes on one thread (what torchrun sets for several per node), so runs launched
    differently compute alike."""
    cmd = [sys.executable, "-m", "torch.distributed.run", *launcher, "-m", "actionrec",
           *map(str, args)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    if not wait:
        return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                env=env)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)


def run_json(*args) -> dict:
    """``actionrec ARGS... --json`` in one process (no torchrun)."""
    done = subprocess.run([sys.executable, "-m", "actionrec", *map(str, args)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def config_file(cfg, path: Path) -> Path:
    path.write_text(dump_config(cfg))
    return path


def worker(launcher_pid: int, rank: int) -> int:
    """The pid of the worker of ``rank`` that the torchrun process ``launcher_pid`` started."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            env = (entry / "environ").read_bytes().split(b"\0")
        except (OSError, IndexError):
            continue
        if ppid == launcher_pid and f"RANK={rank}".encode() in env:
            return int(entry.name)
    raise AssertionError(f"no worker of rank {rank} under torchrun pid {launcher_pid}")


def wait_for(condition, what: str, timeout: float = 120) -> None:
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def train_records(work: Path, epoch: int) -> bool:
    """Whether ``log.jsonl`` holds a step record of ``epoch`` (training is inside it)."""
    path = work / "log.jsonl"
    lines = path.read_text().splitlines() if path.is_file() else []
    return any('"loss"' in line and f'"epoch": {epoch},' in line for line in lines)


def final_weights(work: Path) -> dict:
    latest = json.loads((work / "latest.json").read_text())
    return load_file(work / latest["weights"])


def assert_same_weights(a: dict, b: dict, atol: float) -> None:
    assert a.keys() == b.keys()
    worst = max((a[k].double() - b[k].double()).abs().max().item() for k in a)
    assert worst <= atol, f"weights differ by up to {worst}"


@pytest.fixture(scope="module")
def with_broken(synth_small, tmp_path_factory) -> Path:
    """The training list of ``synth_small`` and two unreadable files: 32 entries."""
    folder = tmp_path_factory.mktemp("broken")
    lines = (synth_small / "train.txt").read_text().splitlines()
    for k in range(2):
        (folder / f"broken{k}.mp4").write_bytes(b"not a video")
        lines.append(f"{folder / f'broken{k}.mp4'} 0")
    (folder / "train.txt").write_text("\n".join(lines) + "\n")
    return folder / "train.txt"


@pytest.fixture(scope="module")
def two_process_run(synth_small, with_broken, tmp_path_factory):
    """2 processes x batch 2 x accumulate 2 for 2 epochs, and their command's output."""
    work = tmp_path_factory.mktemp("ddp") / "work"
    cfg = config_file(tiny_config(synth_small, work, *SAME_AS_ONE, "train.batch_size=2",
                                  "train.accumulate=2",
                                  f"data.train_list={with_broken}"), work.parent / "ddp.yaml")
    done = torchrun("train", cfg)
    assert done.returncode == 0, done.stdout + done.stderr
    return work, cfg, done


def test_two_processes_reach_the_weights_of_one(synth_small, with_broken, tmp_path,
                                                two_process_run):
    work, _, done = two_process_run
    one = train(tiny_config(synth_small, tmp_path / "one", *SAME_AS_ONE, "train.batch_size=8",
                            f"data.train_list={with_broken}"))
    assert one["history"][-1]["epoch"] == 2
    # 32 training entries: 4 steps of 8 per epoch either way, the same 32 entries in each
    records = [json.loads(line) for line in (work / "log.jsonl").read_text().splitlines()]
    epochs = [r for r in records if "train_loss" in r]
    assert [r["step"] for r in epochs] == [4, 8]  # rank 0 alone writes: one record per epoch
    assert epochs[-1]["train_loss"] == pytest.approx(one["history"][-1]["train_loss"], abs=1e-4)
    # the unreadable entries met by both ranks, summed: as many as one process meets
    assert [r["bad_samples"] for r in epochs] == [h["bad_samples"] for h in one["history"]]
    assert sum(r["bad_samples"] for r in epochs) >= 2
    assert_same_weights(final_weights(work), final_weights(tmp_path / "one"), atol=2e-5)
    out = done.stdout + done.stderr
    assert out.count("best val top-1") == 1  # the result is printed once
    assert "2 process(es) x batch 2 x accumulate 2 = global batch 8; lr 0.01" in out
    assert len(list((work / "tb").glob("events.*"))) == 1


def test_evaluation_over_two_processes_equals_one(trained_tsn, synth_small, tmp_path):
    """An odd list with one unreadable entry: the shares differ in size, nothing is scored twice
    or lost, and the metrics equal a single process's on the same checkpoint."""
    entries = (synth_small / "val.txt").read_text().splitlines()[:8]
    (tmp_path / "broken.mp4").write_bytes(b"not a video")
    lines = entries + [f"{tmp_path / 'broken.mp4'} 0"]
    (tmp_path / "odd.txt").write_text("\n".join(lines) + "\n")
    cfg = tiny_config(synth_small, tmp_path / "w", f"data.test_list={tmp_path / 'odd.txt'}",
                      "test.batch_size=3")
    one, _ = evaluate_checkpoint(cfg, trained_tsn, out_dir=tmp_path / "one")
    done = torchrun("test", config_file(cfg, tmp_path / "c.yaml"), "--checkpoint", trained_tsn,
                    "--out", tmp_path / "two")
    assert done.returncode == 0, done.stdout + done.stderr
    two = json.loads((tmp_path / "two" / "results.json").read_text())
    assert two["num_videos"] == one["num_videos"] == 8
    for key in ("top1", "top5", "mean_class_accuracy", "per_class", "confusion"):
        assert two[key] == one[key], key
    assert [s["path"] for s in two["skipped"]] == [str(tmp_path / "broken.mp4")]
    assert done.stdout.count("top-1") == 1
    # diagnose: the same shares and gathers, per frame order (shuffling draws per rank: left out)
    one = run_json("diagnose", tmp_path / "c.yaml", "--checkpoint", trained_tsn, "--json")
    two = json.loads(torchrun("diagnose", tmp_path / "c.yaml", "--checkpoint", trained_tsn,
                              "--json").stdout)
    assert two["num_videos"] == one["num_videos"] == 8
    for order in ("in order", "reversed", "single frame"):
        assert two["orders"][order] == one["orders"][order], order


def test_restarted_workers_resume_and_finish_like_an_uninterrupted_run(synth_small, tmp_path,
                                                                       two_process_run):
    """Rank 1 killed inside epoch 2; torchrun --max-restarts 1 starts both again, they resume
    from epoch 1's checkpoint and end on the uninterrupted run's weights, bit for bit."""
    reference, cfg_file, _ = two_process_run
    work = tmp_path / "work"
    job = torchrun("train", cfg_file, "--work-dir", work, launcher=(*ONE_NODE, "--max-restarts=1"),
                   wait=False)
    try:
        wait_for(lambda: train_records(work, 2), "a training step of epoch 2")
        os.kill(worker(job.pid, 1), signal.SIGKILL)
        out, _ = job.communicate(timeout=300)
    finally:
        job.kill()
    assert job.returncode == 0, out
    assert "torchrun restart 1: resuming from the last checkpoint" in out
    assert "resumed from" in out
    a, b = final_weights(work), final_weights(reference)
    assert all(torch.equal(a[k], b[k]) for k in a)
    records = [json.loads(line) for line in (work / "log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records if "train_loss" in r] == [1, 2]


def test_two_nodes_train_as_one_node_of_two_processes(tmp_path, two_process_run):
    """docs/distributed.md's several-node command, as two launchers of one process each meeting at a c10d
    rendezvous on 127.0.0.1: the same ranks, the same weights as one node of 2."""
    reference, cfg_file, _ = two_process_run
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    nodes = [torchrun("train", cfg_file, "--work-dir", tmp_path / "work", wait=False, launcher=(
        "--nnodes=2", f"--node_rank={k}", "--nproc_per_node=1", "--rdzv_backend=c10d",
        f"--rdzv_endpoint=127.0.0.1:{port}", "--rdzv_id=two-nodes")) for k in (0, 1)]
    try:
        outputs = [node.communicate(timeout=300)[0] for node in nodes]
    finally:
        for node in nodes:
            node.kill()
    assert [node.returncode for node in nodes] == [0, 0], outputs
    a, b = final_weights(tmp_path / "work"), final_weights(reference)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert "".join(outputs).count("best val top-1") == 1


@pytest.mark.parametrize("fault", ["dies", "hangs"])
def test_a_lost_rank_fails_the_job_with_a_message(synth_small, tmp_path, fault):
    """No restarts: a rank killed (or stopped) mid-training ends the job, with rank 0 saying
    what happened, within the collective timeout, instead of hanging."""
    cfg = config_file(tiny_config(synth_small, tmp_path / "w", "train.epochs=50",
                                  "train.log_every=1", "runtime.dist_timeout=10"),
                      tmp_path / "c.yaml")
    job = torchrun("train", cfg, wait=False)
    try:
        wait_for(lambda: train_records(tmp_path / "w", 1), "a training step")
        pid = worker(job.pid, 1)
        start = time.monotonic()
        os.kill(pid, signal.SIGKILL if fault == "dies" else signal.SIGSTOP)
        out, _ = job.communicate(timeout=180)
        elapsed = time.monotonic() - start
    finally:
        job.kill()
        if fault == "hangs":
            with_pid = Path(f"/proc/{pid}")
            if with_pid.exists():
                os.kill(pid, signal.SIGKILL)
    assert job.returncode != 0
    assert elapsed < 120
    if fault == "dies":  # torchrun names the rank that died and how
        assert "Root Cause (first observed failure)" in out and "Signal 9 (SIGKILL)" in out, out
        assert f"pid: {pid}" in out
    if fault == "hangs":  # rank 0 waited runtime.dist_timeout, then said so
        assert "rank 0 of 2, training: lost contact with the other processes" in out, out
        assert "runtime.dist_timeout=10 s" in out


def test_lr_scaling_and_sync_bn_on_cpu(synth_small, tmp_path):
    cfg = tiny_config(synth_small, tmp_path / "w", "train.batch_size=8", "train.accumulate=2",
                      "train.lr=0.1", "train.lr_batch=64")
    assert scaled_lr(cfg.train, 8) == (pytest.approx(0.2), 128, 64)
    assert scaled_lr(cfg.train, 4) == (pytest.approx(0.1), 64, 64)
    cfg.train.lr_scaling = "none"
    assert scaled_lr(cfg.train, 8) == (pytest.approx(0.1), 128, 64)
    cfg.train.lr_batch = None  # train.lr is for one process's batch x accumulate
    cfg.train.lr_scaling = "linear"
    assert scaled_lr(cfg.train, 2) == (pytest.approx(0.2), 32, 16)
    with pytest.raises(ConfigError, match="SyncBatchNorm runs on CUDA only.*train.bn_eval"):
        train(tiny_config(synth_small, tmp_path / "s", "train.sync_bn=true", "runtime.device=cpu"))


def test_one_process_without_torchrun(monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "TORCHELASTIC_RESTART_COUNT"):
        monkeypatch.delenv(name, raising=False)
    ctx = distributed.context()
    assert (ctx.rank, ctx.world_size, ctx.main, ctx.distributed) == (0, 1, True, False)
    assert distributed.setup(torch.device("cpu"), 5).world_size == 1
    assert not torch.distributed.is_initialized()
    assert distributed.all_sum([1.0, 2.0]) == [1.0, 2.0]
    monkeypatch.setenv("WORLD_SIZE", "two")
    with pytest.raises(Exception, match="WORLD_SIZE='two': expected an integer"):
        distributed.context()


@pytest.mark.parametrize("message,lost", [
    ("[gloo/transport/tcp/unbound_buffer.cc:81] Timed out waiting 10000ms for recv operation "
     "to complete", True),
    # what Gloo raises in the other operations of the group once one receive has timed out
    ("[gloo/transport/tcp/pair.cc:534] Application timeout caused pair closure", True),
    ("mat1 and mat2 shapes cannot be multiplied (2x3 and 4x5)", False),
])
def test_a_backend_error_about_a_peer_becomes_one_line(monkeypatch, message, lost):
    """``joint``: the messages of a lost peer become ``LostPeer`` (one line, this rank, the
    timeout); any other error stays as it was."""
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(distributed.LostPeer if lost else RuntimeError) as raised:
        with distributed.joint("training", 10):
            raise RuntimeError(message)
    if lost:
        assert str(raised.value).startswith("rank 0 of 2, training: lost contact with the other "
                                            "processes")
        assert "runtime.dist_timeout=10 s" in str(raised.value)
    else:
        assert raised.type is RuntimeError and str(raised.value) == message
