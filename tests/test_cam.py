from actionrec.cli import main
from actionrec.engine.train import train
from tests.conftest import tiny_config


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
