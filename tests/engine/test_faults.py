"""Fault injection on checkpointing: a real training process is killed (SIGKILL) at each step of
one save -- before and after every rename, and between the save and its log line -- then
resumed. Nothing is lost and nothing is stale: since a deterministic resume is exact, the
resumed run must end with the same best checkpoint, weights and log as an uninterrupted one."""

import json
import subprocess
import sys
import textwrap

import pytest
import torch
from safetensors.torch import load_file

from actionrec.engine.checkpoint import BEST, CheckpointManager, best_record
from actionrec.engine.train import train
from tests.conftest import REPO, tiny_config

EPOCHS = 2
# overrides of the killed, the resumed and the reference run: without a validation list the
# training accuracy ranks the epochs, and it rises here, so the best epoch comes after the first
SETTINGS = (f"train.epochs={EPOCHS}", "train.keep_last=5", "data.val_list=''")

KILLER = textwrap.dedent("""
    import os, signal, sys
    from actionrec.engine import train as training
    from actionrec.engine.checkpoint import CheckpointManager
    from tests.conftest import REPO, tiny_config

    synth, work, epoch, point = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    armed = {"on": False, "renames": 0}
    save, replace, log = CheckpointManager.save, os.replace, training.Trainer._log

    def kill():
        os.kill(os.getpid(), signal.SIGKILL)

    def saving(self, e, *args, **kwargs):
        armed["on"] = e == epoch
        return save(self, e, *args, **kwargs)

    def renaming(src, dst):  # point "before:K" / "after:K": around the K-th rename of the save
        if armed["on"]:
            armed["renames"] += 1
            if point == f"before:{armed['renames']}":
                kill()
        replace(src, dst)
        if armed["on"] and point == f"after:{armed['renames']}":
            kill()

    def logging(self, line, prefix=""):
        if point == "log" and "train_loss" in line and line["epoch"] == epoch + 1:
            kill()
        return log(self, line, prefix)

    CheckpointManager.save, os.replace, training.Trainer._log = saving, renaming, logging
    training.train(tiny_config(synth, work, *sys.argv[5:]))
    print("NOT KILLED")
""")

# the renames of a best epoch's save: weights, state, best, latest.json (the commit)
POINTS = [f"{when}:{k}" for k in range(1, 5) for when in ("before", "after")] + ["log"]


@pytest.fixture(scope="module")
def reference(synth_small, tmp_path_factory):
    """An uninterrupted run, and the epoch (0-based) whose save the kills hit: its best."""
    work = tmp_path_factory.mktemp("reference")
    result = train(tiny_config(synth_small, work, *SETTINGS))
    assert result["best_epoch"] >= 2, "precondition: a best epoch after the first, so that its " \
                                      "save follows a committed checkpoint"
    return work, result["best_epoch"] - 1


def epoch_records(work):
    lines = (work / "log.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if k != "clips_per_s"}
            for line in lines if "train_loss" in json.loads(line)]


@pytest.mark.slow
@pytest.mark.parametrize("point", POINTS)
def test_killed_during_a_save_then_resumed_loses_nothing(point, reference, synth_small, tmp_path):
    ref, epoch = reference
    work = tmp_path / "run"
    killed = subprocess.run([sys.executable, "-c", KILLER, str(synth_small), str(work), str(epoch),
                             point, *SETTINGS], capture_output=True, text=True, cwd=REPO)
    assert killed.returncode == -9, killed.stdout + killed.stderr[-2000:]
    before = CheckpointManager(work).latest()
    committed = point in ("after:4", "log")
    assert before is not None and before[1]["epoch"] == (epoch if committed else epoch - 1)

    result = train(tiny_config(synth_small, work, *SETTINGS), resume=True)

    assert not list(work.glob(".*.tmp*")), "temporaries of the killed save left behind"
    assert result["best_epoch"] == epoch + 1
    assert best_record(work / BEST) == best_record(ref / BEST)
    for name in (BEST, f"epoch_{EPOCHS - 1:04d}.safetensors"):
        ours, theirs = load_file(work / name), load_file(ref / name)
        assert all(torch.equal(ours[k], theirs[k]) for k in theirs), name
    records = epoch_records(work)
    assert [r["epoch"] for r in records] == list(range(1, EPOCHS + 1))  # each epoch once
    assert records == epoch_records(ref)


def test_reconcile_best_keeps_a_newer_best_and_restores_a_lost_one(tmp_path):
    """The two ways a best file and a state can disagree after a kill: a best written but not
    committed (newer: adopted), and a best older than the state records (the order of earlier
    actionrec versions: rewritten from the best epoch's weights)."""
    from torch import nn

    from actionrec.config import Config
    from actionrec.engine.checkpoint import load_weights, save_weights

    manager = CheckpointManager(tmp_path)
    model = nn.Linear(3, 2)
    save_weights(tmp_path / BEST, model, Config(), ["a", "b"], best=(3, 0.75))
    assert manager.reconcile_best(2, 0.5) == (3, 0.75)

    for epoch in range(2):
        with torch.no_grad():
            model.weight.fill_(epoch)
        manager.save(epoch, model, Config(), ["a", "b"], {"best": 0.1 * epoch,
                                                          "best_epoch": epoch + 1},
                     is_best=epoch == 0)  # epoch 2's best never reached the best file
    assert best_record(tmp_path / BEST) == (1, 0.0)
    assert manager.reconcile_best(2, 0.1) == (2, 0.1)
    assert best_record(tmp_path / BEST) == (2, 0.1)
    load_weights(model, tmp_path / BEST)
    assert torch.all(model.weight == 1)
