"""What the reliability fixes allow (their refusals are in tests/test_bad_input.py)."""

import errno
import json
import logging
import os
import re
import shutil
import stat

import pytest
import torch

from actionrec.data.datasets import parse_list, read_label_map
from actionrec.engine import checkpoint
from actionrec.engine.inference import evaluate_checkpoint, predict_videos
from actionrec.engine.train import train
from actionrec.errors import CheckpointError
from tests.conftest import edit_checkpoint, run, tiny_config


def test_lists_and_label_maps_with_a_utf8_bom(tmp_path):
    (tmp_path / "list.txt").write_bytes("\ufeffvideos/é.mp4 0\n".encode())
    (tmp_path / "labels.txt").write_bytes("\ufeffpouring\nrunning\n".encode())
    assert parse_list(tmp_path / "list.txt", num_classes=2)[0].path == "videos/é.mp4"
    assert read_label_map(tmp_path / "labels.txt") == ["pouring", "running"]


def test_checkpoint_metadata_does_not_choose_the_device(trained_tsn, synth_small, tmp_path):
    """A checkpoint trained with runtime.device=cuda predicts on this CPU machine."""
    cuda = edit_checkpoint(trained_tsn, tmp_path / "cuda.safetensors",
                           config=lambda c: c["runtime"].update(device="cuda"))
    (result,) = predict_videos(cuda, [synth_small / "videos/move_right/0000.mp4"], device="cpu")
    assert result.error is None and len(result.top) == 5


def test_test_warns_when_evaluating_at_another_frame_count(trained_tsn, synth_small, tmp_path,
                                                           caplog):
    cfg = tiny_config(synth_small, tmp_path, "model.num_frames=6")
    with caplog.at_level(logging.WARNING):
        metrics, _ = evaluate_checkpoint(cfg, trained_tsn, out_dir=tmp_path / "r")
    assert "trained at 4 frames; evaluating at 6" in caplog.text and metrics["num_videos"] == 10


def test_overwrite_starts_over_and_synth_overwrite_replaces(synth_small, tmp_path, capsys):
    work = tmp_path / "w"
    train(tiny_config(synth_small, work, "train.epochs=2"))
    result = train(tiny_config(synth_small, work, "train.epochs=1"), overwrite=True)
    assert [r["epoch"] for r in result["history"]] == [1]
    assert not (work / "epoch_0001.safetensors").exists()
    epochs = [json.loads(line)["epoch"] for line in (work / "log.jsonl").read_text().splitlines()]
    assert set(epochs) == {1}
    out = tmp_path / "synth"
    assert run(capsys, "data", "synth", out, "--videos", "20", "--size", "32", "--frames",
               "8")[0] == 0
    (out / "videos/move_right/stale.mp4").write_bytes(b"old")
    assert run(capsys, "data", "synth", out, "--videos", "20", "--size", "32", "--frames", "8",
               "--overwrite")[0] == 0
    assert not (out / "videos/move_right/stale.mp4").exists()
    assert len((out / "train.txt").read_text().splitlines()) == 10


def test_only_validated_epochs_become_best(synth_small, tmp_path):
    """eval_every=4 over 4 epochs: only epoch 4 is validated; epochs 1-3 never compete, although
    their training accuracy (up to 0.23 here) beats its validation top-1."""
    result = train(tiny_config(synth_small, tmp_path / "w", "train.epochs=4", "train.eval_every=4"))
    validated = {r["epoch"]: r["val_top1"] for r in result["history"] if "val_top1" in r}
    assert sorted(validated) == [4]
    assert max(r["train_acc"] for r in result["history"][:3]) > validated[4]  # the trap is set
    assert result["best_epoch"] in validated and result["best"] == validated[result["best_epoch"]]
    assert checkpoint.best_record(tmp_path / "w/best.safetensors") == (result["best_epoch"],
                                                                       result["best"])


def test_resume_may_extend_the_epochs(synth_small, tmp_path):
    work = tmp_path / "w"
    train(tiny_config(synth_small, work, "train.epochs=1"))
    result = train(tiny_config(synth_small, work, "train.epochs=2", "data.workers=0",
                               "train.log_every=3"), resume=True)
    assert [r["epoch"] for r in result["history"]] == [2]
    assert "epochs: 2" in (work / "config.yaml").read_text()


