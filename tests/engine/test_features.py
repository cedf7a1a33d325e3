import numpy as np

from actionrec.cli import main
from actionrec.config import dump_config
from actionrec.engine.inference import evaluate_checkpoint
from actionrec.engine.train import train
from tests.conftest import tiny_config


def test_extract_then_train_a_head_on_features(trained_tsn, synth_small, tmp_path, capsys):
    cfg_path = tmp_path / "cfg.yaml"
    cfg_path.write_text(dump_config(tiny_config(synth_small, tmp_path / "w")))
    out = tmp_path / "features"
    assert main(["features", "extract", str(cfg_path), "--checkpoint", str(trained_tsn), "--out",
                 str(out)]) == 0
    train_lines = (out / "train.txt").read_text().splitlines()
    assert len(train_lines) == 30 and len((out / "val.txt").read_text().splitlines()) == 10
    name, frames, label = train_lines[0].split()
    feats = np.load(out / name)
    assert feats.shape == (4, 512) and int(frames) == 4 and np.isfinite(feats).all()
    # an unreadable feature file is replaced during training, like a bad video
    (out / "train/broken.npy").write_bytes(b"not an array")
    with open(out / "train.txt", "a") as f:
        f.write("train/broken.npy 4 0\n")
    # the Table 1 heads train on them with the same trainer
    for head in ("txb", "lstm"):
        cfg = tiny_config(synth_small, tmp_path / head, f"model.name={head}", "data.kind=features",
                          "model.backbone=resnet50",  # the default: heads take no backbone
                          f"data.root={out}", "model.num_frames=3",
                          f"data.label_map={synth_small / 'labels.txt'}",
                          "model.options.in_features=512", "train.epochs=2")
        result = train(cfg)
        assert sum(r["bad_samples"] for r in result["history"]) >= 1
        metrics, _ = evaluate_checkpoint(cfg, result["work_dir"] / "best.safetensors")
        assert metrics["num_videos"] == 10 and 0 <= metrics["top1"] <= 1
