"""The ``runtime:`` section: what used to sit in ``train:`` is read from its old place (files and
``--set`` with a warning, checkpoints silently), a setting given both ways is refused, and a
checkpoint written before the section existed loads and scores as it did."""

import json
import logging
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from actionrec import load
from actionrec.config import RuntimeConfig, read_config
from actionrec.engine import inference
from actionrec.engine.build import use_runtime
from actionrec.engine.checkpoint import read_metadata
from actionrec.engine.evaluate import collect_scores
from actionrec.errors import ConfigError
from tests.conftest import edit_checkpoint

V1 = Path(__file__).parent / "fixtures" / "checkpoint_v1"


def test_the_old_train_keys_are_read_into_runtime_with_a_warning(tmp_path, caplog):
    path = tmp_path / "c.yaml"
    path.write_text("train:\n  amp: true\n  channels_last: false\n  device: cpu\n"
                    "  dist_timeout: 30\n  lr: 0.5\n")
    with caplog.at_level(logging.WARNING):
        cfg = read_config(path, ["train.amp=false"])
    assert (cfg.runtime.precision, cfg.runtime.layout, cfg.runtime.device,
            cfg.runtime.dist_timeout, cfg.train.lr) == ("fp32", "contiguous", "cpu", 30.0, 0.5)
    said = caplog.text
    assert f"{path}: train.channels_last is runtime.layout now" in said
    assert "--set: train.amp is runtime.precision now; read as runtime.precision: fp32" in said


@pytest.mark.parametrize("overrides", [["train.amp=true", "runtime.precision=amp"],
                                       ["train.device=cpu", "runtime.device=cpu"]])
def test_a_setting_given_in_both_places_is_refused(overrides):
    with pytest.raises(ConfigError, match=r"^--set: train\.\w+ and runtime\.\w+ are one setting"):
        read_config(None, overrides)


def test_a_base_file_may_use_the_old_key_and_its_child_the_new_one(tmp_path):
    (tmp_path / "base.yaml").write_text("train:\n  amp: true\n")
    (tmp_path / "child.yaml").write_text("_base_: base.yaml\nruntime:\n  precision: fp32\n")
    assert read_config(tmp_path / "child.yaml").runtime.precision == "fp32"


def test_a_checkpoint_from_before_runtime_loads_and_scores_as_it_did():
    cfg, names = read_metadata(V1 / "txb.safetensors")
    assert (cfg.runtime.device, cfg.runtime.precision, cfg.runtime.layout,
            cfg.runtime.dist_timeout) == ("cpu", "amp", "contiguous", 123.0)
    cfg = replace(cfg, data=replace(cfg.data, root=str(V1), label_map=str(V1 / "labels.txt"),
                                    test_list=str(V1 / "test.txt")))
    recognizer, loader = inference.recognizer_and_loader(cfg, V1 / "txb.safetensors")
    scores = collect_scores(recognizer.model, loader, recognizer.device,
                            amp=cfg.runtime.precision == "amp")
    recorded = json.loads((V1 / "scores.json").read_text())
    assert scores.labels.tolist() == recorded["labels"]
    assert np.array_equal(scores.scores, np.array(recorded["scores"]))


def test_runtime_threads_set_this_process_threads():
    before = torch.get_num_threads()
    try:
        use_runtime(RuntimeConfig(threads=1, device="cpu"))
        assert torch.get_num_threads() == 1
        use_runtime(RuntimeConfig(threads=3, device="cpu"))
        assert torch.get_num_threads() == 3
    finally:
        torch.set_num_threads(before)


def test_a_checkpoints_runtime_never_sets_where_or_how_it_is_read(tmp_path):
    stored = edit_checkpoint(V1 / "txb.safetensors", tmp_path / "t.safetensors",
                             config=lambda c: c["train"].update(device="cuda") or c.update(
                                 runtime={"threads": 1}))
    before = torch.get_num_threads()
    recognizer = load(stored)  # auto: the CPU here, whatever the checkpoint says
    assert torch.get_num_threads() == before != 1 and recognizer.device.type == "cpu"


@pytest.mark.parametrize("runtime, expected", [("runtime=null", "amp"), ("runtime={}", "amp"),
                                               ("runtime=5", None)])
def test_an_empty_or_odd_runtime_beside_an_old_key(runtime, expected):
    if expected is None:
        with pytest.raises(ConfigError, match=r"runtime: expected a mapping, got 5"):
            read_config(None, [runtime, "train.amp=true"])
    else:
        assert read_config(None, [runtime, "train.amp=true"]).runtime.precision == expected
