"""The work dir's lock: held by one live process, named by the kernel, and free the moment its
owner dies, even while processes it forked (DataLoader workers) live on."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from actionrec.engine.checkpoint import WorkDirLock
from actionrec.errors import ActionrecError
from tests.conftest import REPO

HOLDER = textwrap.dedent("""
    import os, sys, time
    from actionrec.engine.checkpoint import WorkDirLock

    lock = WorkDirLock(sys.argv[1])
    child = os.fork()  # as a DataLoader worker is forked
    if child == 0:
        time.sleep(60)
        os._exit(0)
    print(child, flush=True)
    time.sleep(60)
""")


def test_the_lock_is_free_once_its_owner_dies_though_its_child_lives(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path)], stdout=subprocess.PIPE,
                              text=True, cwd=REPO)
    child = None
    try:
        child = int(holder.stdout.readline())
        with pytest.raises(ActionrecError, match=f"in use by another training run \\(pid "
                                                 f"{holder.pid}, lock "):
            WorkDirLock(tmp_path)
        holder.kill()
        holder.wait()
        os.kill(child, 0)  # the forked child still lives
        WorkDirLock(tmp_path).release()
    finally:
        holder.kill()
        holder.wait()
        if child:
            os.kill(child, signal.SIGKILL)


def test_a_second_lock_in_the_same_process_is_refused_and_release_frees_it(tmp_path):
    lock = WorkDirLock(tmp_path)
    with pytest.raises(ActionrecError, match=f"pid {os.getpid()}, "):
        WorkDirLock(tmp_path)
    lock.release()
    WorkDirLock(tmp_path).release()


TRAINER = textwrap.dedent("""
    import sys
    from actionrec.engine.train import train
    from tests.conftest import tiny_config

    train(tiny_config(sys.argv[1], sys.argv[2], "data.workers=1", "train.epochs=50"))
""")


def test_a_killed_training_run_with_workers_can_be_resumed_at_once(synth_small, tmp_path):
    """SIGKILL once its DataLoader worker runs, then the lock taken at once."""
    proc = subprocess.Popen([sys.executable, "-c", TRAINER, str(synth_small), str(tmp_path)],
                            cwd=REPO, stderr=subprocess.DEVNULL)
    try:
        while not subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True).stdout:
            assert proc.poll() is None, "the training run ended before its worker started"
            time.sleep(0.05)
    finally:
        proc.kill()
        proc.wait()
    WorkDirLock(tmp_path).release()
