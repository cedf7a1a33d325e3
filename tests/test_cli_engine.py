import json

import pytest
import torch

from actionrec.data.build import class_names
from actionrec.engine.checkpoint import save_weights
from actionrec.models.registry import build_model
from tests.conftest import SHARED_CLIPS, run, tiny_config


@pytest.fixture
def config_file(synth_small, tmp_path):
    from actionrec.config import dump_config

    path = tmp_path / "cfg.yaml"
    path.write_text(dump_config(tiny_config(synth_small, tmp_path / "work", "train.epochs=1")))
    return path


def test_train_and_test_commands(capsys, config_file, tmp_path):
    code, out, _ = run(capsys, "train", config_file, "--set", "train.epochs=1")
    assert code == 0 and "best val top-1" in out
    ckpt = tmp_path / "work/best.safetensors"
    code, out, _ = run(capsys, "test", config_file, "--checkpoint", ckpt, "--json",
                       "--set", "test.clips=2")
    result = json.loads(out)
    assert code == 0 and result["views"] == {"clips": 2, "crops": 1} and 0 <= result["top1"] <= 1
    code, out, _ = run(capsys, "test", config_file, "--checkpoint", ckpt)
    assert "top-1" in out and "reversal-pair acc" in out and "confusion.png" in out


def test_predict_every_shared_clip_and_a_corrupt_one(capsys, trained_tsn, shared_data, tmp_path):
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 100)
    videos = [shared_data / "videos" / name for name in SHARED_CLIPS]
    code, out, err = run(capsys, "predict", *videos[:3], corrupt, *videos[3:], "--checkpoint",
                         trained_tsn, "--topk", "3", "--json")
    rows = json.loads(out)
    assert code == 1 and len(rows) == 8
    assert [r["error"] is None for r in rows] == [True] * 3 + [False] + [True] * 4
    assert all(len(r["top"]) == 3 and r["top"][0]["prob"] >= r["top"][1]["prob"]
               for r in rows if r["error"] is None)
    # with every class listed, the probabilities are a distribution, best first
    code, out, _ = run(capsys, "predict", videos[0], "--checkpoint", trained_tsn, "--topk", "10",
                       "--json")
    probs = [t["prob"] for t in json.loads(out)[0]["top"]]
    assert code == 0 and len(probs) == 10 and sum(probs) == pytest.approx(1.0, abs=1e-5)
    assert probs == sorted(probs, reverse=True)
    assert err.count("\n") == 1 and "ERROR " in err and "corrupt.mp4" in err


def test_predict_with_onnx_runtime_gives_pytorchs_probabilities(capsys, trained_tsn, shared_data,
                                                                tmp_path):
    """The exported model in ONNX Runtime: the same classes with the same probabilities, and a
    corrupt file still reported and skipped."""
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(b"\x00" * 64)
    videos = [corrupt] + [shared_data / "videos" / name for name in list(SHARED_CLIPS)[:2]]
    answers = {}
    for backend in ("pytorch", "onnxruntime"):
        code, out, _ = run(capsys, "predict", *videos, "--checkpoint", trained_tsn, "--topk", "10",
                           "--backend", backend, "--json")
        assert code == 1  # the corrupt file
        answers[backend] = json.loads(out)
    ours, theirs = answers["pytorch"], answers["onnxruntime"]
    assert theirs[0]["error"] and ours[0]["error"] and not theirs[1]["error"]
    for a, b in zip(ours[1:], theirs[1:], strict=True):
        assert [t["class"] for t in a["top"]] == [t["class"] for t in b["top"]]
        assert [t["prob"] for t in a["top"]] == pytest.approx([t["prob"] for t in b["top"]],
                                                                abs=1e-5)
    code, _, err = run(capsys, "predict", videos[1], "--checkpoint", trained_tsn, "--backend",
                       "onnxruntime", "--device", "cuda")
    assert code == 2 and "runs on the CPU" in err


def test_models_command(capsys):
    code, out, _ = run(capsys, "models")
    assert code == 0 and "tsn" in out and "frozen_stages=0" in out


def test_one_line_errors(capsys, config_file, tmp_path, trained_tsn):
    code, _, err = run(capsys, "train", config_file, "--set", "train.lrr=0.1")
    assert code == 2 and "train.lrr: unknown key; valid keys:" in err and err.count("\n") == 1
    code, _, err = run(capsys, "test", config_file, "--checkpoint", tmp_path / "nope.safetensors")
    assert code == 2 and "nope.safetensors: checkpoint not found" in err
    # a checkpoint of another architecture: its metadata says so, or its keys do
    other = build_model("tsn", num_classes=10, num_frames=4, backbone="resnet34")
    from actionrec.config import read_config

    save_weights(tmp_path / "r34.safetensors", other, read_config(None), [str(i) for i in range(10)])
    code, _, err = run(capsys, "test", config_file, "--checkpoint", tmp_path / "r34.safetensors")
    assert code == 2 and "model.backbone: 'resnet50' (checkpoint) vs 'resnet18' (config)" in err
    cfg = read_config(config_file)  # metadata that agrees with the config, weights that do not
    save_weights(tmp_path / "r34_as_r18.safetensors", other, cfg, class_names(cfg))
    code, _, err = run(capsys, "test", config_file, "--checkpoint", tmp_path / "r34_as_r18.safetensors")
    assert code == 2 and "does not fit the model (TSN)" in err and "unexpected: backbone.layer1.2" in err
    # an unsafe pickle as pretrained weights is refused before it runs
    marker = tmp_path / "pwned"
    from tests.helpers import Payload

    torch.save({"x": Payload(marker)}, tmp_path / "evil.pth")
    code, _, err = run(capsys, "train", config_file, "--set", f"model.pretrained={tmp_path}/evil.pth")
    assert code == 2 and "refused" in err and not marker.exists()
    code, _, err = run(capsys, "train", config_file, "--set", "data.train_list=missing.txt")
    assert code == 2 and "missing.txt: list file not found" in err
