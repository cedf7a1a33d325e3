"""Checkpoints in other code bases' layouts, converted, compute what those code bases computed.

Each JSON here was recorded by running the original implementation outside the repository
(README.md says how) on the weights ``weights.tensor_for`` draws for each of its keys, and holds
the key list (with shapes), the input's spec and the logits. The test rebuilds that checkpoint
from the key list, saves it the way the original code does, converts it with ``actionrec
convert`` and compares our model's logits with the recorded ones.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from actionrec.engine.recognizer import load
from tests.conftest import run
from tests.parity.weights import clips, state_for

HERE = Path(__file__).parent
TOLERANCE = 1e-4


def recorded(name: str) -> dict:
    return json.loads((HERE / f"{name}.json").read_text())


def our_logits(checkpoint: Path, spec: dict) -> torch.Tensor:
    model = load(checkpoint, device="cpu").model
    x = clips(spec["batch"], spec["frames"], spec["size"], spec["seed"])
    with torch.no_grad():
        return model(x)


def assert_parity(ours: torch.Tensor, theirs: list) -> None:
    theirs = torch.tensor(theirs)
    diff = (ours - theirs).abs().max().item()
    # the check has teeth: the clips differ from each other by far more than the tolerance
    assert (theirs[0] - theirs[1]).abs().max().item() > 100 * TOLERANCE
    assert diff <= TOLERANCE, f"logits differ by up to {diff:.3g} (tolerance {TOLERANCE})"


def authors_main(state: dict) -> dict:
    """What the GST and TSM repositories' main.py save (a DataParallel state dict)."""
    return {"epoch": 60, "arch": "resnet50", "state_dict": state, "best_prec1": 47.0}


def stm_authors_train(state: dict) -> dict:
    """What the STM authors' train script saves (their IO.save_checkpoint), SGD state and all."""
    sgd = {"state": {}, "param_groups": [{"lr": 0.01, "momentum": 0.9, "params": [0, 1]}]}
    return {"epoch": 50, "model_dict": state, "optimizer_dict": sgd, "best_prec1": 47.5}


def mmaction2_hook(state: dict) -> dict:
    """What MMAction2's checkpoint hook saves, less the optimizer."""
    return {"meta": {"epoch": 100, "mmengine_version": "0.10.7"}, "state_dict": state}


# record -> (how its code saves a checkpoint, the layout it is in)
SAVED = {"gst_official": (authors_main, "gst-official"),
         "tsm_official": (authors_main, "tsm-official"),
         "stm_author": (stm_authors_train, "stm-author"),
         "mmaction2_tsn": (mmaction2_hook, "mmaction2"),
         "mmaction2_tsm": (mmaction2_hook, "mmaction2")}


@pytest.mark.parametrize("name", SAVED)
def test_checkpoints_of_other_code_convert_to_the_same_logits(name, tmp_path, capsys):
    rec = recorded(name)
    m = rec["model"]
    saved, layout = SAVED[name]
    src = tmp_path / "checkpoint.pth"
    torch.save(saved(state_for(rec["keys"], rec.get("gains"))), src)
    out = tmp_path / "ours.safetensors"
    code, stdout, err = run(capsys, "convert", src, "--model", m["name"], "--backbone",
                            m["backbone"], "--frames", m["num_frames"], "--out", out)
    assert code == 0, err
    assert f"layout {layout} " in stdout  # detected from the keys
    assert_parity(our_logits(out, rec["input"]), rec["logits"])


@pytest.mark.parametrize("layout", ["torchvision", "timm"])
@pytest.mark.parametrize("arch", ["resnet18", "resnet34", "resnet50", "resnet101"])
def test_imagenet_resnets_are_our_backbones(layout, arch, tmp_path, capsys):
    rec = recorded(layout)
    src = tmp_path / f"{arch}.pth"
    torch.save(state_for(rec["archs"][arch]["keys"]), src)
    out = tmp_path / "ours.safetensors"
    # TSN of one frame: the ImageNet network itself
    code, _, err = run(capsys, "convert", src, "--from", layout, "--model", "tsn",
                       "--backbone", arch, "--frames", 1, "--out", out)
    assert code == 0, err
    assert_parity(our_logits(out, rec["input"]), rec["archs"][arch]["logits"])


def test_a_checkpoint_of_another_model_is_not_written(tmp_path, capsys):
    rec = recorded("gst_official")
    src = tmp_path / "gst.pth"
    torch.save({"state_dict": state_for(rec["keys"])}, src)
    code, _, err = run(capsys, "convert", src, "--model", "tsn", "--out", tmp_path / "x.safetensors")
    assert code == 2 and "not written" in err and "--partial" in err
    assert not (tmp_path / "x.safetensors").exists()
    code, stdout, _ = run(capsys, "convert", src, "--model", "tsn", "--partial",
                          "--out", tmp_path / "x.safetensors")
    assert code == 0 and "PARTIAL" in stdout


def test_a_pickle_that_needs_code_is_refused(tmp_path, capsys):
    src = tmp_path / "evil.pth"
    torch.save({"state_dict": {}, "args": Path("/tmp")}, src)  # unpickling would build an object
    code, _, err = run(capsys, "convert", src, "--model", "tsn", "--out", tmp_path / "x.safetensors")
    assert code == 2 and "refused" in err and len(err.strip().splitlines()) == 1


def test_model_pretrained_takes_an_authors_checkpoint(tmp_path):
    """A Kinetics TSM of the TSM authors initialises GST fine-tuning: the trunk's weights carry
    over (GST's spatial path takes its slice of each 3x3 kernel), the 400-way head does not."""
    from actionrec.config import read_config
    from actionrec.engine.build import model_from_config

    state = state_for(recorded("tsm_official")["keys"])
    src = tmp_path / "tsm_k400.pth"
    torch.save({"state_dict": state}, src)
    cfg = read_config(None, ["model.name=gst", "model.num_frames=8", f"model.pretrained={src}"])
    ours = model_from_config(cfg, 5).state_dict()
    theirs = "module.base_model.layer3.1."
    assert torch.equal(ours["backbone.layer3.1.conv1.weight"], state[theirs + "conv1.net.weight"])
    assert torch.equal(ours["backbone.layer3.1.bn2.running_var"], state[theirs + "bn2.running_var"])
    spatial = ours["backbone.layer3.1.conv2.spatial.weight"]
    assert torch.equal(spatial, state[theirs + "conv2.weight"][: spatial.shape[0], : spatial.shape[1]])
    assert ours["fc.weight"].shape == (5, 2048)


def test_convert_into_a_recipe(tmp_path, capsys):
    """With --config the checkpoint carries the recipe (its model options, data and test views),
    ready for `actionrec test RECIPE --checkpoint`."""
    from actionrec.engine.checkpoint import read_metadata

    rec = recorded("gst_official")
    src = tmp_path / "gst.pth.tar"
    torch.save({"state_dict": state_for(rec["keys"])}, src)
    labels = tmp_path / "labels.txt"
    labels.write_text("".join(f"action {i}\n" for i in range(10)))
    out = tmp_path / "ours.safetensors"
    code, _, err = run(capsys, "convert", src, "--config", "configs/gst/gst_r50_8f_sthv1.yaml",
                       "--labels", labels, "--out", out)
    assert code == 0, err
    cfg, names = read_metadata(out)
    assert cfg.recipe.table == "Tables 2-3" and cfg.model.name == "gst" and names[3] == "action 3"
    assert_parity(our_logits(out, rec["input"]), rec["logits"])
