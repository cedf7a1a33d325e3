import numpy as np
import pytest
import torch

from actionrec.analysis.cam import grad_cam, upsample
from actionrec.cli import main
from actionrec.config import load_config
from actionrec.data.build import build_dataset
from actionrec.data.datasets import ListEntry
from actionrec.data.synthetic import SynthSpec, _Scene, generate, render_video, write_video
from actionrec.engine.inference import load_model
from actionrec.engine.train import train
from tests.conftest import REPO, tiny_config

SIZE = 112


@pytest.fixture(scope="module")
def trained_112(tmp_path_factory):
    """TSN-R18 trained to tell a moving blob from a rotating bar, at 112x112 (4x4 maps)."""
    out = tmp_path_factory.mktemp("cam")
    generate(out / "synth", SynthSpec(videos=120, frames=16, size=SIZE, seed=2, pairs=(0, 1)))
    cfg = load_config(REPO / "configs/demo/tsn_r18_synth.yaml", [
        f"data.root={out / 'synth'}", f"work_dir={out / 'tsn'}", "model.num_frames=4",
        "train.epochs=5", f"data.size={SIZE}", f"data.short_side={SIZE}",
        "data.scales=[1.0, 0.875]", "train.batch_size=8", "data.workers=0"])
    train(cfg)
    return cfg, out / "tsn" / "best.safetensors"


@pytest.mark.slow
def test_map_peaks_where_the_object_moves(trained_112, tmp_path):
    cfg, checkpoint = trained_112
    rng = np.random.default_rng(123)
    frames = render_video(0, rng, frames=16, size=SIZE)  # one blob moving right
    background = _Scene(np.random.default_rng(123), SIZE).background  # same draws, same scene
    moving = np.abs(frames / 255.0 - background).max(-1) > 0.2  # where the object is
    video = tmp_path / "moving.mp4"
    write_video(video, frames)
    model, _ = load_model(cfg, checkpoint, 4)
    sample = build_dataset(cfg, "test", entries=[ListEntry(str(video), 0)])[0]
    maps, _ = grad_cam(model, sample["clip"][0])
    assert maps.shape == (4, 4, 4)
    big = upsample(maps, (SIZE, SIZE))
    used = [2, 6, 10, 14]  # the test sampler's segment centres
    hits = 0
    for t, frame_index in enumerate(used):
        mask = torch.nn.functional.max_pool2d(torch.tensor(moving[frame_index], dtype=torch.float)[None],
                                              15, 1, 7)[0].numpy() > 0  # object, dilated by 7 px
        y, x = np.unravel_index(big[t].argmax(), big[t].shape)
        hits += bool(mask[y, x])
        assert big[t][mask].mean() > big[t][~mask].mean(), f"frame {t}: map not on the object"
    assert hits >= 3, f"the map's peak fell on the moving object in {hits} of 4 frames"


def test_cam_command_for_tsn_and_stnet(capsys, trained_tsn, shared_data, synth_small, tmp_path):
    video = shared_data / "videos/mmaction2/tests_data_test.avi"
    assert main(["cam", str(trained_tsn), str(video), "--out", str(tmp_path / "tsn.png")]) == 0
    assert "4 maps" in capsys.readouterr().out
    assert (tmp_path / "tsn.png").read_bytes()[:4] == b"\x89PNG"
    assert main(["cam", str(trained_tsn), str(video), "--class", "nope", "--out",
                 str(tmp_path / "x.png")]) == 2
    assert "'nope' is not a class" in capsys.readouterr().err
    train(tiny_config(synth_small, tmp_path / "stnet", "model.name=stnet", "model.options.n=2",
                      "data.sampler=snippet", "data.snippet_len=2", "train.epochs=1"))
    assert main(["cam", str(tmp_path / "stnet/best.safetensors"), str(video), "--class", "grow",
                 "--out", str(tmp_path / "stnet.png")]) == 0
    assert "4 maps for class 'grow'" in capsys.readouterr().out  # one per super-image
