
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
