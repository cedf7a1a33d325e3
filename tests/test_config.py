import pytest

from actionrec.config import dump_config, read_config
from actionrec.errors import ConfigError


def test_defaults_yaml_and_overrides(tmp_path):
    base = tmp_path / "base.yaml"
    base.write_text("model:\n  name: tsn\n  backbone: resnet18\ntrain:\n  lr: 0.1\n  epochs: 3\n")
    child = tmp_path / "child.yaml"
    child.write_text("_base_: base.yaml\ntrain:\n  epochs: 5\n")
    cfg = read_config(child, ["train.lr=2e-3", "model.options.alpha=0.25", "data.scales=[1, 0.5]"])
    assert (cfg.model.backbone, cfg.train.epochs, cfg.train.lr) == ("resnet18", 5, 0.002)
    assert cfg.model.options == {"alpha": 0.25} and cfg.data.scales == [1, 0.5]
    assert cfg.train.momentum == 0.9  # default kept
    again = tmp_path / "dumped.yaml"
    again.write_text(dump_config(cfg))
    assert read_config(again) == cfg


@pytest.mark.parametrize("override,message", [
    (["train.lrr=1"], r"c.yaml: train.lrr: unknown key; valid keys: train.epochs, .*train.lr,"),
    (["trian.lr=1"], r"c.yaml: trian: unknown key; valid keys: model, data, train, test, runtime, work_dir"),
    (["train.lr=abc"], r"c.yaml: train.lr: expected float, got 'abc'"),
    (["train.epochs=1.5"], r"train.epochs: expected int, got 1.5"),
    (["train.amp=1"], r"train.amp: expected true/false, got 1"),
    (["runtime.precision=bf16"], r"runtime.precision: 'bf16' is not one of fp32, amp"),
    (["runtime.threads=0"], r"runtime.threads: 0 is not allowed"),
    (["train.schedule=linear"], r"train.schedule: 'linear' is not one of step, cosine"),
    (["test.crops=4"], r"test.crops: 4 is not one of 1, 3, 5, 10"),
    (["train.lr"], r"--set 'train.lr': expected key=value"),
])
def test_errors_name_the_key(tmp_path, override, message):
    path = tmp_path / "c.yaml"
    path.write_text("train:\n  epochs: 1\n")
    with pytest.raises(ConfigError, match=message):
        read_config(path, override)


def test_bad_files(tmp_path):
    with pytest.raises(ConfigError, match="missing.yaml: config file not found"):
        read_config(tmp_path / "missing.yaml")
    (tmp_path / "bad.yaml").write_text("train: [1, 2\n")
    with pytest.raises(ConfigError, match="bad.yaml: not valid YAML"):
        read_config(tmp_path / "bad.yaml")
    (tmp_path / "cycle.yaml").write_text("_base_: cycle.yaml\n")
    with pytest.raises(ConfigError, match="_base_ cycle"):
        read_config(tmp_path / "cycle.yaml")


def test_shipped_configs_load():
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    configs = sorted([*repo.glob("configs/**/*.yaml"), *repo.glob("actionrec/configs/**/*.yaml")])
    assert configs
    for path in configs:
        read_config(path)