@pytest.mark.parametrize("what", ["weights", "state"])
def test_disk_full_names_the_file(what, tmp_path, monkeypatch):
    """The file write fails as on a full disk (ENOSPC injected at Path.write_bytes, which every
    checkpoint file goes through): one line naming the file, no temporary left."""
    from pathlib import Path

    from torch import nn

    from actionrec.config import Config

    def full(self, data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    manager = checkpoint.CheckpointManager(tmp_path)
    if what == "state":  # the weights go through, the state file hits the full disk
        monkeypatch.setattr(checkpoint, "save_weights", lambda *a, **k: None)
    monkeypatch.setattr(Path, "write_bytes", full)
    name = "epoch_0000.safetensors" if what == "weights" else "epoch_0000.state.pt"
    with pytest.raises(CheckpointError, match=f"^no space left on device while writing .*{name}$"):
        manager.save(0, nn.Linear(2, 2), Config(), ["a", "b"], {"epoch": 0}, is_best=False)
    assert not list(tmp_path.glob(".*"))


def test_checkpoint_files_share_one_mode(synth_small, tmp_path):
    train(tiny_config(synth_small, tmp_path / "w", "train.epochs=1"))
    mask = os.umask(0)
    os.umask(mask)
    for name in ("epoch_0000.safetensors", "epoch_0000.state.pt", "best.safetensors",
                 "latest.json", "config.yaml"):
        assert stat.S_IMODE((tmp_path / "w" / name).stat().st_mode) == 0o666 & ~mask, name


def test_bench_json_and_markdown_together(capsys, tmp_path):
    md = tmp_path / "bench.md"
    code, out, _ = run(capsys, "bench", "tsm", "--backbone", "resnet18", "--frames", "2",
                       "--size", "32", "--batch", "1", "--rounds", "1", "--json", "--markdown", md)
    assert code == 0 and {r["model"] for r in json.loads(out)["rows"]} == {"tsm", "tsn (baseline)"}
    assert "| tsm | resnet18 2x3x32x32 |" in md.read_text()


def test_non_finite_validation_stops_training_with_nothing_of_that_epoch_saved(synth_small,
                                                                               tmp_path):
    """One optimizer step per epoch (a batch is the whole train list), and from epoch 2 on an lr
    of 1e10 without clipping: epoch 2's only loss is still finite, its step makes the weights
    infinite, and its validation scores are NaN."""
    import torch
    from safetensors.torch import load_file

    from actionrec.errors import TrainingDiverged

    work = tmp_path / "w"
    cfg = tiny_config(synth_small, work, "train.batch_size=30", "train.lr_gamma=1e12",
                      "train.clip_grad=null", "train.epochs=3")
    with pytest.raises(TrainingDiverged, match=r"^validation after epoch 2: non-finite scores .* "
                                               r"nothing of this epoch was saved"):
        train(cfg)
    assert json.loads((work / "latest.json").read_text())["epoch"] == 0
    assert not (work / "epoch_0001.safetensors").exists()
    assert checkpoint.best_record(work / "best.safetensors")[0] == 1
    assert all(torch.isfinite(t).all() for t in load_file(work / "best.safetensors").values()
               if t.is_floating_point())


def test_an_unreadable_validation_list_saves_the_epoch_first(synth_small, tmp_path):
    from actionrec.errors import ActionrecError

    (tmp_path / "bad.txt").write_text("missing/a.mp4 0\nmissing/b.mp4 1\n")
    work = tmp_path / "w"
    with pytest.raises(ActionrecError, match="epoch 1 was saved first"):
        train(tiny_config(synth_small, work, f"data.val_list={tmp_path / 'bad.txt'}"))
    assert json.loads((work / "latest.json").read_text())["epoch"] == 0
    assert (work / "epoch_0000.safetensors").is_file() and not (work / "best.safetensors").exists()


@pytest.mark.parametrize("key", ["config", "classes"])
def test_metadata_nested_deep_is_one_line_naming_the_file_and_key(key, trained_tsn, synth_small,
                                                                  tmp_path, capsys):
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    with safe_open(str(trained_tsn), "pt") as f:
        meta = dict(f.metadata())
    deep = tmp_path / "deep.safetensors"
    save_file(load_file(trained_tsn), str(deep),
              metadata={**meta, key: "[" * 200_000 + "]" * 200_000})
    code, _, err = run(capsys, "predict", synth_small / "videos/move_right/0000.mp4",
                       "--checkpoint", deep)
    assert code == 2 and "Traceback" not in err
    assert err.strip() == (f"actionrec: error: {deep}: metadata {key!r}: JSON nested more than 64 "
                           f"deep")


@pytest.mark.parametrize("latest,expected", [
    ("[" * 100_000 + "]" * 100_000, "latest.json: JSON nested more than 64 deep"),
    ('{"epoch": 0}', 'latest.json: expected {"epoch": N, "weights": FILE, "state": FILE}'),
    ('{"epoch": 0, "weights": "../elsewhere.safetensors", "state": "s.pt"}',
     "latest.json: 'weights': '../elsewhere.safetensors' leads outside"),
    ('{"epoch": 0, "weights": "w.safetensors", "state": "damaged.pt"}',
     "damaged.pt: not a readable training state"),
    ("not json", "latest.json: not valid JSON"),
    ('{"epoch": 0, "weights": "w.safetensors", "state": "empty.pt"}',
     "empty.pt: not a training state; expected a dict holding its epoch"),
    ('{"epoch": 0, "weights": "w.safetensors", "state": "list.pt"}',
     "list.pt: not a training state; expected a dict holding its epoch"),
])
def test_a_bad_latest_json_is_one_line(latest, expected, tmp_path):
    (tmp_path / "latest.json").write_text(latest)
    (tmp_path / "damaged.pt").write_bytes(b"PK\x03\x04 cut short")
    torch.save({}, tmp_path / "empty.pt")  # loadable, but no training state
    torch.save([1, 2], tmp_path / "list.pt")
    with pytest.raises(CheckpointError, match=f"^{tmp_path}/.*{re.escape(expected)}"):
        checkpoint.CheckpointManager(tmp_path).latest()


def test_a_training_state_that_does_not_fit_is_one_line(trained_tsn, tmp_path, capsys):
    """A state file of the right shape whose optimizer state is not this optimizer's (edited, or
    another code's) stops --resume with one line, not a KeyError from the optimizer."""
    work = tmp_path / "work"
    shutil.copytree(trained_tsn.parent, work, ignore=shutil.ignore_patterns(".lock"))
    latest = json.loads((work / "latest.json").read_text())
    state = torch.load(work / latest["state"], weights_only=True)
    torch.save({**state, "optimizer": {"param_groups": []}}, work / latest["state"])
    code, _, err = run(capsys, "train", work / "config.yaml", "--work-dir", work, "--resume",
                       "--set", "train.epochs=3")
    assert code == 2 and err.count("\n") == 1, err
    assert err.startswith(f"actionrec: error: the training state of {latest['weights']} does not "
                          "fit this run (ValueError: ")
