import json
import subprocess
import sys
import textwrap
import time

import pytest
import torch
from safetensors.torch import load_file

from actionrec.engine.checkpoint import CheckpointManager
from actionrec.engine.train import train
from actionrec.errors import TrainingDiverged
from tests.conftest import tiny_config


def test_resume_is_exact(synth_small, tmp_path):
    straight = train(tiny_config(synth_small, tmp_path / "straight"))
    assert [r["epoch"] for r in straight["history"]] == [1, 2]
    train(tiny_config(synth_small, tmp_path / "split", "train.epochs=1"))
    resumed = train(tiny_config(synth_small, tmp_path / "split"), resume=True)
    assert [r["epoch"] for r in resumed["history"]] == [2]
    a = load_file(tmp_path / "straight/epoch_0001.safetensors")
    b = load_file(tmp_path / "split/epoch_0001.safetensors")
    assert a.keys() == b.keys()
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert not different, f"resumed weights differ: {different[:5]}"
    one_epoch = load_file(tmp_path / "split/epoch_0000.safetensors")
    assert not torch.equal(one_epoch["fc.weight"], b["fc.weight"])  # epoch 2 did train


def test_logs_checkpoints_and_keep_last(synth_small, tmp_path):
    work = tmp_path / "w"
    result = train(tiny_config(synth_small, work, "train.epochs=3", "train.keep_last=1",
                               "train.log_every=1"))
    assert sorted(p.name for p in work.glob("epoch_*")) == ["epoch_0002.safetensors",
                                                           "epoch_0002.state.pt"]
    assert (work / "best.safetensors").is_file() and (work / "config.yaml").is_file()
    assert json.loads((work / "latest.json").read_text())["epoch"] == 2
    records = [json.loads(line) for line in (work / "log.jsonl").read_text().splitlines()]
    epochs = [r for r in records if "train_loss" in r]
    assert [r["epoch"] for r in epochs] == [1, 2, 3]
    assert {"val_top1", "val_pair_accuracy", "lr", "clips_per_s", "bad_samples"} <= set(epochs[0])
    assert any("loss" in r and "train_loss" not in r for r in records)  # per-step records
    assert list((work / "tb").glob("events.out.tfevents.*"))
    assert result["best_epoch"] in (1, 2, 3)
    state = torch.load(work / "epoch_0002.state.pt", weights_only=True)  # plain, safe to load
    assert state["epoch"] == 2 and "optimizer" in state and "rng" in state


def test_non_finite_loss_stops_with_epoch_and_step(synth_small, tmp_path):
    # the step schedule multiplies the lr by 1e12 after epoch 1: training blows up in epoch 2
    cfg = tiny_config(synth_small, tmp_path / "w", "train.lr_gamma=1e12", "train.clip_grad=null",
                      "train.epochs=3")
    with pytest.raises(TrainingDiverged, match=r"non-finite loss .* at epoch 2, step \d+; the last "
                                               r"good checkpoint is .*epoch_0000.safetensors"):
        train(cfg)
    weights, state = CheckpointManager(tmp_path / "w").latest()
    assert state["epoch"] == 0
    assert all(torch.isfinite(v).all() for v in load_file(weights).values()
               if v.is_floating_point())


def test_gradient_accumulation_and_cosine_warmup(synth_small, tmp_path):
    result = train(tiny_config(synth_small, tmp_path / "w", "train.accumulate=2",
                               "train.schedule=cosine", "train.warmup_epochs=1", "train.epochs=2"))
    lrs = [r["lr"] for r in result["history"]]
    assert lrs[0] == pytest.approx(0.01)  # end of warmup
    assert lrs[1] == pytest.approx(0.0, abs=1e-9)  # end of cosine


SAVER = textwrap.dedent("""
    import sys, torch
    from torch import nn
    from actionrec.config import Config
    from actionrec.engine.checkpoint import CheckpointManager
    manager = CheckpointManager(sys.argv[1], keep_last=2)
    model = nn.Linear(4096, 4096)  # 64 MiB of weights: a save takes a while
    for epoch in range(1000):
        with torch.no_grad():
            model.weight.fill_(epoch)
        manager.save(epoch, model, Config(), ["a"], {"epoch": epoch, "blob": torch.full((2**22,),
                     float(epoch))}, is_best=False)
        print(epoch, flush=True)
""")


@pytest.mark.slow
def test_sigkill_while_saving_leaves_previous_checkpoint_loadable(tmp_path):
    work = tmp_path / "ckpt"
    hit_mid_save = 0
    for attempt in range(6):
        proc = subprocess.Popen([sys.executable, "-c", SAVER, str(work)], stdout=subprocess.PIPE,
                                text=True)
        first = proc.stdout.readline()  # one complete save
        assert first.strip().isdigit()
        time.sleep(0.05 + 0.07 * attempt)
        proc.kill()
        proc.wait()
        hit_mid_save += bool(list(work.glob(".*.tmp*")))
        weights, state = CheckpointManager(work).latest()
        w = load_file(weights)["weight"]
        assert torch.all(w == state["epoch"]), "weights and state of the checkpoint disagree"
        assert torch.all(state["blob"] == state["epoch"])
    assert hit_mid_save >= 1, "no kill landed during a save; the test proved nothing"
