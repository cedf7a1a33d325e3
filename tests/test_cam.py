import pytest

from actionrec.cli import main
from actionrec.config import read_config
from actionrec.engine.train import train
from tests.conftest import REPO, tiny_config


def test_cam_command_for_tsn_and_stnet(capsys, trained_tsn, shared_data, synth_small, tmp_path):
    video = shared_data / "videos/mmaction2/tests_data_test.avi"
    assert main(["cam", str(trained_tsn), str(video), "--out", str(tmp_path / "tsn.png")]) == 0
    assert "4 maps" in capsys.readouterr().out
    assert (tmp_path / "tsn.png").read_bytes()[:4] == b"\x89PNG"
    assert main(["cam", str(trained_tsn), str(video), "--class", "nope", "--out",
                 str(tmp_path / "x.png")]) == 2
    assert "'nope' is not a class" in capsys.readouterr().err
    train(tiny_config(synth_small, tmp_path / "stnet", "model.name=stnet",
                      "data.sampler=snippet", "data.snippet_len=2", "train.epochs=1"))
    assert main(["cam", str(tmp_path / "stnet/best.safetensors"), str(video), "--class", "grow",
                 "--out", str(tmp_path / "stnet.png")]) == 0
    assert "4 maps for class 'grow'" in capsys.readouterr().out  # one per super-image


def test_grad_cam_is_cam_for_a_linear_head():
    """TSN: average pooling + fc, so Grad-CAM must equal CAM = ReLU(sum_c w_kc A_c), normalised."""
    import torch

    from actionrec.analysis.cam import grad_cam
    from actionrec.models.registry import build_model

    torch.manual_seed(0)
    model = build_model("tsn", num_classes=5, num_frames=3, backbone="resnet18").eval()
    with torch.no_grad():  # non-negative weights: the reference CAM is not all zero
        model.fc.weight.normal_().abs_()
    clip = torch.randn(3, 3, 64, 64)
    maps, k = grad_cam(model, clip, class_index=2)
    with torch.no_grad():
        features = model.backbone.forward_features(clip)  # (T, 512, 2, 2)
        cam = torch.relu(torch.einsum("c,tchw->thw", model.fc.weight[2], features))
    torch.testing.assert_close(torch.from_numpy(maps), cam / cam.max(), rtol=1e-4, atol=1e-5)
    assert k == 2


def _dilate(mask, radius: int):
    import numpy as np
    import torch
    import torch.nn.functional as F

    pooled = F.max_pool2d(torch.from_numpy(mask.astype(np.float32))[None], 2 * radius + 1, 1, radius)
    return pooled[0].numpy() > 0


@pytest.mark.slow
def test_cam_of_a_trained_temporal_model_peaks_where_the_video_moves(tmp_path):
    """STM-R18 learns move_right vs move_left (a task only the moving object can answer) at 96 px;
    each test video is then pasted at a random place into a static 192 px scene, so one region
    of the frame moves. The class map must peak in that region and mostly on the object."""
    import numpy as np
    import torch

    from actionrec.analysis.cam import grad_cam, upsample
    from actionrec.data.synthetic import SynthSpec, _background, _Scene, generate, render_video
    from actionrec.data.transforms import IMAGENET_MEAN, IMAGENET_STD
    from actionrec.engine.recognizer import load

    size, canvas, frames = 96, 192, 8
    generate(tmp_path / "synth", SynthSpec(videos=120, frames=16, size=size, seed=5, pairs=(0,)))
    cfg = read_config(REPO / "actionrec/configs/demo/tsn_r18_synth.yaml", [
        "model.name=stm", f"data.root={tmp_path / 'synth'}", f"work_dir={tmp_path / 'stm'}",
        "train.epochs=8", f"data.size={size}", f"data.short_side={size}",
        "data.scales=[1.0, 0.875]", "train.batch_size=8", "data.workers=0",
        "train.deterministic=true"])
    train(cfg)
    model = load(tmp_path / "stm/best.safetensors").model
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    in_region, on_object = [], []
    for k in range(24):
        label = k % 2  # move_right, move_left
        video = render_video(label, np.random.default_rng([99, k]), frames=frames, size=size)
        background = _Scene(np.random.default_rng([99, k]), size).background  # same draws
        obj = np.zeros((frames, canvas, canvas), bool)
        rng = np.random.default_rng([7, k])
        scene = np.repeat((_background(rng, canvas) * 255).astype(np.uint8)[None], frames, 0)
        y0, x0 = rng.integers(0, canvas - size + 1, 2)
        region = (slice(y0, y0 + size), slice(x0, x0 + size))
        scene[(slice(None), *region)] = video
        obj[(slice(None), *region)] = np.abs(video / 255.0 - background).max(-1) > 0.2
        clip = (torch.from_numpy(scene).permute(0, 3, 1, 2) / 255.0 - mean) / std
        maps, _ = grad_cam(model, clip, class_index=label)
        maps = upsample(maps, (canvas, canvas))
        near = _dilate(obj, size // 8)
        for t in range(frames):
            y, x = np.unravel_index(maps[t].argmax(), maps[t].shape)
            in_region.append(y0 <= y < y0 + size and x0 <= x < x0 + size)
            on_object.append(near[t, y, x])
    # chance: the region is 1/4 of the frame, the dilated object < 1/10
    assert np.mean(in_region) >= 0.8, np.mean(in_region)
    assert np.mean(on_object) >= 0.5, np.mean(on_object)
