import re

from actionrec.cli import main
from actionrec.demo import DEMO_MODELS, DEMO_PAIRS, RECIPES
from actionrec.models.registry import build_model
from actionrec.report.flops import count_params


def test_every_demo_model_has_a_recipe():
    assert set(DEMO_MODELS) <= set(RECIPES)
    assert {"tsn", "stm", "gst", "stnet", "msti"} == set(DEMO_MODELS)


def test_demo_trains_the_models_in_turn_and_reports_them(capsys, tmp_path):
    """The full demo's code path, at 40 videos and one epoch (the real run: ``make demo``)."""
    code = main(["demo", "--models", "tsn", "gst", "--videos", "40", "--epochs", "1",
                 "--work-dir", str(tmp_path), "--set", "data.workers=0"])
    out = capsys.readouterr().out
    assert code == 0
    final = out.split("test set, best checkpoint of each model by validation top-1")[1]
    rows = re.findall(r"^(tsn-resnet18|gst-resnet18) +([\d.]+) +([\d.]+) +([\d.]+)", final, re.M)
    assert [r[0] for r in rows] == ["tsn-resnet18", "gst-resnet18"]
    tsn = build_model("tsn", num_classes=2 * len(DEMO_PAIRS), num_frames=8, backbone="resnet18")
    assert rows[0][1] == f"{count_params(tsn) / 1e6:.2f}"
    assert "at least 10 points above TSN on reversal pairs:" in final
    assert (tmp_path / "accuracy.png").stat().st_size > 1000
    for name in ("tsn", "gst"):
        assert (tmp_path / name / "best.safetensors").exists()
        assert str(tmp_path / name) in final  # its confusion plot is named
